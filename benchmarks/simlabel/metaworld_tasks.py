"""Meta-World (v3, Sawyer, single arm): scripted experts from `metaworld.policies` plus failure modes.

Entities in every sidecar: `gripper` (the tool-centre point between the pads; opening = Meta-World's
normalised finger distance, 1 = open), `goal` (the task's target point) and, except for reach, `obj` (the
point whose distance to the goal the task's own success check measures). The `obj`–`goal` distance in the
sidecar is therefore exactly the quantity behind `info["success"]`; the labels come from `info["success"]`
itself, recorded at every rendered frame.

Failure modes (each is only a perturbation — the label is whatever the simulator then reports):
  none          the expert as shipped
  noise         Gaussian noise on every action component, σ drawn per episode in [0.4, 1.2]
  early_stop    the arm freezes (zero motion, grip kept) after 10–45 % of the horizon
  wrong_target  the expert is shown a goal moved 0.12–0.22 m away (tasks whose expert reads the goal)
  release       the gripper opens 0–8 steps after the object is 3 cm up (grasping tasks)

Colours: the arm is repainted grey, the fingers blue, the task object red and the goal marker green so that
the pixel-only `color` grounder can find each entity by its colour hint (see specs/metaworld_*_color.ltl).
With `natural=True` nothing is repainted (Meta-World's own colours, materials and sites) and each frame's
ground-truth instance masks (gripper, arm, obj, goal site) come from MuJoCo's segmentation buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import Episode, Segmenter, start_episode
from .render import FixedCamera, ensure_gl

STRIDE = 4  # render every 4th control step: Meta-World steps at 80 Hz → 20 fps video
CAMERA = {"lookat": (0.0, 0.68, 0.12), "distance": 0.95, "azimuth": 140.0, "elevation": -32.0}
GREY, BLUE, RED, GREEN = (0.55, 0.55, 0.55, 1.0), (0.1, 0.2, 0.95, 1.0), (0.9, 0.05, 0.05, 1.0), \
    (0.05, 0.8, 0.1, 1.0)


@dataclass(frozen=True)
class MWTask:
    """One Meta-World task: env name, expert, horizon (steps), success radius and how to read obj / goal."""

    name: str  # benchmark task id, e.g. "mw_pick_place"
    env: str  # Meta-World env name, e.g. "pick-place-v3"
    policy: str  # class name in metaworld.policies
    horizon: int  # control steps (multiple of STRIDE)
    radius: float  # success radius of the task's own check (documentation; the label is info["success"])
    modes: tuple[str, ...]
    goal_in_obs: bool  # the expert reads the goal from the observation (wrong_target applies)
    grasps: bool  # the expert lifts the object (release applies)
    sentence: str  # what success looks like, for descriptions
    obj_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # added to obs[4:7] (as the env's check does)
    goal_z_from_obj: bool = False  # goal = (obj x, obj y, target z): checks that compare heights only
    obj_size: tuple[float, float, float] = (0.04, 0.04, 0.04)
    goal_marker: str = "sphere"  # "sphere" in the air or "disc" on the table
    goal_radius: float = 0.045  # disc radius: wider than the object so a ring stays visible around it


TASKS: dict[str, MWTask] = {t.name: t for t in [
    MWTask("mw_reach", "reach-v3", "SawyerReachV3Policy", 100, 0.05,
           ("none", "noise", "early_stop", "wrong_target"), True, False,
           "the gripper reaches the goal point"),
    MWTask("mw_push", "push-v3", "SawyerPushV3Policy", 160, 0.05,
           ("none", "noise", "early_stop", "wrong_target"), True, False,
           "the gripper pushes the puck onto the goal", goal_marker="disc"),
    MWTask("mw_pick_place", "pick-place-v3", "SawyerPickPlaceV3Policy", 160, 0.07,
           ("none", "noise", "early_stop", "wrong_target", "release"), True, True,
           "the gripper picks up the puck and holds it at the goal"),
    MWTask("mw_drawer_open", "drawer-open-v3", "SawyerDrawerOpenV3Policy", 120, 0.03,
           ("none", "noise", "early_stop"), False, False, "the gripper pulls the drawer open",
           obj_size=(0.1, 0.03, 0.03)),
    MWTask("mw_drawer_close", "drawer-close-v3", "SawyerDrawerCloseV3Policy", 120, 0.065,
           ("none", "noise", "early_stop"), False, False, "the gripper pushes the drawer shut",
           obj_size=(0.1, 0.03, 0.03)),
    MWTask("mw_button_press", "button-press-topdown-v3", "SawyerButtonPressTopdownV3Policy", 120, 0.024,
           ("none", "noise", "early_stop"), False, False, "the gripper presses the button down",
           goal_z_from_obj=True, obj_size=(0.04, 0.04, 0.02)),
    MWTask("mw_plate_slide", "plate-slide-v3", "SawyerPlateSlideV3Policy", 120, 0.07,
           ("none", "noise", "early_stop", "wrong_target"), True, False,
           "the gripper slides the plate into the goal", obj_size=(0.1, 0.1, 0.03), goal_marker="disc",
           goal_radius=0.09),
    MWTask("mw_faucet_open", "faucet-open-v3", "SawyerFaucetOpenV3Policy", 120, 0.07,
           ("none", "noise", "early_stop"), False, False, "the gripper turns the faucet handle open",
           obj_offset=(-0.04, 0.0, 0.03), obj_size=(0.05, 0.05, 0.03)),
]}

# how often each failure mode is drawn (renormalised over a task's modes): about half the episodes are the
# plain expert, so the set comes out roughly balanced between successes and failures
MODE_WEIGHTS = {"none": 0.30, "noise": 0.16, "early_stop": 0.18, "wrong_target": 0.2, "release": 0.2}

_ENV_CACHE: dict[tuple[str, int], Any] = {}


def entity_geoms(env: Any, task: MWTask) -> dict[str, set[int]]:
    """Geom ids of the entities a video shows: `gripper` (the fingers and pads), `arm` (the rest of the robot)
    and, except for reach, `obj` (the task object; the whole body for push / pick-place / plate-slide)."""
    m = env.model
    obj_geom = main_object_geom(env, task)
    obj_body = int(m.geom_bodyid[obj_geom]) if obj_geom >= 0 else -1
    finger_bodies = {m.body(n).id for n in ("rightclaw", "leftclaw", "rightpad", "leftpad")}
    robot_bodies = {b for b in range(m.nbody) if m.body(b).name == "hand" or m.body(b).name.startswith(
        ("right_", "head", "screen", "torso", "pedestal", "base", "controller"))}
    out: dict[str, set[int]] = {"gripper": set(), "arm": set(), "obj": set()}
    for g in range(m.ngeom):
        b = int(m.geom_bodyid[g])
        if b in finger_bodies:
            out["gripper"].add(g)
        elif b in robot_bodies:
            out["arm"].add(g)
        elif obj_body >= 0 and (g == obj_geom or (b == obj_body and task.name in
                                                 ("mw_push", "mw_pick_place", "mw_plate_slide"))):
            out["obj"].add(g)
    if task.name == "mw_reach":
        del out["obj"]
    return out


# the body whose visible geoms show the task object where `main_object_geom` finds none (its point is on it)
OBJECT_BODY = {"mw_button_press": "button", "mw_faucet_open": "faucet_link2"}


def segmenter(env: Any, task: MWTask) -> Segmenter:
    """Masks of gripper, arm, obj and — where the env draws one — the goal site, from segmentation buffers."""
    m = env.model
    geoms = entity_geoms(env, task)
    if task.name in OBJECT_BODY:
        body = m.body(OBJECT_BODY[task.name]).id
        geoms["obj"] = {g for g in range(m.ngeom) if int(m.geom_bodyid[g]) == body and int(m.geom_group[g]) <= 2}
    try:
        goal = {"goal": {int(m.site("goal").id)}}
    except KeyError:  # tasks without a goal site (button, faucet)
        goal = {}
    return Segmenter.build(m.ngeom, m.nsite, geoms, goal)


def _recolour(env: Any, task: MWTask) -> None:
    """Grey arm, blue fingers, red task object, green goal marker (for colour grounding)."""
    m = env.model
    import mujoco

    parts = entity_geoms(env, task)
    paint = {"gripper": BLUE, "arm": GREY, "obj": RED}
    for g in range(m.ngeom):
        owner = next((k for k in ("gripper", "arm", "obj") if g in parts.get(k, ())), None)
        if owner is not None:
            m.geom_rgba[g], m.geom_matid[g] = paint[owner], -1
        elif int(m.geom_group[g]) <= 2:  # any other saturated red / green / blue part → light grey
            mat = int(m.geom_matid[g])
            rgb = np.asarray(m.mat_rgba[mat][:3] if mat >= 0 else m.geom_rgba[g][:3], np.float64)
            if (rgb.max() - rgb.min() > 0.3 and np.argmax(rgb) != 1) or rgb[1] - max(rgb[0], rgb[2]) > 0.2:
                m.geom_rgba[g], m.geom_matid[g] = (0.8, 0.8, 0.8, 1.0), -1
    # every site hidden except the goal, drawn as a green ball (air goals) or a flat disc (table goals)
    m.site_rgba[:, 3] = 0.0
    try:
        gid = m.site("goal").id
    except KeyError:  # tasks without a goal site (button, faucet): no marker
        return
    m.site_rgba[gid] = GREEN
    if task.goal_marker == "disc":
        m.site_type[gid] = mujoco.mjtGeom.mjGEOM_CYLINDER
        m.site_size[gid] = (task.goal_radius, 0.002, 0.0)
    else:
        m.site_type[gid] = mujoco.mjtGeom.mjGEOM_SPHERE
        m.site_size[gid] = (0.02, 0.0, 0.0)


def main_object_geom(env: Any, task: MWTask) -> int:
    """Geom id of the task's main object (-1 for reach); some v3 envs' own lookup uses a removed API."""
    if task.name == "mw_reach":
        return -1
    try:
        return int(env._get_id_main_object())
    except (AttributeError, KeyError):
        for name in ("objGeom", "puck"):
            try:
                return int(env.model.geom(name).id)
            except KeyError:
                continue
        return -1


def make_env(task: MWTask, seed: int) -> Any:
    """The goal-observable Meta-World env of `task`, seeded (its reset randomises object and goal)."""
    ensure_gl()
    import metaworld

    cls = metaworld.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task.env}-goal-observable"]
    env = cls(seed=seed)
    env.max_path_length = max(env.max_path_length, task.horizon + 1)
    return env


def _positions(env: Any, obs: np.ndarray, task: MWTask) -> tuple[np.ndarray, np.ndarray]:
    """(obj point, goal point) exactly as the task's success check measures them."""
    obj = np.asarray(obs[4:7], np.float64) + np.asarray(task.obj_offset)
    goal = np.asarray(env._target_pos, np.float64).copy()
    if task.goal_z_from_obj:
        goal = np.array([obj[0], obj[1], goal[2]])
    return obj, goal


def run_episode(task_name: str, seed: int, mode: str | None = None,
                horizon: int | None = None, natural: bool = False) -> Episode:
    """Roll out one episode of `task_name` with `seed` (mode drawn from the seed unless given); render it.

    `natural`: keep Meta-World's own colours, materials and sites (no repainting) and record ground-truth
    instance masks of every entity from MuJoCo's segmentation buffer (`Episode.masks`)."""
    import metaworld.policies as policies

    task = TASKS[task_name]
    rng, mode, H = start_episode(task_name, task.modes, MODE_WEIGHTS, seed, mode, horizon or task.horizon, STRIDE)
    sigma = float(rng.uniform(0.4, 1.2))
    stop_at = int(rng.uniform(0.10, 0.45) * H)
    offset = rng.normal(size=3)
    offset[2] = offset[2] if task.grasps else 0.0
    offset *= rng.uniform(0.12, 0.22) / np.linalg.norm(offset)
    release_delay = int(rng.integers(0, 9))

    env = make_env(task, seed)
    obs, _ = env.reset(seed=seed)
    if not natural:
        _recolour(env, task)
    seg = segmenter(env, task) if natural else None
    labels: list[np.ndarray] = []
    policy = getattr(policies, task.policy)()
    cam = FixedCamera(env.model, **CAMERA)
    obj0 = _positions(env, obs, task)[0]
    obj_geom = main_object_geom(env, task)
    frames, grip, objs, goals, opening, touch, success = [], [], [], [], [], [], []
    lifted_at: int | None = None
    last = np.zeros(4)
    for step in range(H):
        seen = obs.copy()
        if mode == "wrong_target":
            seen[-3:] = seen[-3:] + offset
        a = np.asarray(policy.get_action(seen), np.float64)
        if mode == "noise":
            a = a + rng.normal(0.0, sigma, size=a.shape)
        elif mode == "early_stop" and step >= stop_at:
            a = np.array([0.0, 0.0, 0.0, last[3]])
        elif mode == "release":
            if lifted_at is None and _positions(env, obs, task)[0][2] > obj0[2] + 0.03:
                lifted_at = step
            if lifted_at is not None and step >= lifted_at + release_delay:
                a[3] = -1.0
        a = np.clip(a, -1.0, 1.0)
        last = a
        obs, _, _, _, info = env.step(a)
        if (step + 1) % STRIDE == 0:
            obj, goal = _positions(env, obs, task)
            if seg is None:
                frames.append(cam.render(env.data))
            else:
                rgb, buf = cam.render_segmented(env.data)
                frames.append(rgb)
                labels.append(seg(buf))
            grip.append(np.asarray(env.tcp_center, np.float64).copy())
            objs.append(obj)
            goals.append(goal)
            opening.append(float(np.clip(obs[3], 0.0, 1.0)))
            touch.append(bool(obj_geom >= 0 and env.touching_object(obj_geom)))
            success.append(bool(info["success"]))
    camera = cam.sidecar_camera
    cam.close()
    env.close()

    positions = {"gripper": np.array(grip), "goal": np.array(goals)}
    sizes: dict[str, tuple[float, ...]] = {"gripper": (0.05, 0.05, 0.06), "goal": (0.04, 0.04, 0.04)}
    contacts = {}
    if task.name != "mw_reach":
        positions["obj"] = np.array(objs)
        sizes["obj"] = task.obj_size
        contacts[("gripper", "obj")] = np.array(touch)
    ok = bool(success[-1])
    what = {"none": "the scripted expert", "noise": f"the expert with action noise (σ={sigma:.2f})",
            "early_stop": f"the expert stopping after {stop_at} of {H} steps",
            "wrong_target": f"the expert aiming at a goal moved {float(np.linalg.norm(offset)):.2f} m away",
            "release": "the expert opening the gripper after the lift"}[mode]
    desc = f"{task.env}: {what}; {'succeeds' if ok else 'fails'}: {task.sentence}" + ("." if ok else " does not hold at the end.")
    return Episode(
        suite="metaworld", task=task_name, failure_mode=mode, seed=seed, fps=80.0 / STRIDE,
        frames=np.stack(frames), positions=positions, sizes=sizes, openings={"gripper": np.array(opening)},
        contacts=contacts, success=np.array(success), camera=camera, description=desc,
        meta={"env": task.env, "horizon": H, "stride": STRIDE, "success_radius": task.radius,
              **({"natural": True} if natural else {})},
        masks=seg.masks(labels) if seg is not None else None,
    )


RUNNERS: dict[str, Callable[..., Episode]] = {name: run_episode for name in TASKS}
