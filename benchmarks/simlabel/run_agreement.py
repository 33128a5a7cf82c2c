"""Score a generated simlabel set with the state and colour grounders and write the published figures.

    python -m benchmarks.simlabel.run_agreement --data benchmarks/simlabel/_work/default --workers 2

Writes results.json (both reports, scoring times) and manifest.json (the generation manifest plus one
compact line per item: id, task, failure mode, seed, label) into `--out` (default the ignored
benchmarks/simlabel/_work/results), and prints the Markdown tables that README.md carries. `--publish`
writes them over the committed benchmarks/simlabel/results.json and manifest.json instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def main(argv: list[str] | None = None) -> int:
    """Run both agreement passes; exit 1 when a video failed to score."""
    from ltlreward.agree import agreement, load_labels, load_spec_map

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(HERE / "_work" / "default"), help="generated set (labels.jsonl)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overlays", default=None, help="directory for overlays of the disagreements")
    ap.add_argument("--out", default=str(HERE / "_work" / "results"), help="folder for results.json, manifest.json")
    ap.add_argument("--publish", action="store_true", help="write the committed results.json and manifest.json")
    a = ap.parse_args(argv)
    dest = HERE if a.publish else Path(a.out)
    dest.mkdir(parents=True, exist_ok=True)
    data = Path(a.data)
    items = load_labels(data / "labels.jsonl", graded="success_fraction")  # graded: share of frames in success
    shown = data.resolve().relative_to(REPO) if data.resolve().is_relative_to(REPO) else data
    out: dict = {"data": str(shown), "n_items": len(items), "runs": {}}
    failed = 0
    for grounder, smap, baselines in (("state", "spec_map_state.json", ("end_state", "last_frame", "vlm")),
                                      ("color", "spec_map_color.json", ("end_state",))):
        t0 = time.perf_counter()
        rep = agreement(items, grounder=grounder, spec_map=load_spec_map(HERE / smap), baselines=baselines,
                        workers=a.workers, n_boot=a.n_boot, seed=a.seed, graded=True,
                        overlay_dir=None if a.overlays is None else Path(a.overlays) / grounder,
                        progress=lambda m: print(m, file=sys.stderr))
        secs = time.perf_counter() - t0
        failed += rep.n_failed
        data_json = rep.to_json()
        for d in data_json["disagreements"]:  # repository-relative paths in the committed file
            for k in ("video", "overlay"):
                if d.get(k) and Path(d[k]).resolve().is_relative_to(REPO):
                    d[k] = str(Path(d[k]).resolve().relative_to(REPO))
        out["runs"][grounder] = {"seconds": round(secs, 1), "report": data_json, "markdown": rep.to_markdown()}
        print(f"\n## {grounder} grounding ({secs:.0f} s)\n\n{rep.to_markdown()}\n")
        for n in rep.notes:
            print(f"note: {n}")
    (dest / "results.json").write_text(json.dumps(out, indent=1))
    man_path = data / "manifest.json"
    if man_path.exists():
        man = json.loads(man_path.read_text())
        man["items"] = [{k: r.get(k) for k in ("id", "task", "failure_mode", "seed", "success", "success_any",
                                                "first_success_frame")}
                        for r in map(json.loads, (data / "labels.jsonl").read_text().splitlines())]
        (dest / "manifest.json").write_text(json.dumps(man, separators=(",", ":")) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
