"""robosuite (1.5, two Pandas facing each other): TwoArmLift and TwoArmHandover with scripted two-arm policies.

Both experts drive the arms with the default OSC_POSE controllers (world-frame targets rotated into each
robot's base frame). TwoArmLift: hover 12 cm above its own handle with the fingers turned across the handle
bar, descend, close, then lift together to 0.45 m above the table. Entities in every sidecar: the object
(`pot`: its bottom centre, the point robosuite's success check compares with the table, bottom > table top +
0.10 m; `hammer`: the handle's position with the height robosuite's check uses), `left` / `right` (the grip
sites of robot 0 / robot 1; opening from the finger joints, 1 = open) and the contacts `left`–object /
`right`–object (any contact between that arm's gripper and the object). Labels come from
`env._check_success()` at every rendered frame.

Failure modes (perturbations only; the label is what the simulator reports):
  none          the scripted expert
  noise         Gaussian noise on both arms' motion commands, σ drawn per episode in [0.3, 1.0]
  release       lift: one arm (drawn) opens 5–25 steps into the lift; handover: the right arm lets go after
                taking the hammer
  wrong_order   lift: one arm lifts as soon as it starts closing, before the other has a grip; handover: the
                left arm opens before the right arm has closed
  never_lifts   lift: both arms grasp the pot and hold it on the table; handover: the left arm grasps the
                hammer but never raises it

TwoArmHandover (`rs_two_arm_handover`): robosuite 1.5.2's `prehensile=False` start (hammer already in the left
gripper) crashes in `_reset_internal`, so the hammer starts on the table. The scripted expert: the left arm
picks the handle next to the head and raises it; the right arm grasps the free half of the handle from above;
the left arm lets go and withdraws; the right arm rises 5 cm. Neither arm turns once it holds (that would only
chase the hammer's own rotation). The expert succeeds in about 3 of 8 seeds (when the hammer swings in the left
grip the right arm misses the handle); the labels are the simulator's own either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import Episode, Segmenter, start_episode
from .render import FixedCamera, ensure_gl

CONTROL_HZ = 20
STRIDE = 2  # render every 2nd control step → 10 fps
CAMERA = {"lookat": (0.0, 0.0, 1.0), "distance": 1.3, "azimuth": 180.0, "elevation": -25.0}
CAMERA_HANDOVER = {"lookat": (0.0, -0.12, 1.0), "distance": 1.5, "azimuth": 180.0, "elevation": -28.0}
GREY, BLUE, GREEN, RED = (0.6, 0.6, 0.6, 1.0), (0.1, 0.2, 0.95, 1.0), (0.05, 0.8, 0.1, 1.0), \
    (0.9, 0.05, 0.05, 1.0)
SUCCESS_HEIGHT = 0.10  # robosuite TwoArmLift: pot bottom above the table top by this much


@dataclass(frozen=True)
class RSTask:
    """One robosuite task: env name, horizon (control steps) and its failure modes."""

    name: str
    env: str
    horizon: int
    modes: tuple[str, ...]
    sentence: str


TASKS: dict[str, RSTask] = {t.name: t for t in [
    RSTask("rs_two_arm_lift", "TwoArmLift", 160, ("none", "noise", "release", "wrong_order", "never_lifts"),
           "both arms lift the pot by its handles"),
    RSTask("rs_two_arm_handover", "TwoArmHandover", 220,
           ("none", "noise", "release", "wrong_order", "never_lifts"),
           "the left arm hands the hammer to the right arm, which holds it up alone"),
]}
EXPERIMENTAL: frozenset[str] = frozenset()  # tasks left out of `all` / `robosuite` unless named
MODE_WEIGHTS = {"none": 0.46, "noise": 0.14, "release": 0.14, "wrong_order": 0.12, "never_lifts": 0.14}

_ENVS: dict[str, Any] = {}  # one env per task per process: building one takes 15-30 s, a soft reset < 1 s


def _env(task: RSTask, natural: bool = False) -> Any:
    """The task's env, built once per process and per look (repainting changes the model in place)."""
    ensure_gl()
    key = f"{task.name}:natural" if natural else task.name
    env = _ENVS.get(key)
    if env is None:
        import robosuite as suite
        from robosuite import load_composite_controller_config

        cfg = load_composite_controller_config(controller="BASIC")
        extra = {"prehensile": True} if task.env == "TwoArmHandover" else {}  # False is broken in 1.5.2
        env = suite.make(task.env, robots=["Panda", "Panda"], controller_configs=cfg, has_renderer=False, **extra,
                         has_offscreen_renderer=False, use_camera_obs=False, control_freq=CONTROL_HZ,
                         horizon=task.horizon + 10, hard_reset=False, seed=0)
        _ENVS[key] = env
    return env


def entity_geoms(m: Any, env: Any) -> dict[str, set[int]]:
    """Geom ids of the entities a video shows: the object (`pot` or `hammer`), `left` / `right` (each robot's
    gripper) and `arm` (the rest of both robots and their mounts)."""
    obj = "pot" if any(m.body(i).name.startswith("pot") for i in range(m.nbody)) else "hammer"
    pot_bodies = {i for i in range(m.nbody) if m.body(i).name.startswith(("pot", "hammer"))}
    g_left = env.robots[0].gripper["right"].naming_prefix
    g_right = env.robots[1].gripper["right"].naming_prefix
    r_pref = (env.robots[0].robot_model.naming_prefix, env.robots[1].robot_model.naming_prefix)
    out: dict[str, set[int]] = {obj: set(), "left": set(), "right": set(), "arm": set()}
    for g in range(m.ngeom):
        body = m.body(int(m.geom_bodyid[g])).name
        if int(m.geom_bodyid[g]) in pot_bodies:
            out[obj].add(g)
        elif body.startswith(g_left):
            out["left"].add(g)
        elif body.startswith(g_right):
            out["right"].add(g)
        elif body.startswith(r_pref) or body.startswith(("mount", "fixed_mount")):
            out["arm"].add(g)
    return out


def _recolour(m: Any, env: Any) -> None:
    """Grey robots, blue left fingers, green right fingers, red pot or hammer (for colour grounding)."""
    for name, geoms in entity_geoms(m, env).items():
        colour = {"left": BLUE, "right": GREEN, "arm": GREY}.get(name, RED)
        for g in geoms:
            m.geom_rgba[g], m.geom_matid[g] = colour, -1


def _opening(q: np.ndarray) -> float:
    """Panda finger joints (+0.04, −0.04 when open) → opening in [0, 1]."""
    return float(np.clip((q[0] - q[1]) / 0.08, 0.0, 1.0))


def _yaw_error(quat: np.ndarray, want: np.ndarray) -> float:
    """Yaw (rad, in [-π/2, π/2)) turning the fingers' closing axis (the grip frame's y) onto `want` (xy)."""
    import robosuite.utils.transform_utils as T

    fa = T.quat2mat(quat)[:, 1].copy()
    fa[2] = 0.0
    fa /= np.linalg.norm(fa) + 1e-9
    err = np.arctan2(fa[0] * want[1] - fa[1] * want[0], fa @ want)
    return float((err + np.pi / 2) % np.pi - np.pi / 2)


def _arm_action(env: Any, obs: dict, i: int, target: np.ndarray, across: np.ndarray | None, grip: float,
                noise: np.ndarray | None) -> np.ndarray:
    """One arm's 7 action numbers: move towards `target` (world), fingers turned to close along `across`
    (None once the arm holds the object: turning then would only chase the object's own rotation)."""
    base = np.array(env.sim.data.get_body_xmat(env.robots[i].robot_model.root_body))
    delta = (target - obs[f"robot{i}_eef_pos"]) * 10.0
    if noise is not None:
        delta = delta + noise
    a = np.zeros(7)
    a[:3] = np.clip(base.T @ delta, -1.0, 1.0)
    if across is not None:
        a[5] = np.clip(3.0 * _yaw_error(obs[f"robot{i}_eef_quat"], across), -1.0, 1.0)
    a[6] = grip
    return a


def _lift_policy(env: Any, obs: dict, step: int, H: int, mode: str, arm: int, release_after: int,
                 noise: Callable[[], np.ndarray | None], table_z: float, memo: dict) -> np.ndarray:
    """TwoArmLift expert: hover over the handles, descend, close, lift to 0.45 m above the table."""
    t_desc, t_close, t_lift = int(0.31 * H), int(0.5 * H), int(0.625 * H)
    h = obs["handle1_xpos"] - obs["handle0_xpos"]
    h[2] = 0.0
    h /= np.linalg.norm(h) + 1e-9
    a = np.zeros(14)
    for i in range(2):
        lifting = step >= t_lift
        if mode == "wrong_order" and i == arm:
            lifting = step >= t_close
        if mode == "never_lifts":
            lifting = False
        target = obs[f"handle{i}_xpos"] + np.array([0.0, 0.0, 0.12 if step < t_desc else 0.0])
        if lifting:  # up to a fixed height: 0.45 m above the table (the handles start 0.13 m above it)
            target[2] = table_z + 0.45
        grip = 1.0 if step >= t_close else -1.0
        if mode == "release" and i == arm and step >= t_lift + release_after:
            grip = -1.0
        a[7 * i:7 * i + 7] = _arm_action(env, obs, i, target, h, grip, noise())
    return a


def _handover_policy(env: Any, obs: dict, step: int, H: int, mode: str, arm: int, release_after: int,
                     noise: Callable[[], np.ndarray | None], table_z: float, memo: dict) -> np.ndarray:
    """TwoArmHandover expert: the left arm picks the hammer's handle near the head and raises it; the right
    arm grasps the handle's free end from above; the left arm lets go and withdraws; the right arm keeps it."""
    f = H / 220.0
    t0_desc, t0_close, t0_lift = int(40 * f), int(65 * f), int(80 * f)
    t1_go, t1_desc, t1_close, t0_open = int(110 * f), int(140 * f), int(160 * f), int(175 * f)
    gid = env.hammer_handle_geom_id
    centre = np.array(env.sim.data.geom_xpos[gid])
    axis = np.array(env.sim.data.geom_xmat[gid]).reshape(3, 3)[:, 2]
    head = np.array(env.sim.data.geom_xpos[env.sim.model.geom_name2id(env.hammer.head_geoms[0])])
    head_dir = np.sign(axis @ (head - centre)) or 1.0
    flat = axis.copy()
    flat[2] = 0.0
    flat /= np.linalg.norm(flat) + 1e-9
    across = np.array([-flat[1], flat[0], 0.0])
    p0 = centre + head_dir * 0.045 * axis  # left arm: next to the head
    p1 = centre - head_dir * 0.03 * axis  # right arm: the free half of the handle
    lift_z = table_z + 0.35
    a = np.zeros(14)
    # left arm
    if step < t0_desc:
        tgt0 = p0 + np.array([0.0, 0.0, 0.12])
    elif step < t0_lift or mode == "never_lifts":
        tgt0 = p0.copy()
    else:
        tgt0 = np.array([p0[0] * 0.3, -0.08, lift_z]) if step < t0_open else p0 + np.array([0.0, -0.15, 0.12])
    grip0 = 1.0 if t0_close <= step < t0_open else -1.0
    if mode == "wrong_order" and step >= t1_go + 5:
        grip0 = -1.0  # lets go before the right arm has a grip
    if step >= t0_open and step < t0_open + 6:
        tgt0 = obs["robot0_eef_pos"].copy()  # open in place before withdrawing
    a[:7] = _arm_action(env, obs, 0, tgt0, across if step < t0_close else None, grip0, noise())
    # right arm
    if step < t1_go:
        tgt1 = obs["robot1_eef_pos"].copy()
        tgt1[2] = max(tgt1[2], lift_z + 0.1)
    elif step < t1_desc:
        tgt1 = p1 + np.array([0.0, 0.0, 0.10])
    elif step < t1_close:
        tgt1 = p1.copy()
    else:  # holding: stay where the grasp closed, then rise 5 cm once the left arm has let go
        held = memo.setdefault("right_grasp", obs["robot1_eef_pos"].copy())
        tgt1 = held + np.array([0.0, 0.0, 0.05 if step >= t0_open + 6 else 0.0])
    grip1 = 1.0 if step >= t1_close else -1.0
    if mode == "release" and step >= t0_open + 20 + release_after:
        grip1 = -1.0
    a[7:] = _arm_action(env, obs, 1, tgt1, across if step < t1_close else None, grip1, noise())
    return a


def run_episode(task_name: str, seed: int, mode: str | None = None, horizon: int | None = None,
                natural: bool = False) -> Episode:
    """Roll out one episode of `task_name` with `seed` (mode drawn from the seed unless given); render it.

    `natural`: keep robosuite's own colours and textures (no repainting) and record ground-truth instance
    masks of the object, both grippers and the arms from MuJoCo's segmentation buffer (`Episode.masks`)."""
    task = TASKS[task_name]
    rng, mode, H = start_episode(task_name, task.modes, MODE_WEIGHTS, seed, mode, horizon or task.horizon, STRIDE)
    sigma = float(rng.uniform(0.3, 1.0))
    arm = int(rng.integers(0, 2))  # TwoArmLift: the arm that releases / lifts early
    release_after = int(rng.integers(5, 26))

    def noise() -> np.ndarray | None:
        return rng.normal(0.0, sigma, 3) if mode == "noise" else None

    env = _env(task, natural)
    env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state  # the sampler shares env.rng
    obs = env.reset()
    m, d = env.sim.model._model, env.sim.data._data
    seg = Segmenter.build(m.ngeom, m.nsite, entity_geoms(m, env)) if natural else None
    if not natural:
        _recolour(m, env)
    labels: list[np.ndarray] = []
    cam = FixedCamera(m, **(CAMERA if task.env == "TwoArmLift" else CAMERA_HANDOVER))
    table_z = float(env.sim.data.site_xpos[env.table_top_id][2])
    grippers = [r.gripper["right"] for r in env.robots]
    lift = task.env == "TwoArmLift"
    obj = "pot" if lift else "hammer"
    policy = _lift_policy if lift else _handover_policy

    memo: dict[str, Any] = {}  # policy state across steps (handover: where the right arm closed)
    frames, pos = [], {obj: [], "left": [], "right": []}
    opening: dict[str, list[float]] = {"left": [], "right": []}
    grasp: dict[str, list[bool]] = {"left": [], "right": []}
    success = []
    for step in range(H):
        obs, _, _, _ = env.step(policy(env, obs, step, H, mode, arm, release_after, noise, table_z, memo))
        if (step + 1) % STRIDE == 0:
            if seg is None:
                frames.append(cam.render(d))
            else:
                rgb, buf = cam.render_segmented(d)
                frames.append(rgb)
                labels.append(seg(buf))
            if lift:
                p = env.sim.data.site_xpos[env.pot_center_id].copy()
                p[2] -= env.pot.top_offset[2]  # the pot's bottom, as robosuite's check measures it
                held = [env.check_contact(grippers[i], env.pot) for i in range(2)]
            else:
                _, _, hz, _ = env._get_task_info()
                if not np.isfinite(hz):  # robosuite's arccos gets a dot product a hair above 1 → NaN
                    import robosuite.utils.transform_utils as T

                    zc = float(np.clip(T.quat2mat(env._hammer_quat)[2, 2], -1.0, 1.0))
                    angle = np.pi / 2 - np.arccos(zc)
                    hz = float(env.sim.data.geom_xpos[env.hammer_handle_geom_id][2] - env.hammer.top_offset[2]
                               - (env.hammer.handle_length / 2 + 2 * env.hammer.head_halfsize) * np.sin(angle))
                p = np.array(env.sim.data.geom_xpos[env.hammer_handle_geom_id], np.float64)
                p[2] = hz  # the hammer height robosuite's check compares with the table
                held = [env.check_contact(grippers[i], env.hammer) for i in range(2)]
            pos[obj].append(p)
            for i, who in enumerate(("left", "right")):
                pos[who].append(np.array(obs[f"robot{i}_eef_pos"], np.float64))
                opening[who].append(_opening(obs[f"robot{i}_gripper_qpos"]))
                grasp[who].append(bool(held[i]))
            success.append(bool(env._check_success()))
    camera = cam.sidecar_camera
    cam.close()
    ok = bool(success[-1])
    who = "left" if arm == 0 else "right"
    if lift:
        what = {"none": "the scripted two-arm expert", "noise": f"the expert with motion noise (σ={sigma:.2f})",
                "release": f"the expert whose {who} arm lets go during the lift",
                "wrong_order": f"the expert whose {who} arm lifts before the other arm has a grip",
                "never_lifts": "the expert grasping the pot but never lifting it"}[mode]
    else:
        what = {"none": "the scripted two-arm expert", "noise": f"the expert with motion noise (σ={sigma:.2f})",
                "release": "the expert whose right arm lets the hammer go after taking it",
                "wrong_order": "the expert whose left arm opens before the right arm has a grip",
                "never_lifts": "the expert whose left arm grasps the hammer but never lifts it"}[mode]
    desc = f"{task.env}: {what}; {'succeeds' if ok else 'fails'}: {task.sentence}" + \
        ("." if ok else " does not hold at the end.")
    size = (0.16, 0.16, 0.12) if lift else (0.16, 0.06, 0.04)
    return Episode(
        suite="robosuite", task=task_name, failure_mode=mode, seed=seed, fps=CONTROL_HZ / STRIDE,
        frames=np.stack(frames), positions={k: np.array(v) for k, v in pos.items()},
        sizes={obj: size, "left": (0.06, 0.06, 0.08), "right": (0.06, 0.06, 0.08)},
        openings={k: np.array(v) for k, v in opening.items()},
        contacts={("left", obj): np.array(grasp["left"]), ("right", obj): np.array(grasp["right"])},
        success=np.array(success), camera=camera, description=desc,
        meta={"env": task.env, "horizon": H, "stride": STRIDE, "table_height": round(table_z, 5),
              "success_height": SUCCESS_HEIGHT, **({"natural": True} if natural else {})},
        masks=seg.masks(labels) if seg is not None else None,
    )


RUNNERS: dict[str, Callable[..., Episode]] = {name: run_episode for name in TASKS}
