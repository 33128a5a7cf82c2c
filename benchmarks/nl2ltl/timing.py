"""Rules-backend compile time per description, in process: every description of the given case files compiled
once after one warm-up pass (grammar, lemminflect and symspellpy loaded), timed call by call.

    PYTHONPATH=. python benchmarks/nl2ltl/timing.py benchmarks/nl2ltl/cases*.jsonl
Run it with PYTHONPATH pointing at another checkout to time that one on the same machine, back to back.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ltlreward.errors import LtlRewardError
from ltlreward.nl import compile_text


def times(texts: list[str]) -> np.ndarray:
    """Seconds per compile_text call (an error counts like a result). (N,)"""
    out = np.empty(len(texts))
    for i, t in enumerate(texts):
        t0 = time.perf_counter()
        with contextlib.suppress(LtlRewardError):
            compile_text(t)
        out[i] = time.perf_counter() - t0
    return out


def main(argv: list[str]) -> int:
    texts = [json.loads(line)["text"] for f in argv for line in Path(f).read_text().splitlines() if line.strip()]
    times(texts[:5])  # warm-up: grammar and dictionaries
    ts = times(texts)
    print(f"{len(texts)} descriptions: median {1e3 * np.median(ts):.1f} ms, mean {1e3 * ts.mean():.1f} ms, "
          f"p90 {1e3 * np.quantile(ts, 0.9):.1f} ms, max {1e3 * ts.max():.1f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
