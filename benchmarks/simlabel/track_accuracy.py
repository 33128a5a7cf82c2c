"""How often the prompted tracker's centre lies on the entity, against the ground-truth instance masks of a
natural simlabel set (`generate --natural`: `<id>.seg.npz`), with prompts from `make_prompts.py`.

    python -m benchmarks.simlabel.track_accuracy --data /work/simdata/natural --prompts /work/simdata/natural_prompts \
        [--every 1] [--start 0] [--json out.json]

For every labelled item and every prompted entity, over the frames where its ground-truth mask is non-empty:
- **on mask**: the tracked centre (box centre) lies on a mask pixel — the literal criterion; a two-finger
  gripper's or a U-shaped handle's box centre lies between its parts, so even the ground-truth box's own
  centre fails it there (printed as the ceiling);
- **on hull**: the centre lies on the mask's convex hull (the entity with its concavities filled).
Static entities (the goals) count too: their centre is the prompt's. Prints per task × entity, per entity
kind (suite + entity name) and overall, the misses (items below 90 % on the hull) and the tracker's own speed
(grounding only, decoded frames; the machine's load shows in it — see benchmarks/README.md for the timing
measured beside decoding).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def hulls(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: each frame's mask with its convex hull filled (cv2.convexHull)."""
    import cv2

    out = masks.copy()
    for t in np.flatnonzero(masks.any(axis=(1, 2))):
        hull = cv2.convexHull(cv2.findNonZero(masks[t].astype(np.uint8)))
        cv2.fillConvexPoly(out[t].view(np.uint8), hull, 1)
    return out | masks


def on(masks: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(T,) bool: whether each frame's centre (T, 2) lies on that frame's mask (T, H, W); False for NaN."""
    T, H, W = masks.shape
    ok = ~np.isnan(centres[:, 0])
    x = np.clip(np.nan_to_num(centres[:, 0]), 0, W - 1).astype(int)
    y = np.clip(np.nan_to_num(centres[:, 1]), 0, H - 1).astype(int)
    return masks[np.arange(T), y, x] & ok


def score_item(row: dict, data: Path, prompts_dir: Path, grounder) -> tuple[dict, float, int]:
    """{entity: (on mask, on hull, GT-centre on mask, visible frames)} for one item, grounding seconds, frames."""
    from ltlreward.raster import box_centers, mask_boxes
    from ltlreward.spec import load_spec
    from ltlreward.video import read_video

    video = read_video(data / row["video"])
    spec = load_spec(REPO / row["spec"])
    seg = np.load((data / row["video"]).with_suffix(".seg.npz"))
    t0 = time.perf_counter()
    obs = grounder.ground(video, spec.entities, prompts=prompts_dir / f"{Path(row['video']).stem}.prompts.json")
    seconds = time.perf_counter() - t0
    out = {}
    for i, name in enumerate(obs.entities):
        if name not in seg.files:
            continue  # an undrawn goal: no ground truth in the image
        gt = seg[name][: obs.n_frames]
        vis = gt.any(axis=(1, 2))
        gt_centre = box_centers(mask_boxes(gt))
        out[name] = (int(on(gt, obs.centers[i])[vis].sum()), int(on(hulls(gt), obs.centers[i])[vis].sum()),
                     int(on(gt, gt_centre)[vis].sum()), int(vis.sum()))
    return out, seconds, video.n_frames


def rate(a: np.ndarray, k: int) -> str:
    return f"{a[k] / a[3]:.3f}" if a[3] else "–"


def main(argv: list[str] | None = None) -> int:
    from ltlreward.grounding import get_grounder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--prompts", required=True, help="directory of <id>.prompts.json (make_prompts.py)")
    ap.add_argument("--every", type=int, default=1, help="score every n-th item (a quick subset)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--dev-every", type=int, default=7, help="the tracker was tuned on items 0, n, 2n, …: also "
                    "print the overall figure of the other (held-out) items")
    a = ap.parse_args(argv)
    data = Path(a.data)
    rows = [json.loads(x) for x in (data / "labels.jsonl").read_text().splitlines() if x.strip()][a.start::a.every]
    grounder = get_grounder("track", masks=False)
    per: dict = defaultdict(lambda: np.zeros(4, np.int64))
    items: list = []
    seconds = frames = 0
    held = np.zeros(4, np.int64)
    for j, row in enumerate(rows):
        res, s, n = score_item(row, data, Path(a.prompts), grounder)
        seconds, frames = seconds + s, frames + n
        for name, counts in res.items():
            per[(row["task"], name)] += counts
            items.append((row["id"], name, counts))
            if (a.start + j * a.every) % a.dev_every:
                held += counts
    report(per, items, frames / seconds, a.json)
    print(f"held-out items (not tuned on): on mask {rate(held, 0)}, on hull {rate(held, 1)} of {held[3]} frames")
    return 0


def report(per: dict, items: list, fps: float, json_path: str | None) -> None:
    """Print the tables (and write them as JSON)."""
    kinds: dict = defaultdict(lambda: np.zeros(4, np.int64))
    print("| task | entity | frames | on mask | on hull | GT box centre on mask |\n|---|---|---:|---:|---:|---:|")
    for (task, name), c in sorted(per.items()):
        kinds[f"{task.split('_')[0]}_{name}"] += c
        print(f"| {task} | {name} | {c[3]} | {rate(c, 0)} | {rate(c, 1)} | {rate(c, 2)} |")
    total = sum(kinds.values())
    print("\n| entity kind | frames | on mask | on hull | GT box centre on mask |\n|---|---:|---:|---:|---:|")
    for k, c in sorted(kinds.items()):
        print(f"| {k} | {c[3]} | {rate(c, 0)} | {rate(c, 1)} | {rate(c, 2)} |")
    print(f"| **all** | {total[3]} | {rate(total, 0)} | {rate(total, 1)} | {rate(total, 2)} |")
    misses = [(i, n, c) for i, n, c in items if c[3] and c[1] / c[3] < 0.9]
    print(f"\n{len(misses)} of {len(items)} tracks below 90 % on the hull:")
    for i, n, c in misses:
        print(f"  {i} {n}: {c[1] / c[3]:.2f} of {c[3]} frames")
    print(f"\ntracker alone: {fps:.0f} frames/s (decoded frames, this machine's load included)")
    if json_path:
        Path(json_path).write_text(json.dumps({
            "per_task": {f"{t}/{n}": c.tolist() for (t, n), c in per.items()},
            "per_kind": {k: c.tolist() for k, c in kinds.items()}, "all": total.tolist(),
            "columns": ["on_mask", "on_hull", "gt_centre_on_mask", "visible_frames"],
            "misses": [[i, n, [int(x) for x in c]] for i, n, c in misses], "tracker_fps": fps}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
