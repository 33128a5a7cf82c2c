"""Scale-out scoring on this machine: 1 vs 2 workers with the local process pool and with Ray Data, and the
overhead Ray adds per video.

    .venv/bin/python benchmarks/scale/run.py [--copies 12] [--grounders auto,color] [--quick]

Videos: the four handover examples copied `--copies` times (with their sidecars) into a temporary directory,
so every copy is a distinct file (48 videos, 2 160 frames at the default), scored against specs/handover.ltl.
Grounder "auto" picks the simulator-state backend (the sidecars), so decoding dominates; "color" grounds from
pixels (about 3x the decode cost per frame).

What is timed, one pass each (the CPU is shared: run it once, when the machine is quiet):
- local, 1 worker:  `batch.score_videos(videos, kw, out=…)` in this process.
- local, 2 workers: the same with `workers=2` (spawn process pool; the wall time includes starting the
  workers and building a RewardModel in each).
- ray, N CPUs: `ray.init(num_cpus=N)` timed apart, then `ray_engine.score_with_ray(videos, kw, out=…)` twice
  (the first run also starts Ray's worker processes and the grounding actors) and once on a single video.
  Ray's fixed cost per run ≈ t(1 video); its per-video cost ≈ (t(all) − t(1)) / (n − 1); the overhead per
  video is that per-video cost minus the local engine's (same number of CPUs).
Every engine's records are checked against the local 1-worker run (timings excepted) before a figure is
kept. Prints a markdown table (paste into the README) and writes results.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SPEC = ROOT / "specs" / "handover.ltl"
NAMES = ("handover_success", "handover_drop", "handover_no_release", "handover_wrong_order")


def make_videos(dest: Path, copies: int) -> list[Path]:
    """`copies` copies of each handover example (+ sidecar) in `dest`, as distinct files."""
    out = []
    for i in range(copies):
        for n in NAMES:
            v = dest / f"{n}_{i:03d}.mp4"
            shutil.copy(EXAMPLES / f"{n}.mp4", v)
            shutil.copy(EXAMPLES / f"{n}.sidecar.json", dest / f"{n}_{i:03d}.sidecar.json")
            out.append(v)
    return out


def strip(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["video"]: {k: v for k, v in r.items() if k != "timings"} for r in records}


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    v = fn()
    return time.perf_counter() - t0, v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=12, help="copies of each of the 4 handover examples")
    ap.add_argument("--grounders", default="auto,color")
    ap.add_argument("--quick", action="store_true", help="3 copies, auto grounder only (smoke test)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here (nothing is written without it)")
    args = ap.parse_args()
    copies = 3 if args.quick else args.copies
    grounders = ["auto"] if args.quick else [g for g in args.grounders.split(",") if g]

    import ray

    from ltlreward.batch import score_videos
    from ltlreward.ray_engine import RayOptions, score_with_ray

    tmp = Path(tempfile.mkdtemp(prefix="ltlreward-scale-"))
    rows: list[dict[str, Any]] = []
    try:
        (tmp / "videos").mkdir()
        videos = make_videos(tmp / "videos", copies)
        n = len(videos)
        n_frames = 0
        for g in grounders:
            kw = {"spec": str(SPEC), "grounder": g}
            out = tmp / f"{g}-local1.jsonl"
            t_local1, s = timed(lambda kw=kw, out=out: score_videos(videos, kw, out=out))
            ref = strip(s.scored)
            assert len(ref) == n and not s.failed, "local run failed"
            n_frames = sum(r["n_frames"] for r in ref.values())
            rows.append({"grounder": g, "engine": "local", "workers": 1, "seconds": t_local1})
            out = tmp / f"{g}-local2.jsonl"
            t_local2, s = timed(lambda kw=kw, out=out: score_videos(videos, kw, out=out, workers=2))
            assert strip(s.scored) == ref, "local pool records differ"
            rows.append({"grounder": g, "engine": "local", "workers": 2, "seconds": t_local2})
            for cpus in (1, 2):
                t_init, _ = timed(lambda cpus=cpus: ray.init(num_cpus=cpus, include_dashboard=False,
                                                             object_store_memory=512 * 1024 * 1024,
                                                             log_to_driver=False, configure_logging=False))
                try:
                    opts = RayOptions(num_cpus=cpus)
                    runs = []
                    for k in range(2):
                        out = tmp / f"{g}-ray{cpus}-{k}.jsonl"
                        t, s = timed(lambda kw=kw, out=out, opts=opts: score_with_ray(videos, kw, out=out,
                                                                                      options=opts, parquet=None))
                        assert strip(s.scored) == ref, "ray records differ from the local engine's"
                        runs.append(t)
                    out = tmp / f"{g}-ray{cpus}-one.jsonl"
                    t_one, _ = timed(lambda kw=kw, out=out, opts=opts: score_with_ray(videos[:1], kw, out=out,
                                                                                      options=opts, parquet=None))
                finally:
                    ray.shutdown()
                local = t_local1 if cpus == 1 else t_local2
                per_video = (runs[1] - t_one) / (n - 1)
                rows.append({"grounder": g, "engine": "ray", "workers": cpus, "seconds": runs[1],
                             "cold_seconds": runs[0], "init_seconds": t_init, "one_video_seconds": t_one,
                             "per_video_seconds": per_video, "overhead_per_video_seconds": per_video - local / n})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for r in rows:
        r["videos_per_s"] = n / r["seconds"]
        r["frames_per_s"] = n_frames / r["seconds"]
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "python": platform.python_version(), "ray": ray.__version__, "videos": n, "frames": n_frames,
              "load_average": os.getloadavg()[0], "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{n} videos, {n_frames} frames (handover ×{copies}), load average {result['load_average']:.1f}\n")
    print("| grounder | engine | workers | wall s | videos/s | frames/s | Ray init s | Ray fixed s/run "
          "| Ray s/video | Ray overhead ms/video |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        extra = ["", "", "", ""]
        if r["engine"] == "ray":
            extra = [f"{r['init_seconds']:.1f}", f"{r['one_video_seconds']:.1f}", f"{r['per_video_seconds']:.3f}",
                     f"{1000 * r['overhead_per_video_seconds']:+.0f}"]
        print(f"| {r['grounder']} | {r['engine']} | {r['workers']} | {r['seconds']:.2f} | {r['videos_per_s']:.1f} "
              f"| {r['frames_per_s']:.0f} | " + " | ".join(extra) + " |")


if __name__ == "__main__":
    main()
