"""Write examples/signals/handover.json: per-frame atom signals of two example videos (state grounding),
so `ltlreward monitor` can be tried without any video pipeline. Run: python examples/make_signals.py"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ltlreward.grounding import get_grounder
from ltlreward.predicates import compute_signals
from ltlreward.spec import load_spec, spec_atoms
from ltlreward.video import read_video

HERE = Path(__file__).resolve().parent


def main() -> None:
    spec = load_spec(HERE.parent / "specs" / "handover.ltl")
    atoms = spec_atoms(spec)
    grounder = get_grounder("state")
    traces = []
    fps = None
    for stem in ("handover_success", "handover_drop"):
        video = read_video(HERE / f"{stem}.mp4")
        obs = grounder.ground(video, spec.entities, sidecar=HERE / f"{stem}.sidecar.json")
        traces.append(compute_signals(atoms, obs, grounder="state").values)
        fps = video.fps
    T = max(len(next(iter(t.values()))) for t in traces)
    signals = {}
    for key in traces[0]:
        rows = [np.pad(t[key], (0, T - len(t[key])), constant_values=-1.0) for t in traces]
        signals[key] = [[round(float(x), 3) for x in r] for r in rows]
    lengths = [len(next(iter(t.values()))) for t in traces]
    out = HERE / "signals" / "handover.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"fps": fps, "lengths": lengths, "traces": ["handover_success", "handover_drop"],
                               "signals": signals}, indent=None) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
