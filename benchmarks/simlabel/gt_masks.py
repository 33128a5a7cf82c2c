"""The "ground-truth masks + camera" condition of a natural simlabel set: what a perfect segmenter gives.

    python -m benchmarks.simlabel.gt_masks --data /work/simdata/natural --out /work/simdata/natural_gt

For every item of a `--natural` set (benchmarks/simlabel/generate.py) it writes a sidecar that a user could
write for their own video from a perfect instance segmenter and a calibrated camera, and nothing else:

- `camera` — the sidecar's intrinsics and world→camera extrinsics (calibration, not state);
- per entity of the segmentation (MW gripper / arm / obj / goal site, RS object / left / right / arm): its
  per-frame instance mask (`mask`, in `<id>.seg.npz`, the generator's file), the mask's box (`box`, null
  where the entity is not seen) and `visible` (1 where its mask is non-empty);
- a goal that the render never shows (button-press and faucet-open have no goal site: `visible_fraction`
  has no `goal`) is given as the static pixel box of the task's goal point (± its 4 cm size) projected
  through the camera — the region a user would draw for it; such items are marked `goal_region: true`.

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

GOAL_SIZE = 0.04  # metres: the goal marker's extent in the generator's sidecars (MW goal size)


def _link(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst` (a copy when linking fails, e.g. across file systems)."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _boxes(masks: np.ndarray) -> list[list[float | None]]:
    """Per-frame boxes (x0, y0, x1, y1, exclusive ends) of (T, H, W) masks; a row of nulls where the mask is
    empty (the sidecar's "unseen" row)."""
    from ltlreward.raster import mask_boxes

    b = mask_boxes(masks)
    return [[None] * 4 if np.isnan(r[0]) else [float(v) for v in r] for r in b]


def _projected_box(camera: dict[str, Any], center: np.ndarray, size: float) -> list[float]:
    """The pixel box of the cube of side `size` around world point `center` seen through `camera`."""
    from ltlreward.grounding.backends.sidecar import parse_sidecar

    cam = parse_sidecar({"version": 1, "fps": 1, "n_frames": 1, "camera": camera,
                         "entities": {"p": {"box": [[0, 0, 1, 1]]}}}).camera
    half = (-size / 2, size / 2)
    corners = np.array([[x, y, z] for x in half for y in half for z in half]) + center  # (8, 3)
    uv = cam.project(corners)  # (8, 2)
    return [float(v) for v in (*uv.min(axis=0), *uv.max(axis=0))]


def gt_sidecar(sidecar: dict[str, Any], masks: dict[str, np.ndarray], seg_name: str) -> dict[str, Any]:
    """The ground-truth-masks + camera sidecar of one natural item (see the module docstring)."""
    T = int(sidecar["n_frames"])
    ents: dict[str, Any] = {}
    for name, m in masks.items():
        seen = m.reshape(T, -1).any(axis=1)
        ents[name] = {"box": _boxes(m), "mask": name, "visible": seen.astype(int).tolist()}
    goal_region = "goal" not in masks and "goal" in sidecar["entities"]
    if goal_region:
        centre = np.asarray(sidecar["entities"]["goal"]["position"][0], np.float64)
        box = _projected_box(sidecar["camera"], centre, GOAL_SIZE)
        ents["goal"] = {"box": [box] * T, "visible": [1] * T}
    meta = {k: sidecar["meta"][k] for k in ("suite", "task", "failure_mode", "seed") if k in sidecar["meta"]}
    meta.update(condition="gt_masks_camera", goal_region=goal_region)
    return {"version": 1, "fps": sidecar["fps"], "n_frames": T, "camera": sidecar["camera"], "arrays": seg_name,
            "entities": ents, "meta": meta}


def build(data: Path, out: Path) -> int:
    """Write the condition for every item of `data` under `out`; returns the number of items."""
    vdir = out / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    lines = (data / "labels.jsonl").read_text().splitlines()
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
        side = gt_sidecar(sidecar, masks, seg.name)
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
