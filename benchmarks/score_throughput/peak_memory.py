"""Peak memory of decoding and scoring large clips: does memory follow the output size?

    .venv/bin/python benchmarks/score_throughput/peak_memory.py [--clips DIR] [--skip-8k]

Makes two deterministic synthetic clips once (kept in --clips, default benchmarks/score_throughput/_work):
a 10-s 1080p clip (300 frames, 30 fps) and a 24-frame 8K clip (7680×4320), H.264 through ltlreward's own
writer. Then, each in a fresh interpreter, measures the peak resident set size (Linux `VmHWM`) of
- `read_video(clip, size=224)` (what `ltlreward score --size 224` decodes), minus the interpreter's peak
  after importing numpy, cv2, av and decord (the baseline);
- scoring the 1080p clip with the state grounder and a sidecar (`RewardModel(..., grounder="state").score`),
  which reads only the container (frame count, size, rate), and the same with `pixels="always"`.
Prints a markdown table and writes peak_memory.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

MEASURE = """
import json, time
import numpy as np, cv2, av, decord

def hwm_mb():  # this process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which a child inherits)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

base = hwm_mb()
t0 = time.perf_counter()
{body}
print(json.dumps({{"base_mb": base, "peak_mb": hwm_mb(), "seconds": time.perf_counter() - t0,
                   "shape": list(shape)}}))
"""
READ = """
from ltlreward.video import read_video
shape = read_video({clip!r}, size=224).frames.shape
"""
STATE = """
from ltlreward import RewardModel
r = RewardModel({spec!r}, grounder="state", pixels={pixels!r}).score({clip!r})
assert r.ok, r.error
shape = (r.n_frames, r.height, r.width)
"""


def make_clip(path: Path, n: int, h: int, w: int) -> Path:
    """A deterministic moving-gradient clip, written one frame at a time."""
    import numpy as np

    from ltlreward.video import VideoWriter

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    tmp = path.with_name(path.stem + ".tmp.mp4")
    with VideoWriter(tmp, 30.0) as writer:
        for t in range(n):
            f = np.zeros((h, w, 3), np.uint8)
            f[..., 0] = (xx + 7 * t) % 256
            f[..., 1] = (yy + 3 * t) % 256
            f[..., 2] = ((xx // 40 + yy // 40 + t) % 2) * 200
            writer.write(f)
    tmp.replace(path)
    return path


def sidecar_for(clip: Path, n: int, h: int, w: int) -> Path:
    """A minimal sidecar (one entity on a straight path, camera matching the clip) beside `clip`."""
    import math

    side = clip.with_name(clip.stem + ".sidecar.json")
    f = 0.5 * h / math.tan(math.radians(45) / 2)
    side.write_text(json.dumps({
        "version": 1, "fps": 30.0, "n_frames": n,
        "camera": {"intrinsics": [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]],
                   "extrinsics": [[1, 0, 0, 0], [0, 0, -1, 0.2], [0, 1, 0, 2.0], [0, 0, 0, 1]],
                   "width": w, "height": h},
        "entities": {"block": {"position": [[0.001 * t, 0.0, 0.05] for t in range(n)], "size": [0.05, 0.05, 0.05]}},
    }))
    return side


def measure(body: str) -> dict:
    code = MEASURE.format(body=body)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=HERE / "_work")
    ap.add_argument("--skip-8k", action="store_true", help="only the 1080p clip")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here (nothing is written without it)")
    args = ap.parse_args()
    hd = make_clip(args.clips / "hd_10s_1080p.mp4", 300, 1080, 1920)
    rows: list[tuple[str, dict]] = [("read_video(10-s 1080p, size=224)", measure(READ.format(clip=str(hd))))]
    if not args.skip_8k:
        uhd = make_clip(args.clips / "uhd_24f_8k.mp4", 24, 4320, 7680)
        rows.append(("read_video(24 frames of 8K, size=224)", measure(READ.format(clip=str(uhd)))))
    spec = args.clips / "block.ltl"
    spec.write_text('entity block = "block"\nconstraint seen: F visible(block)\n')
    sidecar_for(hd, 300, 1080, 1920)
    for pixels in ("auto", "always"):
        rows.append((f"state scoring of the 1080p clip, pixels={pixels}",
                     measure(STATE.format(spec=str(spec), clip=str(hd), pixels=pixels))))
    print("| measurement | output (T, H, W[, 3]) | peak RSS − baseline (MB) | seconds |")
    print("|---|---|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {tuple(r['shape'])} | {r['peak_mb'] - r['base_mb']:.0f} | {r['seconds']:.2f} |")
    if not args.out:
        return
    args.out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version(),
        "rows": {name: r for name, r in rows}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
