"""The records `ltlreward score` writes for the shipped examples, in a form that can be pinned.

`python tests/pinned_records.py` rewrites tests/data/example_records.json; tests/test_pinned_records.py compares
a fresh scoring with it. Rewrite it only for a change that is meant to alter the records, and say so in the
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


if __name__ == "__main__":
    rows = [json.dumps(r, sort_keys=True) for r in records()]
    GOLDEN.write_text("[\n" + ",\n".join(rows) + "\n]\n")
    print(f"wrote {GOLDEN}")
