"""Prompts files for a generated simlabel set, made as a user would draw them: for every entity of the item's
state spec, the box of its ground-truth instance mask on frame 0 (`<id>.seg.npz`, natural renders), plus
what the ground-truth-masks condition (gt_masks.py) also gives: the sidecar's camera, the table height as
`support`, and each task entity's known dimensions (`size` / `shape` / `anchor`, extents.json), so metre
specs run from pixels in 2.5-D.

    python -m benchmarks.simlabel.make_prompts --data /work/simdata/natural --out /work/simdata/natural_prompts

Rules (a user knows the scene of the first frame):
- an entity with a visible frame-0 mask gets `{"box": [x0, y0, x1, y1]}` (pixels, exclusive ends);
- the goal (an `: region` entity) is `"static": true`: a goal marker does not move;
- a goal that is never drawn (button-press and faucet-open: their target is a point inside the mechanism)
  gets a static box made from the simulator's goal position and size projected through the camera — what a
  user who knows the target would mark. `--invisible-goals omit` leaves such goals out instead (the track
  grounder then needs `unprompted='unseen'`).
Only the frame-0 masks, the camera and the table height are read; positions only for those undrawn goals. Writes
`<out>/<id>.prompts.json` (never into the repository) and prints a count per task.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def frame0_box(mask: np.ndarray) -> list[int] | None:
    """Integer box [x0, y0, x1, y1] (exclusive ends) of a (H, W) bool mask, None when empty."""
    from ltlreward.raster import mask_boxes

    b = mask_boxes(mask)
    return None if np.isnan(b[0]) else [int(v) for v in b]


def projected_box(sidecar: dict, name: str) -> list[float]:
    """The image box of an entity's frame-0 position ± half its size, projected through the sidecar camera."""
    from ltlreward.grounding.backends.sidecar import parse_sidecar

    sc = parse_sidecar(sidecar)
    pos, size = sc.positions[name][0], sc.sizes[name][0]
    corners = pos + size * np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)])  # (8, 3)
    uv = sc.camera.project(corners)  # (8, 2)
    lo, hi = np.clip(uv.min(axis=0), 0, None), np.minimum(uv.max(axis=0), [sc.camera.width, sc.camera.height])
    return [round(float(v), 1) for v in (*lo, *hi)]


def make_prompts(row: dict, data: Path, invisible_goals: str) -> tuple[dict, list[str]]:
    """The prompts object of one labelled item and the names of its undrawn goals (projected or left out)."""
    from benchmarks.simlabel.gt_masks import EXTENTS, MW_TABLE_Z
    from ltlreward.spec import load_spec

    spec = load_spec(REPO / row["spec"])
    known = json.loads(EXTENTS.read_text())[row["task"]]
    stem = data / Path(row["video"]).with_suffix("")
    sidecar = json.loads(stem.with_suffix(".sidecar.json").read_text())
    seg = np.load(stem.with_suffix(".seg.npz"))
    entities, projected, undrawn = {}, [], []
    for e in spec.entities:
        static = e.kind == "region"
        box = frame0_box(seg[e.name][0]) if e.name in seg.files else None
        undrawn += [e.name] if box is None and static else []
        if box is None and static and invisible_goals == "project":
            entities[e.name] = {"box": projected_box(sidecar, e.name), "static": True, **known.get(e.name, {})}
            projected.append(e.name)
        elif box is not None:
            entities[e.name] = {"box": box, **({"static": True} if static else {}), **known.get(e.name, {})}
    meta = sidecar["meta"]
    support = meta.get("table_height", MW_TABLE_Z if meta["suite"] == "metaworld" else None)
    prompts = {"version": 1, "frame": 0, "entities": entities, "camera": sidecar["camera"], "support": {"z": support},
               "meta": {"made_by": "benchmarks/simlabel/make_prompts.py", "projected": projected}}
    return prompts, undrawn


def dumps(prompts: dict) -> str:
    """The prompts as JSON with one line per top-level field and per entity."""
    lines = [f' "{k}": {json.dumps(v)}' for k, v in prompts.items() if k != "entities"]
    ents = ",\n".join(f'  "{n}": {json.dumps(e)}' for n, e in prompts["entities"].items())
    lines.insert(2, f' "entities": {{\n{ents}\n }}')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a generated set with --natural (labels.jsonl, videos/*.seg.npz)")
    ap.add_argument("--out", required=True, help="directory for <id>.prompts.json")
    ap.add_argument("--invisible-goals", choices=("project", "omit"), default="project")
    ap.add_argument("--drawn-labels", default=None, help="also write the labels of the items whose goal is drawn "
                    "(or that have no goal) here, video paths absolute: the 'outcome visible' subset")
    a = ap.parse_args(argv)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    rows = [json.loads(x) for x in (data / "labels.jsonl").read_text().splitlines() if x.strip()]
    drawn = []
    for row in rows:
        prompts, undrawn = make_prompts(row, data, a.invisible_goals)
        (out / f"{Path(row['video']).stem}.prompts.json").write_text(dumps(prompts))
        counts[(row["task"], f"goal not drawn ({a.invisible_goals})" if undrawn else "all drawn")] += 1
        if not undrawn:
            drawn.append(json.dumps({**row, "video": str((data / row["video"]).resolve())}))
    if a.drawn_labels:
        Path(a.drawn_labels).write_text("".join(x + "\n" for x in drawn))
        print(f"{len(drawn)} labels of items whose goal is drawn in {a.drawn_labels}")
    for (task, how), n in sorted(counts.items()):
        print(f"{task:22s} {how:15s} {n}")
    print(f"{len(rows)} prompts files in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
