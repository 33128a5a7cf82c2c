"""The "ground-truth masks + camera" condition of a natural simlabel set: what a perfect segmenter gives.

    python -m benchmarks.simlabel.gt_masks --data /work/simdata/natural --out /work/simdata/natural_gt

For every item of a `--natural` set (benchmarks/simlabel/generate.py) it writes a sidecar holding what a
perfect instance segmenter and a calibrated camera give, plus what a user knows of the scene's objects, and
nothing else:

- `camera` — the sidecar's intrinsics and world→camera extrinsics (calibration, not state);
- `support` — the height of the table top the objects stand on (robosuite: `meta.table_height`; Meta-World's
  table top is the world plane z = 0);
- per entity of the segmentation (MW gripper / arm / obj / goal site, RS object / left / right / arm): its
  per-frame instance mask (`mask`, in the generator's `<id>.seg.npz`) — boxes, centres and visibility follow
  from it — and, for the task's entities, the object's known dimensions (`size`, `shape`, `anchor`: where the
  task's reference point lies on it) from extents.json, read off the simulators' models at reset;
- a goal the render never shows (button-press and faucet-open draw no goal site: `visible_fraction` has no
  `goal`) cannot be judged from pixels; it is given as a static metric `region` (the task's goal point, ± 2 cm)
  — what a user would state for it — and such items are marked `goal_region: true` in the sidecar's meta.

Left out on purpose: positions, contacts, gripper openings, success flags — simulator state a segmenter
does not see. Videos are hard links (copies across file systems) of the natural set's mp4 files, and
`labels.jsonl` is the natural set's, so `ltlreward agree --labels OUT/labels.jsonl --grounder state` scores
the condition with the same specs as the state rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

GOAL_SIZE = 0.04  # metres: the extent given to a goal region (the MW goal marker's size)
MW_TABLE_Z = 0.0  # Meta-World's table top is the world plane z = 0 (objects rest at half their height)
EXTENTS = Path(__file__).with_name("extents.json")


def _link(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst` (a copy when linking fails, e.g. across file systems)."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def gt_sidecar(sidecar: dict[str, Any], masks: dict[str, np.ndarray], seg_name: str,
               extents: dict[str, Any]) -> dict[str, Any]:
    """The ground-truth-masks + camera sidecar of one natural item (see the module docstring)."""
    meta = sidecar["meta"]
    ents: dict[str, Any] = {name: {"mask": name, **extents.get(name, {})} for name in masks}
    goal_region = "goal" not in masks and "goal" in sidecar["entities"]
    if goal_region:
        centre = [float(v) for v in sidecar["entities"]["goal"]["position"][0]]
        ents["goal"] = {"region": {"center": centre, "size": [GOAL_SIZE] * 3}}
    support = meta.get("table_height", MW_TABLE_Z if meta["suite"] == "metaworld" else None)
    keep = {k: meta[k] for k in ("suite", "task", "failure_mode", "seed") if k in meta}
    keep.update(condition="gt_masks_camera", goal_region=goal_region)
    return {"version": 1, "fps": sidecar["fps"], "n_frames": int(sidecar["n_frames"]), "camera": sidecar["camera"],
            "support": {"z": support}, "arrays": seg_name, "entities": ents, "meta": keep}


def build(data: Path, out: Path) -> int:
    """Write the condition for every item of `data` under `out`; returns the number of items."""
    vdir = out / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    lines = (data / "labels.jsonl").read_text().splitlines()
    table = json.loads(EXTENTS.read_text())
    for line in lines:
        rec = json.loads(line)
        video = data / rec["video"]
        stem = video.with_suffix("")
        sidecar = json.loads(stem.with_suffix(".sidecar.json").read_text())
        seg = data / "videos" / sidecar["meta"]["segmentation"]
        with np.load(seg) as z:
            masks = {k: z[k] for k in z.files}
        _link(video, vdir / video.name)
        _link(seg, vdir / seg.name)
        side = gt_sidecar(sidecar, masks, seg.name, table[rec["task"]])
        (vdir / f"{video.stem}.sidecar.json").write_text(json.dumps(side, separators=(",", ":")))
    (out / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a natural set (generate --natural)")
    ap.add_argument("--out", type=Path, required=True, help="where the condition's sidecars and links go")
    a = ap.parse_args()
    n = build(a.data, a.out)
    print(f"{n} items written to {a.out}")


if __name__ == "__main__":
    main()
