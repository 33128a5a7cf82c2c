"""Known entity dimensions of the simlabel tasks, read off the simulators' models at reset (needs the sim extra).

    MUJOCO_GL=egl python -m benchmarks.simlabel.extents --out benchmarks/simlabel/extents.json   # (stdout without --out)

For every task and every entity the natural render segments, the axis-aligned world extent (metres) of the
geoms that the segmentation draws (visible groups 0–2) — or, for a site such as Meta-World's goal marker, its
sphere — right after `reset` with seed 0, and the entity's reference point relative to the centre of that
extent (`anchor`: the sidecar position is the task's own point, e.g. robosuite's pot *bottom*, Meta-World's
tool-centre point between the pads). These are object dimensions and conventions (what a user knows about
the objects in the scene), not state: the ground-truth-masks condition (gt_masks.py) gives them to the
2.5-D predicate semantics as `size` / `shape` / `anchor`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).with_name("extents.json")


SPHERE, CYLINDER = 2, 5  # mujoco.mjtGeom values


def _geom_box(m: Any, d: Any, geoms: set[int]) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(centre, size, shape) of the world AABB of the visible, non-plane geoms in `geoms` (None when there are
    none); shape "cylinder" / "sphere" when every one of them is an upright cylinder / a sphere, else "box"."""
    lo, hi, types = [], [], set()
    for g in sorted(geoms):
        if int(m.geom_type[g]) == 0 or int(m.geom_group[g]) > 2 or float(m.geom_rgba[g][3]) == 0.0:
            continue  # planes are unbounded; groups > 2 and transparent geoms are not drawn
        upright = abs(float(np.asarray(d.geom_xmat[g]).reshape(3, 3)[2, 2])) > 0.99
        types.add(int(m.geom_type[g]) if int(m.geom_type[g]) == SPHERE or upright else -1)
        R = np.asarray(d.geom_xmat[g], np.float64).reshape(3, 3)
        c = np.asarray(d.geom_xpos[g], np.float64) + R @ np.asarray(m.geom_aabb[g][:3], np.float64)
        h = np.abs(R) @ np.asarray(m.geom_aabb[g][3:], np.float64)
        lo.append(c - h)
        hi.append(c + h)
    if not lo:
        return None
    a, b = np.min(lo, axis=0), np.max(hi, axis=0)
    shape = {frozenset({SPHERE}): "sphere", frozenset({CYLINDER}): "cylinder"}.get(frozenset(types), "box")
    return (a + b) / 2, b - a, shape


def _entry(centre: np.ndarray, size: np.ndarray, shape: str, point: np.ndarray) -> dict[str, Any]:
    return {"size": np.round(size, 4).tolist(), "shape": shape, "anchor": np.round(point - centre, 4).tolist()}


def metaworld_extents(task_name: str) -> dict[str, Any]:
    """Extents of gripper / obj / goal of one Meta-World task at reset (seed 0)."""
    from . import metaworld_tasks as mw

    task = mw.TASKS[task_name]
    env = mw.make_env(task, 0)
    obs, _ = env.reset(seed=0)
    m, d = env.model, env.data
    geoms = mw.entity_geoms(env, task)
    if task.name in mw.OBJECT_BODY:
        body = m.body(mw.OBJECT_BODY[task.name]).id
        geoms["obj"] = {g for g in range(m.ngeom) if int(m.geom_bodyid[g]) == body}
    obj, goal = mw._positions(env, obs, task)
    points = {"gripper": np.asarray(env.tcp_center, np.float64), "obj": obj}
    out = {}
    for name in ("gripper", "obj"):
        box = _geom_box(m, d, geoms.get(name, set())) if name in geoms else None
        if box is not None:
            out[name] = _entry(*box, points[name])
    try:
        sid = m.site("goal").id
        r = float(m.site_size[sid][0])
        out["goal"] = _entry(np.asarray(d.site_xpos[sid], np.float64), np.full(3, 2 * r), "sphere", goal)
    except KeyError:
        pass  # no goal site (button, faucet): the goal is not drawn
    env.close()
    return out


def robosuite_extents(task_name: str) -> dict[str, Any]:
    """Extents of the object (pot / hammer) and both grippers of one robosuite task at reset (seed 0)."""
    from . import robosuite_tasks as rs

    task = rs.TASKS[task_name]
    env = rs._env(task, natural=True)
    env.rng.bit_generator.state = np.random.default_rng(0).bit_generator.state
    obs = env.reset()
    m, d = env.sim.model._model, env.sim.data._data
    geoms = rs.entity_geoms(m, env)
    if task.env == "TwoArmLift":
        obj, p = "pot", env.sim.data.site_xpos[env.pot_center_id].copy()
        p[2] -= env.pot.top_offset[2]
    else:
        obj, p = "hammer", np.array(env.sim.data.geom_xpos[env.hammer_handle_geom_id], np.float64)
        p[2] = float(env._get_task_info()[2])
    points = {obj: p, "left": np.asarray(obs["robot0_eef_pos"]), "right": np.asarray(obs["robot1_eef_pos"])}
    out = {}
    for name, point in points.items():
        box = _geom_box(m, d, geoms[name])
        if box is not None:
            out[name] = _entry(*box, np.asarray(point, np.float64))
    return out


def main() -> None:
    import argparse

    from . import metaworld_tasks as mw
    from . import robosuite_tasks as rs
    from .render import ensure_gl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help=f"write the table here (the shipped one is {OUT.name}); else stdout")
    a = ap.parse_args()
    ensure_gl()
    table = {name: metaworld_extents(name) for name in mw.TASKS}
    table.update({name: robosuite_extents(name) for name in rs.TASKS})
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    if a.out is None:
        print(text, end="")
    else:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
