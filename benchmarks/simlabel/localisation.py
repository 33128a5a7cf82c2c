"""How well violation witnesses localise on a simlabel set with state grounding (issue #14).

    python -m benchmarks.simlabel.localisation --data /work/simdata/natural [--out FILE.json]

Every video is scored with its task's spec (spec_map_state.json; the state grounder reads the sidecar beside
the video). For every violated constraint: the share of the video's frames its witness blames, whether the
witness is frame 0 alone and, if so, whether frame 0 decides the verdict — no assignment of the constraint's
atoms at frames ≥ 1 (each atom held true or false there, every combination) makes it hold — or at least sets
its robustness alone: nudging the witnessed atoms at frame 0 by 0.01 away from their thresholds lowers the
constraint's robustness (frame 0 is the unique nearest miss, e.g. the gripper never came closer than at the
start; with a tie another frame would keep the value). For every failing video:
whether its violation mask paints any pixel. Prints Markdown tables; writes JSON only with --out. It reads
records, signals and masks through the public API only, so it measures any version of ltlreward (run it
from another checkout to get the "before" column).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def frame0_decides(formula, signals: dict[str, np.ndarray], fps: float) -> bool:
    """Whether no constant assignment of the formula's atoms at frames ≥ 1 makes it hold (frame 0 kept)."""
    from ltlreward import evaluate
    from ltlreward.spec import atoms_of

    keys = sorted({a.canonical for a in atoms_of(formula)})
    T = len(next(iter(signals.values())))
    if T < 2:
        return True
    for signs in itertools.product((1.0, -1.0), repeat=len(keys)):
        sig = {k: np.asarray(v, np.float64).copy() for k, v in signals.items()}
        for k, s in zip(keys, signs, strict=True):
            sig[k][1:] = s
        if bool(evaluate(formula, sig, "boolean", fps=fps)):
            return False
    return True


def frame0_sets_value(formula, signals: dict[str, np.ndarray], atoms: list[str], fps: float) -> bool:
    """Whether moving the witnessed atoms at frame 0 by 0.01 away from their thresholds lowers the robustness."""
    from ltlreward import evaluate

    before = float(evaluate(formula, signals, "robustness", fps=fps))
    sig = {k: np.asarray(v, np.float64).copy() for k, v in signals.items()}
    for k in atoms:
        sig[k][0] += -0.01 if sig[k][0] <= 0 else 0.01
    return float(evaluate(formula, sig, "robustness", fps=fps)) < before


def measure(data: Path, spec_map: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(one row per violated constraint, one row per failing video) over the set's labelled videos."""
    from ltlreward import RewardModel

    items = [json.loads(line) for line in (data / "labels.jsonl").read_text().splitlines() if line.strip()]
    models: dict[str, RewardModel] = {}
    pairs, videos = [], []
    for it in items:
        spec = spec_map.get(it["task"])
        if spec is None:
            continue
        model = models.setdefault(spec, RewardModel(REPO / spec, grounder="state"))
        an = model.analyze(str(data / it["video"]))
        res = an.result
        if not res.ok:
            print(f"{it['id']}: {res.error}", file=sys.stderr)
            continue
        T = res.n_frames
        for c, con in zip(res.constraints, model.spec.constraints, strict=True):
            if c.satisfied:
                continue
            frames = c.witness.frames if c.witness is not None else ()
            alone0 = tuple(frames) == (0,)
            sig = an.signals.values
            atoms = sorted({a.atom for a in c.witness.atoms}) if alone0 else []
            pairs.append({"id": it["id"], "task": it["task"], "constraint": c.name, "n_frames": T,
                          "witness_frames": len(frames), "fraction": len(frames) / T, "frame0_alone": alone0,
                          "frame0_decides": frame0_decides(con.formula, sig, res.fps) if alone0 else None,
                          "frame0_sets_value": frame0_sets_value(con.formula, sig, atoms, res.fps) if alone0
                          else None})
        if not res.satisfied:
            painted = res.masks is not None and bool(np.asarray(res.masks).max() > 0)
            videos.append({"id": it["id"], "task": it["task"], "mask_painted": painted})
    return pairs, videos


def summary(pairs: list[dict], videos: list[dict]) -> dict:
    """The published figures."""
    fr = np.array([p["fraction"] for p in pairs]) if pairs else np.zeros(0)
    alone = [p for p in pairs if p["frame0_alone"]]
    return {
        "violated_constraints": len(pairs),
        "share_witness_ge_90pct_frames": float((fr >= 0.9).mean()) if fr.size else 0.0,
        "median_fraction_of_frames_blamed": float(np.median(fr)) if fr.size else 0.0,
        "frame0_alone": len(alone),
        "frame0_alone_where_frame0_decides": sum(bool(p["frame0_decides"]) for p in alone),
        "frame0_alone_where_frame0_sets_the_value": sum(bool(p["frame0_sets_value"]) for p in alone),
        "failing_videos": len(videos),
        "failing_videos_without_mask_pixels": sum(not v["mask_painted"] for v in videos),
    }


def by_constraint(pairs: list[dict]) -> dict[str, dict]:
    """The same figures per constraint name."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        groups[p["constraint"]].append(p)
    return {k: summary(v, []) for k, v in sorted(groups.items())}


def markdown(s: dict, per: dict[str, dict]) -> str:
    lines = [
        "| violated constraints | witness ≥ 90 % of frames | median share of frames blamed | frame 0 alone "
        "(frame 0 decides the verdict / sets the robustness) | failing videos without mask pixels |",
        "|---|---|---|---|---|",
        f"| {s['violated_constraints']} | {100 * s['share_witness_ge_90pct_frames']:.1f} % | "
        f"{100 * s['median_fraction_of_frames_blamed']:.1f} % | {s['frame0_alone']} "
        f"({s['frame0_alone_where_frame0_decides']} / {s['frame0_alone_where_frame0_sets_the_value']}) | "
        f"{s['failing_videos_without_mask_pixels']} of {s['failing_videos']} |",
        "",
        "| constraint | violated | witness ≥ 90 % | median share blamed | frame 0 alone (decides / sets value) |",
        "|---|---|---|---|---|",
    ]
    for name, e in per.items():
        lines.append(f"| {name} | {e['violated_constraints']} | {100 * e['share_witness_ge_90pct_frames']:.1f} % | "
                     f"{100 * e['median_fraction_of_frames_blamed']:.1f} % | {e['frame0_alone']} "
                     f"({e['frame0_alone_where_frame0_decides']} / "
                     f"{e['frame0_alone_where_frame0_sets_the_value']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a generated simlabel set (labels.jsonl, videos/, sidecars)")
    ap.add_argument("--spec-map", default=str(HERE / "spec_map_state.json"))
    ap.add_argument("--out", default=None, help="write the rows and figures as JSON to this file")
    a = ap.parse_args(argv)
    pairs, videos = measure(Path(a.data), json.loads(Path(a.spec_map).read_text()))
    s, per = summary(pairs, videos), by_constraint(pairs)
    print(markdown(s, per))
    if a.out:
        Path(a.out).write_text(json.dumps({"summary": s, "by_constraint": per, "pairs": pairs, "videos": videos},
                                          indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
