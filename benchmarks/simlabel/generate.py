"""Generate the simulator-labelled video benchmark: Meta-World single-arm and robosuite two-arm episodes.

    python -m benchmarks.simlabel.generate --n 240 --out benchmarks/simlabel/_work/default --workers 2

    python -m benchmarks.simlabel.generate --natural --n 240 --out benchmarks/simlabel/_work/natural --workers 2

Per item `<id>`: `videos/<id>.mp4` (224×224), `videos/<id>.sidecar.json` (docs/sidecar.md) and a label
line in `labels.jsonl` (success at the last frame and at any frame, first success frame, task, failure mode,
seed, description — all from the simulator's own success check). Items are assigned round-robin over the
tasks; item i gets seed `seed * 100003 + i`, so a run is reproducible item by item and an interrupted run
resumes (items whose three files exist are kept). `manifest.json` records the arguments, counts and times.
`--natural` renders the simulators' own colours, lights and textures (no repainting for the colour grounder)
and adds `videos/<id>.seg.npz`: ground-truth instance masks, one (T, H, W) bool array per entity, named in the
sidecar's `meta.segmentation` (with the share of frames each entity is seen in, also in the label line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SUITES = {"metaworld": "benchmarks.simlabel.metaworld_tasks", "robosuite": "benchmarks.simlabel.robosuite_tasks"}


def _suite_tasks(suite: str) -> tuple[list[str], frozenset[str]]:
    import importlib

    mod = importlib.import_module(SUITES[suite])
    return list(mod.TASKS), getattr(mod, "EXPERIMENTAL", frozenset())


def all_tasks(*, experimental: bool = True) -> dict[str, str]:
    """task name → suite for every suite whose module imports (experimental tasks only when asked)."""
    out: dict[str, str] = {}
    for suite in SUITES:
        try:
            tasks, exp = _suite_tasks(suite)
        except ImportError:
            continue
        out.update({t: suite for t in tasks if experimental or t not in exp})
    return out


def resolve_tasks(spec: str) -> list[str]:
    """`all`, a suite name, or a comma list of task / suite names → task names (order kept); experimental
    tasks only when named."""
    known = all_tasks()
    default = all_tasks(experimental=False)
    out: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            out += list(default)
        elif part in SUITES:
            out += [t for t, s in default.items() if s == part]
        elif part in known:
            out.append(part)
        else:
            raise SystemExit(f"unknown task or suite {part!r}; known: all, {', '.join(SUITES)}, "
                             f"{', '.join(known)}")
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Item:
    """One episode to generate."""

    id: str
    suite: str
    task: str
    seed: int
    natural: bool = False


def plan(tasks: Sequence[str], n: int, seed: int, natural: bool = False) -> list[Item]:
    """n items round-robin over `tasks`, each with its own seed derived from (seed, index)."""
    suites = all_tasks()
    return [Item(f"{tasks[i % len(tasks)]}_{i:04d}", suites[tasks[i % len(tasks)]], tasks[i % len(tasks)],
                 seed * 100003 + i, natural) for i in range(n)]


def spec_for(task: str, suite: str) -> str:
    """Repository-relative path of the shipped state spec of `task`."""
    return f"specs/{suite}_{task.split('_', 1)[1]}.ltl"


def run_item(item: Item, out: str) -> dict[str, Any]:
    """Generate one item (in a worker); returns its label record with the wall time it took."""
    import importlib

    from .common import write_episode
    from .render import ensure_gl

    ensure_gl()
    t0 = time.perf_counter()
    mod = importlib.import_module(SUITES[item.suite])
    ep = mod.run_episode(item.task, item.seed, natural=True) if item.natural else \
        mod.run_episode(item.task, item.seed)
    rec = write_episode(ep, out, item.id, spec=spec_for(item.task, item.suite))
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    Path(out, "videos", f"{item.id}.label.json").write_text(json.dumps(rec))
    return rec


def _done(item: Item, out: Path) -> dict[str, Any] | None:
    v = out / "videos"
    lab = v / f"{item.id}.label.json"
    if lab.exists() and (v / f"{item.id}.mp4").exists() and (v / f"{item.id}.sidecar.json").exists():
        try:
            return json.loads(lab.read_text())
        except json.JSONDecodeError:
            return None
    return None


def generate(tasks: Sequence[str], n: int, out: str | os.PathLike[str], *, seed: int = 0, workers: int = 1,
             progress: bool = True, natural: bool = False) -> dict[str, Any]:
    """Generate n items into `out` (resuming), write labels.jsonl + manifest.json, return the manifest."""
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    items = plan(list(tasks), n, seed, natural)
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for it in items:
        rec = _done(it, out)
        if rec is not None:
            records[it.id] = rec
        else:
            todo.append(it)
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(records), unit="video", desc="simlabel", file=sys.stderr)
    errors: dict[str, str] = {}
    if workers <= 1:
        for it in todo:
            try:
                records[it.id] = run_item(it, str(out))
            except Exception as e:
                errors[it.id] = f"{type(e).__name__}: {e}"
            if bar:
                bar.update(1)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futs = {pool.submit(run_item, it, str(out)): it for it in todo}
            for f in as_completed(futs):
                it = futs[f]
                try:
                    records[it.id] = f.result()
                except Exception as e:
                    errors[it.id] = f"{type(e).__name__}: {e}"
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    wall = time.perf_counter() - t0
    ordered = [records[it.id] for it in items if it.id in records]
    with open(out / "labels.jsonl", "w") as fh:
        for rec in ordered:
            fh.write(json.dumps({k: v for k, v in rec.items() if k != "seconds"}) + "\n")
    secs = [r.get("seconds", 0.0) for r in ordered]
    runs = []
    if (out / "manifest.json").exists():  # keep the times of earlier (interrupted or resumed) runs
        try:
            runs = list(json.loads((out / "manifest.json").read_text()).get("runs", []))
        except json.JSONDecodeError:
            runs = []
    runs.append({"generated": len(todo) - len(errors), "wall_seconds": round(wall, 1), "workers": workers})
    manifest = {
        "generator": "benchmarks/simlabel/generate.py",
        "args": {"n": n, "tasks": list(tasks), "seed": seed, "workers": workers,
                 **({"natural": True} if natural else {})},
        "n_items": len(ordered),
        "generated_this_run": len(todo) - len(errors),
        "wall_seconds_this_run": round(wall, 1),
        "mean_seconds_per_video": round(sum(secs) / max(len(secs), 1), 3),
        "by_task": {t: {"n": c, "success": sum(r["success"] for r in ordered if r["task"] == t)}
                    for t, c in Counter(r["task"] for r in ordered).items()},
        "by_mode": dict(Counter(r["failure_mode"] for r in ordered)),
        "n_success": sum(r["success"] for r in ordered),
        "runs": runs,
        "errors": errors,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; exit 1 when any item failed to generate."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=240, help="number of videos (round-robin over tasks)")
    ap.add_argument("--tasks", default="all", help="all | metaworld | robosuite | comma list of task names")
    ap.add_argument("--out", default=str(HERE / "_work" / "default"), help="output directory")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="parallel processes")
    ap.add_argument("--seed", type=int, default=0, help="base seed (item i uses seed*100003+i)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--natural", action="store_true",
                    help="the simulators' own colours and textures, plus ground-truth instance masks (seg.npz)")
    a = ap.parse_args(argv)
    tasks = resolve_tasks(a.tasks)
    man = generate(tasks, a.n, a.out, seed=a.seed, workers=a.workers, progress=not a.quiet, natural=a.natural)
    print(json.dumps({k: man[k] for k in ("n_items", "n_success", "wall_seconds_this_run",
                                          "mean_seconds_per_video", "by_mode")}))
    for k, v in man["errors"].items():
        print(f"error: {k}: {v}", file=sys.stderr)
    return 1 if man["errors"] else 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
