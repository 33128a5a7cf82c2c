"""Time AUROC and Spearman's ρ under the bootstrap at N labels: the pairwise (quadratic) definitions agree used
before issue #18 (tests/agree_reference.py) against the rank-based ones in ltlreward.agree.statistics.

    .venv/bin/python benchmarks/agree_stats/run.py [--n 4000] [--n-boot 2000] [--repeat 3] [--out FILE]

Both run on the same data (scores on 100 levels, so with ties) and the same (n_boot + 1, n) weight matrix
(the point estimate and the replicates, as `bootstrap_metrics` builds it); the script checks the results are
equal bit for bit and prints the best of `repeat` wall and process-CPU times of each (CPU time sums BLAS
threads), with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from agree_reference import auroc_pairwise, spearman_pairwise  # noqa: E402

from ltlreward.agree.statistics import auroc_weighted, counts_matrix, spearman_weighted  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, float, np.ndarray]:
    """Best wall time and best process CPU time (all threads) of `repeat` calls, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    y = rng.random(a.n) < 0.5
    s = (np.where(y, rng.normal(1, 1, a.n), rng.normal(0, 1, a.n)) * 10).round() / 10  # ~100 levels: ties
    g = s + rng.normal(0, 1, a.n)
    C = np.vstack([np.ones((1, a.n)), counts_matrix(a.n, a.n_boot, 0)])  # (B + 1, n)
    rows = {}
    for name, old, new in (("auroc", lambda: auroc_pairwise(C, y, s), lambda: auroc_weighted(C, y, s)),
                           ("spearman", lambda: spearman_pairwise(C, g, s), lambda: spearman_weighted(C, g, s))):
        t_old, c_old, r_old = _best(old, a.repeat)
        t_new, c_new, r_new = _best(new, a.repeat)
        assert np.array_equal(r_old, r_new, equal_nan=True), f"{name}: results differ"
        rows[name] = {"pairwise_s": round(t_old, 3), "rank_based_s": round(t_new, 3),
                      "speedup": round(t_old / t_new, 1), "pairwise_cpu_s": round(c_old, 3),
                      "rank_based_cpu_s": round(c_new, 3)}
    res = {"n": a.n, "n_boot": a.n_boot, "repeat": a.repeat, "load_1min": round(os.getloadavg()[0], 2),
           "cpus": os.cpu_count(), "metrics": rows}
    print("| metric | pairwise (before) s | rank-based (after) s | speed-up | CPU s before / after |\n"
          "|---|---:|---:|---:|---:|")
    for k, v in rows.items():
        print(f"| {k} | {v['pairwise_s']} | {v['rank_based_s']} | {v['speedup']}× | "
              f"{v['pairwise_cpu_s']} / {v['rank_based_cpu_s']} |")
    print(f"n = {a.n}, n_boot = {a.n_boot}, best of {a.repeat}, load {res['load_1min']} on {res['cpus']} CPUs; "
          "results equal bit for bit")
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
