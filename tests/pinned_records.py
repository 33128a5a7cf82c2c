"""The records `ltlreward score` writes for the shipped examples, in a form that can be pinned.

`python tests/pinned_records.py` rewrites tests/data/example_records.json; tests/test_pinned_records.py compares
a fresh scoring with it. `python tests/pinned_records.py --simlabel DATA --out FILE` dumps the same form for a
generated benchmarks/simlabel set (state and colour, each video with its task's spec, plus both agreement
reports without their timings), so two versions of the code can be compared on it with `cmp`. Rewrite it only for a change that is meant to alter the records, and say so in the
commit. Timings are dropped, the video path is reduced to its file name, and each violation mask is reduced
to its shape, its sum and the SHA-256 of its values quantised to uint8.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "example_records.json"
# (video glob, spec, grounder): every shipped example video with its spec, state (auto: sidecar) and colour
CASES = (
    ("handover_*.mp4", "handover.ltl", "auto"),
    ("handover_*.mp4", "handover.ltl", "color"),
    ("pick_place_*.mp4", "pick_place.ltl", "auto"),
    ("pick_place_*.mp4", "pick_place.ltl", "color"),
)


def mask_digest(mask: np.ndarray | None) -> dict[str, Any] | None:
    """Shape, sum and a hash of the (T,H,W) mask quantised to uint8 (None when there is no mask)."""
    if mask is None:
        return None
    q = np.round(np.asarray(mask, np.float64) * 255.0).astype(np.uint8)
    return {"shape": list(mask.shape), "sum": round(float(np.asarray(mask, np.float64).sum()), 3),
            "sha256_u8": hashlib.sha256(q.tobytes()).hexdigest()}


def records() -> list[dict[str, Any]]:
    """One pinned record per (case, video), in a fixed order."""
    from ltlreward import RewardModel

    out = []
    for pattern, spec, grounder in CASES:
        model = RewardModel(ROOT / "specs" / spec, grounder=grounder)
        for video in sorted((ROOT / "examples").glob(pattern)):
            res = model.score(video)
            rec = res.to_json()
            rec.pop("timings", None)
            rec["video"] = video.name
            out.append({"case": f"{grounder}:{spec}", "record": rec, "mask": mask_digest(res.masks)})
    return out


def _drop_seconds(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_seconds(v) for k, v in obj.items() if k not in ("seconds", "timings")}
    if isinstance(obj, list):
        return [_drop_seconds(v) for v in obj]
    return obj


def simlabel_records(data: Path) -> list[dict[str, Any]]:
    """Pinned records of a simlabel set: every video under state and colour, then both agreement reports."""
    from ltlreward import RewardModel
    from ltlreward.agree import agreement, load_labels, load_spec_map

    bench = ROOT / "benchmarks" / "simlabel"
    items = load_labels(data / "labels.jsonl", graded="success_fraction")
    out: list[dict[str, Any]] = []
    for grounder, smap, baselines in (("state", "spec_map_state.json", ("end_state", "last_frame")),
                                      ("color", "spec_map_color.json", ("end_state",))):
        spec_map = load_spec_map(bench / smap)
        by_spec: dict[str, list[Any]] = {}
        for it in items:
            if it.task in spec_map:  # the colour map covers the tasks whose goal is visible
                by_spec.setdefault(spec_map[it.task], []).append(it)
        for spec, group in sorted(by_spec.items()):
            model = RewardModel(spec, grounder=grounder)
            for it, res in zip(group, model.score_batch([it.video for it in group]), strict=True):
                rec = res.to_json()
                rec.pop("timings", None)
                rec["video"] = Path(it.video).name
                out.append({"case": f"{grounder}:{Path(spec).name}", "record": rec, "mask": mask_digest(res.masks)})
        rep = agreement(items, grounder=grounder, spec_map=spec_map, baselines=baselines, workers=1, n_boot=200)
        js = _drop_seconds(rep.to_json())
        for d in js.get("disagreements", []):
            d["video"] = Path(d["video"]).name
        out.append({"case": f"{grounder}:agreement", "report": js})
    return out


def _write(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [json.dumps(r, sort_keys=True) for r in rows]
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simlabel", type=Path, default=None, help="a generated simlabel set (labels.jsonl)")
    ap.add_argument("--out", type=Path, default=None, help="where to write (default: the examples' golden)")
    a = ap.parse_args()
    if a.simlabel is not None:
        _write(simlabel_records(a.simlabel), a.out or Path("simlabel_records.json"))
    else:
        _write(records(), a.out or GOLDEN)
