"""Grounding speed per model backend: frames/s and seconds per 5-s clip, split into model time (inside the
transformers forward calls) and our overhead (decoding excluded; pre/post-processing, tracking logic, mask
upsampling, merging). Without --config it builds random-initialised models of the real classes offline
(--scale tiny|bench) and measures them on this machine; with --config it measures the models that config names
(e.g. real checkpoints on a GPU).

    python benchmarks/grounding_speed/run.py                          # bench-size random models, cpu
    python benchmarks/grounding_speed/run.py --config ltlreward.toml --device cuda --video clip.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ltlreward.grounding import get_grounder  # noqa: E402
from ltlreward.spec.ast import Entity  # noqa: E402
from ltlreward.video import Video, read_video  # noqa: E402

BACKENDS = ("gdino-sam2", "owlv2", "sam3", "vlm", "gdino-sam2+vlm")
ENTITIES = (Entity("block", "red block"), Entity("gripper", "gripper", "gripper"),
            Entity("plate", "yellow plate", "surface"))
QUOTED = ("the block is on the plate",)


def clip(path: str, seconds: float, size: int | None) -> Video:
    """The video looped (or cut) to `seconds` at its own frame rate."""
    v = read_video(path, size=size)
    n = max(1, round(seconds * v.fps))
    idx = np.arange(n) % v.n_frames
    return Video(np.ascontiguousarray(v.frames[idx]), v.fps)


def model_seconds(g) -> float:
    """Seconds spent inside model calls so far (summed over a composite's parts)."""
    parts = getattr(g, "parts", [g])
    return float(sum(p.stats.seconds for p in parts))


def measure(name: str, config: str, video: Video, options: dict, repeat: int) -> dict:
    """Warm up (loads the models), then time `repeat` runs of one backend on `video`."""
    g = get_grounder(name, config=config, cache_dir="", **options)
    g.ground(Video(video.frames[:2], video.fps), ENTITIES, quoted=QUOTED)
    totals, models = [], []
    for _ in range(repeat):
        m0, t0 = model_seconds(g), time.perf_counter()
        g.ground(video, ENTITIES, quoted=QUOTED)
        totals.append(time.perf_counter() - t0)
        models.append(model_seconds(g) - m0)
    total, model = float(np.median(totals)), float(np.median(models))
    T = video.n_frames
    return {"backend": name, "frames": T, "fps_video": video.fps, "size": list(video.frames.shape[1:3]),
            "total_s": total, "model_s": model, "overhead_s": total - model,
            "overhead_pct": 100.0 * (total - model) / total, "frames_per_s": T / total,
            "s_per_5s_clip": total * (5.0 * video.fps / T)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="ltlreward.toml naming the models (default: build random models)")
    ap.add_argument("--scale", default="bench", choices=("tiny", "bench"), help="size of the built random models")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--video", default=str(ROOT / "examples" / "pick_place_success.mp4"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=None, help="resize frames (shortest side) before grounding")
    ap.add_argument("--device", default=None, help="auto | cpu | cuda (default: the config's)")
    ap.add_argument("--threads", type=int, default=1, help="torch cpu threads (0 = torch default)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args(argv)

    tmp = None
    options: dict = {"cpu_threads": args.threads}
    if args.device:
        options["device"] = args.device
    config = args.config
    if config is None:
        from ltlreward.grounding.backends.models.tiny import build_all

        tmp = tempfile.TemporaryDirectory()
        t0 = time.perf_counter()
        build_all(tmp.name, scale=args.scale)
        print(f"built {args.scale} random models in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        config = str(Path(tmp.name) / "ltlreward.toml")
    video = clip(args.video, args.seconds, args.size)
    rows = []
    for name in args.backends.split(","):
        opts = dict(options)
        if args.config is None and name != "vlm":
            opts["box_threshold"] = 0.0  # random detectors: start every track so SAM2 does its full work
        if name == "sam3":
            opts.pop("box_threshold", None)
        rows.append(measure(name, config, video, opts, args.repeat))
        r = rows[-1]
        print(f"{name}: {r['total_s']:.2f} s total, {r['model_s']:.2f} s model, {r['overhead_pct']:.1f}% overhead",
              file=sys.stderr)
    print("| backend | frames | frames/s | s per 5-s clip | model s | overhead s | overhead % |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['frames']} ({r['size'][0]}×{r['size'][1]}) | {r['frames_per_s']:.1f} | "
              f"{r['s_per_5s_clip']:.2f} | {r['model_s']:.2f} | {r['overhead_s']:.3f} | {r['overhead_pct']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"scale": args.scale if args.config is None else "config",
                                               "rows": rows}, indent=1) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
