"""Render the shipped example videos: a procedural table scene seen by a pinhole camera, with sidecars.

Every clip is drawn with OpenCV from a true 3-D state (positions, gripper openings, contacts) and the same
state is written to `<clip>.sidecar.json`, so the `state` and `color` grounders can be compared on it.
Deterministic: same code → same frames. Run from the repository root:

    .venv/bin/python examples/make_examples.py            # writes examples/*.mp4, *.sidecar.json, labels.jsonl
    .venv/bin/python examples/make_examples.py --png /tmp/frames   # also dump a few frames as PNGs
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

SIZE = 224  # output frames are SIZE×SIZE
SS = 2  # supersampling factor for anti-aliasing
FPS = 10.0
OUT = Path(__file__).resolve().parent

# ------------------------------------------------------------------------------------------------ camera
F_PX = 340.0  # focal length in output pixels
CAM_POS = np.array([0.0, -0.8, 0.32])  # metres; world: x right, y away from the camera, z up
CAM_PITCH = math.radians(12.0)  # looking slightly down


def camera_matrices() -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics K (3,3) and world→camera extrinsics (4,4) in OpenCV axes (x right, y down, z forward)."""
    K = np.array([[F_PX, 0, SIZE / 2], [0, F_PX, SIZE / 2], [0, 0, 1.0]])
    c, s = math.cos(CAM_PITCH), math.sin(CAM_PITCH)
    R = np.array([[1.0, 0, 0], [0, -s, -c], [0, c, -s]])  # rows: camera x, y, z axes in world coordinates
    E = np.eye(4)
    E[:3, :3], E[:3, 3] = R, -R @ CAM_POS
    return K, E


K_MAT, EXT = camera_matrices()


def project(p: np.ndarray) -> np.ndarray:
    """World points (..., 3) → output-pixel coordinates (..., 2)."""
    cam = np.asarray(p, float) @ EXT[:3, :3].T + EXT[:3, 3]
    uv = cam @ K_MAT.T
    return uv[..., :2] / uv[..., 2:3]


def xz(points: list[tuple[float, float]] | np.ndarray, y: float = 0.0) -> np.ndarray:
    """2-D (x, z) points in the plane at depth y → world points (N, 3)."""
    a = np.asarray(points, float)
    return np.stack([a[:, 0], np.full(len(a), y), a[:, 1]], axis=1)


# ------------------------------------------------------------------------------------------------ colours (RGB)
WALL_TOP, WALL_BOTTOM = (238, 240, 244), (212, 217, 226)
TABLE_TOP, TABLE_FRONT, TABLE_EDGE = (226, 212, 190), (190, 174, 152), (160, 146, 128)
METAL, METAL_DARK, JOINT = (182, 187, 195), (104, 110, 122), (78, 84, 96)
PAD = (60, 62, 68)
RED, RED_DARK, RED_LIGHT = (214, 38, 46), (158, 22, 32), (240, 118, 118)
BLUE, BLUE_DARK, BLUE_LIGHT = (46, 98, 214), (30, 64, 150), (104, 146, 236)
GREEN, GREEN_DARK, GREEN_LIGHT = (38, 164, 76), (24, 112, 50), (96, 204, 126)
YELLOW, YELLOW_DARK, YELLOW_LIGHT = (246, 204, 44), (206, 160, 22), (252, 228, 120)
STAND, STAND_DARK = (150, 156, 166), (118, 124, 134)

# ------------------------------------------------------------------------------------------------ geometry (m)
FINGER_LEN, FINGER_W, PALM_T, GAP_MAX = 0.05, 0.016, 0.02, 0.10
PALM_W = GAP_MAX + 2 * FINGER_W
GRIP_H = PALM_T + FINGER_LEN  # colored extent along the gripper axis
BOTTLE_L, BOTTLE_D, NECK_D, CAP_D = 0.21, 0.044, 0.02, 0.024
BLOCK = 0.042
PLATE_R, PLATE_T = 0.058, 0.012
LINK1, LINK2 = 0.42, 0.38


def opening_for(width: float) -> float:
    """Gripper opening (gap / max gap) that closes the fingers on an object `width` wide."""
    return width / GAP_MAX


# ------------------------------------------------------------------------------------------------ canvas
class Canvas:
    """A supersampled RGB image with world-space drawing helpers."""

    def __init__(self) -> None:
        n = SIZE * SS
        ramp = np.linspace(0, 1, n)[:, None, None]
        top, bottom = np.array(WALL_TOP, float), np.array(WALL_BOTTOM, float)
        self.img = np.ascontiguousarray(np.broadcast_to(top + (bottom - top) * ramp, (n, n, 3)).astype(np.uint8))

    def px(self, world: np.ndarray) -> np.ndarray:
        """World points → int32 supersampled pixel coordinates with 3 fractional bits (for cv2 shift=3)."""
        return np.round(project(world) * SS * 8).astype(np.int32)

    def poly(self, world: np.ndarray, color: tuple, outline: tuple | None = None) -> None:
        pts = self.px(world)[None]
        cv2.fillPoly(self.img, pts, color, cv2.LINE_AA, shift=3)
        if outline is not None:
            cv2.polylines(self.img, pts, True, outline, SS, cv2.LINE_AA, shift=3)

    def line(self, a: np.ndarray, b: np.ndarray, color: tuple, width_m: float) -> None:
        pa, pb = self.px(np.stack([a, b]))
        thick = max(1, round(F_PX / 0.85 * width_m * SS))
        cv2.line(self.img, tuple(pa), tuple(pb), color, thick, cv2.LINE_AA, shift=3)

    def disc(self, c: np.ndarray, r_m: float, color: tuple) -> None:
        p = self.px(c[None])[0]
        cv2.circle(self.img, tuple(p), int(F_PX / 0.85 * r_m * SS * 8), color, -1, cv2.LINE_AA, shift=3)

    def shadow(self, x: float, width: float, height_above: float) -> None:
        """A soft contact shadow on the table under something `height_above` metres up."""
        fade = max(0.0, 1.0 - height_above / 0.35)
        if fade <= 0:
            return
        layer = np.zeros(self.img.shape[:2], np.uint8)
        ring = np.linspace(0, 2 * np.pi, 40)
        rx, ry = width * (0.55 + 0.4 * height_above), 0.035 + 0.05 * height_above
        pts = np.stack([x + rx * np.cos(ring), ry * np.sin(ring), np.zeros_like(ring)], axis=1)
        cv2.fillPoly(layer, self.px(pts)[None], int(255 * fade), cv2.LINE_AA, shift=3)
        layer = cv2.GaussianBlur(layer, (0, 0), 3 * SS)
        self.img[:] = (self.img * (1 - 0.28 * layer[..., None] / 255.0)).astype(np.uint8)

    def result(self) -> np.ndarray:
        return cv2.resize(self.img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def box_faces(c: Canvas, center: np.ndarray, size: np.ndarray, top: tuple, front: tuple, edge: tuple) -> None:
    """A 3-D axis-aligned box: its front and top faces (the camera looks from -y and slightly above)."""
    x0, y0, z0 = center - size / 2
    x1, y1, z1 = center + size / 2
    c.poly(np.array([[x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1]]), front, edge)
    c.poly(np.array([[x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]]), top, edge)


def draw_table(c: Canvas) -> None:
    box_faces(c, np.array([0.0, 0.08, -0.03]), np.array([1.6, 0.6, 0.06]), TABLE_TOP, TABLE_FRONT, TABLE_EDGE)
    for k, y in enumerate((0.02, 0.14, 0.26)):  # faint wood grain
        shade = tuple(int(v - 6 - 2 * k) for v in TABLE_TOP)
        c.line(np.array([-0.8, y, 0.0]), np.array([0.8, y + 0.01, 0.0]), shade, 0.002)


def draw_bottle(c: Canvas, center: np.ndarray) -> None:
    """A bottle lying on its side, base to the left, neck and cap to the right (silhouette in the y=0 plane)."""
    x, z = center[0] - BOTTLE_L / 2, center[2]
    r, rn, rc = BOTTLE_D / 2, NECK_D / 2, CAP_D / 2
    body_end, shoulder_end, neck_end = x + 0.125, x + 0.15, x + BOTTLE_L - 0.014
    bev = 0.007  # bevelled base corners
    outline = [(x, z + r - bev), (x, z - r + bev), (x + bev, z - r), (body_end, z - r), (shoulder_end, z - rn),
               (neck_end, z - rn), (neck_end, z + rn), (shoulder_end, z + rn), (body_end, z + r), (x + bev, z + r)]
    c.poly(xz(outline), RED, RED_DARK)
    c.poly(xz([(x + 0.012, z + r * 0.45), (body_end - 0.004, z + r * 0.45), (body_end - 0.004, z + r * 0.75),
               (x + 0.012, z + r * 0.75)]), RED_LIGHT)
    c.poly(xz([(neck_end, z - rc), (x + BOTTLE_L, z - rc), (x + BOTTLE_L, z + rc), (neck_end, z + rc)]),
           RED_DARK, RED_DARK)


def draw_block(c: Canvas, center: np.ndarray) -> None:
    box_faces(c, center, np.full(3, BLOCK), RED_LIGHT, RED, RED_DARK)


def draw_plate(c: Canvas, center: np.ndarray) -> None:
    ring = np.linspace(0, 2 * np.pi, 48)
    x, z = center[0], center[2]
    rim = lambda zz, s=1.0: np.stack([x + s * PLATE_R * np.cos(ring), s * PLATE_R * np.sin(ring),  # noqa: E731
                                      np.full_like(ring, zz)], axis=1)
    bottom, top = rim(z - PLATE_T / 2), rim(z + PLATE_T / 2)
    front = ring > np.pi  # the half nearer the camera (y < 0)
    side = np.concatenate([bottom[front], top[front][::-1]])
    c.poly(side, YELLOW_DARK, YELLOW_DARK)
    c.poly(top, YELLOW, YELLOW_DARK)
    c.poly(rim(z + PLATE_T / 2, 0.7), YELLOW_LIGHT)
    c.poly(rim(z + PLATE_T / 2, 0.6), YELLOW)


def draw_stand(c: Canvas, x: float, top_z: float, width: float = 0.04) -> None:
    box_faces(c, np.array([x, 0.0, top_z / 2]), np.array([width, 0.05, top_z]), STAND, STAND_DARK, JOINT)


# ------------------------------------------------------------------------------------------------ gripper
@dataclass
class GripperPose:
    """A parallel-jaw gripper in the y=0 plane: centre of its coloured part, axis angle, opening in [0,1]."""

    pos: np.ndarray  # (x, z) centre of the palm+fingers bounding box in the gripper frame
    angle: float  # direction the fingers point, radians from +x (−π/2 = straight down)
    opening: float

    @property
    def axis(self) -> np.ndarray:
        return np.array([math.cos(self.angle), math.sin(self.angle)])

    @property
    def perp(self) -> np.ndarray:
        return np.array([-math.sin(self.angle), math.cos(self.angle)])

    def local(self, u: float, w: float) -> np.ndarray:
        """(u across the jaws, w along the axis from the box centre) → world (x, z)."""
        return self.pos + u * self.perp + w * self.axis

    @property
    def grasp_point(self) -> np.ndarray:
        """Where an object sits between the fingers (mid-finger)."""
        return self.local(0.0, PALM_T / 2 + 0.004)

    def parts(self) -> list[np.ndarray]:
        """Palm and two finger quads as (4, 2) arrays of world (x, z)."""
        g = self.opening * GAP_MAX / 2
        top, palm_end, tip = -GRIP_H / 2, -GRIP_H / 2 + PALM_T, GRIP_H / 2
        quad = lambda u0, u1, w0, w1: np.array([self.local(u0, w0), self.local(u1, w0),  # noqa: E731
                                                self.local(u1, w1), self.local(u0, w1)])
        return [quad(-PALM_W / 2, PALM_W / 2, top, palm_end),
                quad(-g - FINGER_W, -g, palm_end - 0.001, tip), quad(g, g + FINGER_W, palm_end - 0.001, tip)]

    def image_box(self) -> list[float]:
        """Pixel box of the coloured parts (output resolution)."""
        uv = project(xz(np.concatenate(self.parts())))
        return [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())]


def draw_gripper(c: Canvas, g: GripperPose, shoulder: np.ndarray, colors: tuple[tuple, tuple, tuple]) -> None:
    """Arm (two links by inverse kinematics from `shoulder`), wrist, palm and fingers with pads."""
    base, dark, light = colors
    wrist = g.local(0, -GRIP_H / 2 - 0.028)
    d = wrist - shoulder
    dist = min(float(np.hypot(*d)), LINK1 + LINK2 - 1e-3)
    cos_a = (LINK1**2 + dist**2 - LINK2**2) / (2 * LINK1 * dist)
    a0 = math.atan2(d[1], d[0])
    elbows = [shoulder + LINK1 * np.array([math.cos(a0 + s * math.acos(cos_a)), math.sin(a0 + s * math.acos(cos_a))])
              for s in (1, -1)]
    elbow = max(elbows, key=lambda e: e[1])  # elbow up
    for a, b in ((shoulder, elbow), (elbow, wrist)):
        c.line(xz([a])[0], xz([b])[0], METAL_DARK, 0.034)
        c.line(xz([a])[0], xz([b])[0], METAL, 0.024)
    c.disc(xz([elbow])[0], 0.02, JOINT)
    c.disc(xz([elbow])[0], 0.009, METAL)
    c.poly(xz([g.local(-0.02, -GRIP_H / 2 - 0.03), g.local(0.02, -GRIP_H / 2 - 0.03),
               g.local(0.02, -GRIP_H / 2 + 0.002), g.local(-0.02, -GRIP_H / 2 + 0.002)]), METAL, METAL_DARK)
    c.disc(xz([wrist])[0], 0.014, JOINT)
    palm, f1, f2 = g.parts()
    c.poly(xz(palm), base, dark)
    c.poly(xz([g.local(-PALM_W / 2 + 0.004, -GRIP_H / 2 + 0.004), g.local(PALM_W / 2 - 0.004, -GRIP_H / 2 + 0.004),
               g.local(PALM_W / 2 - 0.004, -GRIP_H / 2 + 0.009), g.local(-PALM_W / 2 + 0.004, -GRIP_H / 2 + 0.009)]),
           light)
    for f in (f1, f2):
        c.poly(xz(f), base, dark)
    gap = g.opening * GAP_MAX / 2
    for s in (-1, 1):  # rubber pads on the inner faces near the tips
        u0, u1 = s * gap, s * (gap + 0.005)
        c.poly(xz([g.local(u0, GRIP_H / 2 - 0.026), g.local(u1, GRIP_H / 2 - 0.026), g.local(u1, GRIP_H / 2 - 0.004),
                   g.local(u0, GRIP_H / 2 - 0.004)]), PAD)


# ------------------------------------------------------------------------------------------------ motion
def ease(a: float) -> float:
    a = min(1.0, max(0.0, a))
    return a * a * (3 - 2 * a)


def track(keys: list[tuple[float, tuple[float, ...]]], t: float) -> np.ndarray:
    """Piecewise smooth interpolation between (frame, value) keyframes."""
    if t <= keys[0][0]:
        return np.array(keys[0][1], float)
    for (t0, v0), (t1, v1) in itertools.pairwise(keys):
        if t <= t1:
            a = ease((t - t0) / (t1 - t0))
            return np.array(v0, float) + a * (np.array(v1, float) - np.array(v0, float))
    return np.array(keys[-1][1], float)


@dataclass
class Arm:
    """A gripper's keyframed motion: (frame, (x, z, opening))."""

    name: str
    keys: list[tuple[float, tuple[float, float, float]]]
    angle: float
    shoulder: tuple[float, float]
    colors: tuple[tuple, tuple, tuple]

    def pose(self, t: float) -> GripperPose:
        x, z, o = track(self.keys, t)
        return GripperPose(np.array([x, z]), self.angle, float(o))


def pos_for_grasp(angle: float, target: tuple[float, float]) -> tuple[float, float]:
    """Gripper box centre that puts its grasp point on `target`."""
    g = GripperPose(np.zeros(2), angle, 1.0)
    off = g.grasp_point
    return float(target[0] - off[0]), float(target[1] - off[1])


@dataclass
class Scene:
    """A clip: arms, one manipulated object, static props, and who holds the object when."""

    name: str
    task: str
    success: bool
    description: str
    n_frames: int
    arms: list[Arm]
    obj: str  # entity name of the manipulated object
    obj_start: tuple[float, float]  # (x, z) centre at rest
    obj_size: tuple[float, float, float]
    rest_z: float  # centre height when lying on the table
    holds: list[tuple[str, int, int]]  # (arm, first frame, last frame) the arm holds the object
    draw_obj: Callable[[Canvas, np.ndarray], None]
    props: list[tuple[str, Callable[[Canvas], None]]] = field(default_factory=list)
    static: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = field(default_factory=dict)
    support: Callable[[float], float] | None = None  # support surface height (top) at x


def simulate(scene: Scene) -> dict:
    """Object trajectory from the holds: carried rigidly by a holding arm, else falls to its support."""
    T = scene.n_frames
    pos = np.zeros((T, 2))
    vel_z = 0.0
    cur = np.array(scene.obj_start, float)
    offset: dict[str, np.ndarray] = {}
    holder_at = [None] * T
    for t in range(T):
        holders = [a for a, t0, t1 in scene.holds if t0 <= t <= t1]
        holder_at[t] = holders
        if holders:
            arm = next(a for a in scene.arms if a.name == holders[0])
            gp = arm.pose(t).grasp_point
            if holders[0] not in offset:
                offset = {holders[0]: cur - gp}
            cur = gp + offset[holders[0]]
            vel_z = 0.0
        else:
            offset = {}
            floor = scene.support(cur[0]) + scene.obj_size[2] / 2 if scene.support else scene.rest_z
            if cur[1] > floor + 1e-6:
                # free fall sampled exactly at the frame times: Δz = v·dt − g·dt²/2, then v −= g·dt
                dt = 1.0 / FPS
                cur = cur + np.array([0.0, vel_z * dt - 0.5 * 9.81 * dt * dt])
                vel_z -= 9.81 * dt
                if cur[1] <= floor:
                    cur[1], vel_z = floor, 0.0
        pos[t] = cur
    return {"pos": pos, "holders": holder_at}


def render(scene: Scene) -> tuple[np.ndarray, dict]:
    """Frames (T, SIZE, SIZE, 3) uint8 and the sidecar dict of the true state."""
    sim = simulate(scene)
    T = scene.n_frames
    frames = np.zeros((T, SIZE, SIZE, 3), np.uint8)
    grippers: dict[str, dict] = {a.name: {"position": [], "box": [], "opening": []} for a in scene.arms}
    for t in range(T):
        c = Canvas()
        draw_table(c)
        o = sim["pos"][t]
        poses = {a.name: a.pose(t) for a in scene.arms}
        c.shadow(o[0], scene.obj_size[0], o[1] - scene.obj_size[2] / 2)
        for p in poses.values():
            c.shadow(p.pos[0], 0.06, p.pos[1])
        for _, draw in scene.props:
            draw(c)
        scene.draw_obj(c, np.array([o[0], 0.0, o[1]]))
        for a in scene.arms:
            draw_gripper(c, poses[a.name], np.array(a.shoulder), a.colors)
        frames[t] = c.result()
        for a in scene.arms:
            p = poses[a.name]
            grippers[a.name]["position"].append([round(float(p.pos[0]), 5), 0.0, round(float(p.pos[1]), 5)])
            grippers[a.name]["box"].append([round(v, 2) for v in p.image_box()])
            grippers[a.name]["opening"].append(round(p.opening, 4))
    entities: dict[str, dict] = {
        scene.obj: {"position": [[round(float(x), 5), 0.0, round(float(z), 5)] for x, z in sim["pos"]],
                    "size": list(scene.obj_size)},
    }
    for name, (center, size) in scene.static.items():
        entities[name] = {"position": [list(center)] * T, "size": list(size)}
    for a in scene.arms:
        entities[a.name] = {"position": grippers[a.name]["position"], "box": grippers[a.name]["box"]}
    contacts = []
    for a in scene.arms:
        contacts.append([a.name, scene.obj, [int(a.name in h) for h in sim["holders"]]])
    if "plate" in scene.static:
        (px_, _, pz), (pw, _, ph) = scene.static["plate"]
        on = [int(abs(x - px_) < pw / 2 and abs(z - (pz + ph / 2 + scene.obj_size[2] / 2)) < 1e-3)
              for x, z in sim["pos"]]
        contacts.append([scene.obj, "plate", on])
    sidecar = {
        "version": 1,
        "fps": FPS,
        "n_frames": T,
        "camera": {"intrinsics": K_MAT.round(6).tolist(), "extrinsics": EXT.round(6).tolist(),
                   "width": SIZE, "height": SIZE},
        "entities": entities,
        "grippers": {a.name: {"opening": grippers[a.name]["opening"]} for a in scene.arms},
        "contacts": contacts,
        "meta": {"generator": "examples/make_examples.py", "scene": scene.name},
    }
    return frames, sidecar


# ------------------------------------------------------------------------------------------------ scenes
HANDOVER_TASK = "Hand the bottle from the left arm to the right arm"
PICK_TASK = "Put the red block on the yellow plate"
STAND_TOP = 0.07
BOTTLE_REST = (-0.08, STAND_TOP + BOTTLE_D / 2)
LEFT_SHOULDER, RIGHT_SHOULDER = (-0.52, 0.44), (0.52, 0.44)


def _left_grip(cx: float, cz: float) -> tuple[float, float]:
    """Left gripper (pointing right) centre that grasps the bottle body whose centre is (cx, cz)."""
    return pos_for_grasp(0.0, (cx - BOTTLE_L / 2 + 0.034, cz))


def _right_grip(cx: float, cz: float) -> tuple[float, float]:
    """Right gripper (pointing left) centre that grasps the bottle neck/cap whose bottle centre is (cx, cz)."""
    return pos_for_grasp(math.pi, (cx + BOTTLE_L / 2 - 0.022, cz))


def handover(name: str, variant: str) -> Scene:
    """Bimanual handover of the red bottle: variants success | drop | no_release | wrong_order."""
    bx, bz = BOTTLE_REST
    ob, on_body, on_neck = 1.0, opening_for(BOTTLE_D), opening_for(CAP_D)
    mid = (0.0, 0.2)  # where the exchange happens (bottle centre)
    lg0, lgr = (-0.21, 0.25), _left_grip(bx, bz)
    rg0 = (0.21, 0.27)
    lgm, rgm = _left_grip(*mid), _right_grip(*mid)
    if variant == "wrong_order":  # the right arm picks the bottle up first, the left arm ends with it
        rgr = _right_grip(bx, bz)
        right = [(0, (*rg0, ob)), (5, (rgr[0] + 0.05, rgr[1] + 0.03, ob)), (9, (*rgr, ob)), (12, (*rgr, on_neck)),
                 (20, (*rgm, on_neck)), (33, (*rgm, on_neck)), (36, (*rgm, ob)), (44, (rg0[0], rg0[1] + 0.02, ob))]
        left = [(0, (*lg0, ob)), (16, (*lg0, ob)), (26, (*lgm, ob)), (29, (*lgm, on_body)),
                (44, (lgm[0] - 0.08, lgm[1] - 0.02, on_body))]
        holds = [("right", 12, 33), ("left", 29, 44)]
        desc = "The right gripper grabs the bottle first and hands it to the left gripper: wrong order."
        ok = False
    else:
        left = [(0, (*lg0, ob)), (5, (lgr[0] - 0.05, lgr[1] + 0.03, ob)), (9, (*lgr, ob)), (12, (*lgr, on_body)),
                (21, (*lgm, on_body))]
        right = [(0, (*rg0, ob)), (14, (*rg0, ob)), (25, (*rgm, ob))]
        if variant == "success":
            left += [(30, (*lgm, on_body)), (33, (*lgm, ob)), (44, (*lg0, ob))]
            right += [(28, (*rgm, on_neck)), (33, (*rgm, on_neck)), (44, (rgm[0] + 0.05, rgm[1] + 0.02, on_neck))]
            holds = [("left", 12, 31), ("right", 28, 44)]
            desc = "The left gripper picks the bottle up and hands it to the right gripper, which keeps it."
            ok = True
        elif variant == "drop":
            left = [*left[:-1], (21, (*lgm, on_body)), (23, (*lgm, on_body)),  # snaps open and pulls back
                    (24, (lgm[0] - 0.03, lgm[1] + 0.015, ob)), (40, (*lg0, ob))]
            right = [(0, (*rg0, ob)), (14, (*rg0, ob)), (27, (rgm[0] + 0.06, rgm[1], ob)), (31, (rgm[0] + 0.06,
                     rgm[1], on_neck)), (44, (*rg0, on_neck))]
            holds = [("left", 12, 23)]
            desc = "The left gripper lets go before the right gripper has the bottle: it falls to the table."
            ok = False
        elif variant == "no_release":
            left += [(44, (lgm[0], lgm[1] + 0.02, on_body))]
            right += [(28, (*rgm, on_neck)), (44, (rgm[0], rgm[1] + 0.02, on_neck))]
            holds = [("left", 12, 44), ("right", 28, 44)]
            desc = "Both grippers grasp the bottle but the left one never lets go."
            ok = False
        else:
            raise ValueError(variant)
    arms = [Arm("left", left, 0.0, LEFT_SHOULDER, (BLUE, BLUE_DARK, BLUE_LIGHT)),
            Arm("right", right, math.pi, RIGHT_SHOULDER, (GREEN, GREEN_DARK, GREEN_LIGHT))]
    stand_x = bx + 0.01
    return Scene(
        name, HANDOVER_TASK, ok, desc, 45, arms, "bottle", BOTTLE_REST, (BOTTLE_L, BOTTLE_D, BOTTLE_D),
        BOTTLE_D / 2, holds, draw_bottle, props=[("stand", lambda c: draw_stand(c, stand_x, STAND_TOP))],
        support=lambda x: STAND_TOP if abs(x - bx) < 0.03 else 0.0,
    )


PLATE_X = 0.07


def pick_place(name: str, variant: str) -> Scene:
    """Single-arm pick-and-place of the red block onto the yellow plate: variants success | miss | drop."""
    down = -math.pi / 2
    b0 = (-0.17, BLOCK / 2)
    place_x = 0.18 if variant == "miss" else PLATE_X
    place_z = BLOCK / 2 + (0.0 if variant == "miss" else PLATE_T)
    g0, grab = (-0.05, 0.26), pos_for_grasp(down, b0)
    up_a, up_b = (b0[0], 0.17), (place_x, 0.17)
    put = pos_for_grasp(down, (place_x, place_z))
    ob, oc = 0.9, opening_for(BLOCK)
    upa, upb = pos_for_grasp(down, up_a), pos_for_grasp(down, up_b)
    keys = [(0, (*g0, ob)), (5, (grab[0], grab[1] + 0.06, ob)), (8, (*grab, ob)), (11, (*grab, oc)),
            (15, (*upa, oc)), (21, (*upb, oc)), (26, (*put, oc)), (28, (*put, ob)), (35, (put[0], 0.26, ob))]
    holds = [("gripper", 11, 27)]
    desc = "The gripper picks the red block up and puts it on the yellow plate."
    if variant == "miss":
        desc = "The gripper places the red block on the table beside the yellow plate."
    if variant == "drop":  # the fingers spring open on the way: the block falls, the arm carries on empty
        at17, at18 = tuple(track(keys, 17)[:2]), tuple(track(keys, 18)[:2])
        keys = [*keys[:5], (17, (*at17, oc)), (18, (*at18, ob)), (21, (*upb, ob)), (26, (*put, ob)),
                (35, (put[0], 0.26, ob))]
        holds = [("gripper", 11, 17)]
        desc = "The gripper's fingers open on the way: the block falls to the table."
    arm = Arm("gripper", keys, down, (-0.3, 0.62), (BLUE, BLUE_DARK, BLUE_LIGHT))
    plate_center = (PLATE_X, 0.0, PLATE_T / 2)
    return Scene(
        name, PICK_TASK, variant == "success", desc, 36, [arm], "block", b0, (BLOCK, BLOCK, BLOCK), BLOCK / 2,
        holds, lambda c, p: draw_block(c, p),
        props=[("plate", lambda c: draw_plate(c, np.array(plate_center)))],
        static={"plate": (plate_center, (2 * PLATE_R, 2 * PLATE_R, PLATE_T))},
        support=lambda x: PLATE_T if abs(x - PLATE_X) < PLATE_R else 0.0,
    )


SCENES = [
    handover("handover_success", "success"),
    handover("handover_drop", "drop"),
    handover("handover_no_release", "no_release"),
    handover("handover_wrong_order", "wrong_order"),
    pick_place("pick_place_success", "success"),
    pick_place("pick_place_miss", "miss"),
    pick_place("pick_place_drop", "drop"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--png", type=Path, default=None, help="also save every 6th frame as PNG here")
    ap.add_argument("--only", default=None, help="render only scenes whose name contains this")
    args = ap.parse_args()
    # Written with PyAV directly rather than ltlreward.video.write_video: x264 must run single-threaded for
    # byte-identical files (its multi-threaded output differs from run to run).
    labels = []
    scenes = [s for s in SCENES if not args.only or args.only in s.name]
    # render everything before encoding anything: the encoder leaves the CPU's floating-point state changed,
    # which would make later renders differ in a few pixels from run to run
    rendered = [render(scene) for scene in scenes]
    for scene, (frames, sidecar) in zip(scenes, rendered, strict=True):
        path = args.out / f"{scene.name}.mp4"
        write_mp4(path, frames, FPS, crf=20)
        (args.out / f"{scene.name}.sidecar.json").write_text(json.dumps(sidecar, separators=(",", ":")) + "\n")
        spec = "specs/handover.ltl" if scene.task == HANDOVER_TASK else "specs/pick_place.ltl"
        labels.append({"video": f"examples/{scene.name}.mp4", "task": scene.task, "spec": spec,
                       "success": scene.success, "description": scene.description})
        if args.png:
            args.png.mkdir(parents=True, exist_ok=True)
            for t in range(0, scene.n_frames, 6):
                cv2.imwrite(str(args.png / f"{scene.name}_{t:02d}.png"), cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR))
        print(f"{path.name}: {len(frames)} frames, {path.stat().st_size / 1024:.0f} KB")
    if not args.only:
        with open(args.out / "labels.jsonl", "w") as f:
            for row in labels:
                f.write(json.dumps(row) + "\n")


def write_mp4(path: Path, frames: np.ndarray, fps: float, crf: int = 20) -> Path:
    """H.264 mp4 (yuv420p), single-threaded so that the same frames always give the same bytes."""
    import av

    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "threads=1:lookahead-threads=1"}
        stream.codec_context.thread_count = 1
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode(None))
    return path


if __name__ == "__main__":
    main()
