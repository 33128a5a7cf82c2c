"""Rank-based AUROC and Spearman (issue #18 item 12) equal the quadratic pairwise definitions exactly, and the
per-task table reports AUROC."""

from __future__ import annotations

import numpy as np
import pytest
from agree_reference import auroc_pairwise, ranks_pairwise, spearman_pairwise

from ltlreward.agree import auroc_weighted, counts_matrix, spearman_weighted
from ltlreward.agree.statistics import weighted_ranks


def _data(seed: int, n: int, levels: int):
    """Labels, scores and grades with many ties (values on `levels` levels) and a few NaN scores."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    s = rng.integers(0, levels, n) / levels
    s[rng.random(n) < 0.05] = np.nan
    g = rng.integers(0, levels, n).astype(np.float64)
    return y, s, g


@pytest.mark.parametrize("seed, n, levels", [(0, 50, 5), (1, 300, 40), (2, 7, 2), (3, 200, 1000)])
def test_rank_based_metrics_equal_the_pairwise_definitions_exactly(seed, n, levels):
    # the weights are bootstrap counts, so every partial sum is an integer or half-integer below 2**53: both
    # forms are exact in float64, and sharing the final expressions makes them equal bit for bit
    y, s, g = _data(seed, n, levels)
    C = np.vstack([np.ones((1, n)), counts_matrix(n, 64, seed)])
    assert np.array_equal(auroc_weighted(C, y, s), auroc_pairwise(C, y, s), equal_nan=True)
    assert np.array_equal(weighted_ranks(C, s), ranks_pairwise(C, s))
    assert np.array_equal(weighted_ranks(C, g), ranks_pairwise(C, g))
    assert np.array_equal(spearman_weighted(C, g, s), spearman_pairwise(C, g, s), equal_nan=True)
    fin = ~np.isnan(s)
    assert np.array_equal(spearman_weighted(C[:, fin], g[fin], s[fin]), spearman_pairwise(C[:, fin], g[fin], s[fin]),
                          equal_nan=True)


def test_degenerate_inputs_match_too():
    one = np.ones((1, 4))
    y = np.array([True, True, False, False])
    for s in (np.full(4, np.nan), np.zeros(4), np.array([np.nan, 1.0, 0.5, np.nan])):
        assert np.array_equal(auroc_weighted(one, y, s), auroc_pairwise(one, y, s), equal_nan=True)
        assert np.array_equal(weighted_ranks(one, s), ranks_pairwise(one, s))
    assert np.isnan(auroc_weighted(one, np.ones(4, bool), np.arange(4.0)))[0]


def test_per_task_table_reports_auroc():
    from ltlreward.agree import LabelItem, evaluate_method

    items = [LabelItem(f"{t}{i}.mp4", lab, task=t) for t, labs in (("a", [1, 1, 0, 0]), ("b", [1, 0, 0]))
             for i, lab in enumerate(labs)]
    score = [0.9, 0.4, 0.5, 0.1, 0.3, 0.3, 0.2]
    rep = evaluate_method("m", "", items, [s > 0.45 for s in score], score, [True] * 7, n_boot=0)
    # task a: positives (0.9, 0.4) vs negatives (0.5, 0.1): 3 of 4 pairs ordered → 0.75; task b: (0.3) vs
    # (0.3, 0.2): one tie, one ordered → 0.75
    assert rep.per_task["a"]["auroc"] == {"value": 0.75, "lo": None, "hi": None}
    assert rep.per_task["b"]["auroc"]["value"] == 0.75


def test_forty_thousand_labels_fit_a_small_memory_budget():
    # the pairwise forms need (n, n) matrices: 40 000² float64 = 12.8 GB; rank-based, (B, n) arrays of 21 × 40 000
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    budget = 1 << 30  # 1 GiB of address space, 60 s of CPU
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({budget}, {budget}))
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        import numpy as np
        from ltlreward.agree import bootstrap_metrics
        rng = np.random.default_rng(0)
        y = rng.random(40_000) < 0.5
        score = np.where(y, rng.normal(1, 1, y.size), rng.normal(0, 1, y.size)).round(2)
        est = bootstrap_metrics(y, score > 0.5, score, graded=score + rng.normal(0, 1, y.size), n_boot=20)
        print(round(est["auroc"].value, 2), round(est["spearman"].value, 1))
    """)
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    # AUROC of two unit normals one apart: Φ(1/√2) = 0.760; ρ of the score with score + noise ≈ 0.7
    assert res.returncode == 0 and res.stdout.split() == ["0.76", "0.7"], res.stderr[-2000:]
