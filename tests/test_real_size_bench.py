"""Smoke test of benchmarks/real_size/run.py at its reduced CPU size (`--preset smoke`: one real-width Wan2.1-1.3B
layer, the real Wan VAE, 5 frames of 32×48, K = 4)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("psutil")

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "real_size" / "run.py"


@pytest.mark.slow
def test_real_size_benchmark_smoke(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("real_size_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    mod.main(["--preset", "smoke", "--activation-grids", "1x2x3,1x4x6", "--json", str(out)])
    res = json.loads(out.read_text())
    step = res["step"]
    assert step["skipped"] is None and step["setting"]["k"] == 4
    assert step["latent_shape"] == [16, 2, 4, 6] and step["tokens_per_sample"] == 2 * 2 * 3  # Wan 4×/8×, patch 2
    phases = step["phases_s"]
    assert all(v > 0 for v in phases.values()), phases
    assert sum(phases.values()) <= step["step_s"] + 1e-3
    assert step["peak_rss_gb"] >= step["rss_growth_in_step_gb"] >= 0
    rows = {(r["autocast_bf16"], r["gradient_checkpointing"]): r for r in res["activations"]}
    # checkpointed, a block keeps only its input: (tokens, 1536) in fp32 = 6 KB per token, in bf16 = 3 KB
    assert rows[False, True]["kb_per_token_per_layer"] == 1536 * 4 / 1024
    assert rows[True, True]["kb_per_token_per_layer"] == 1536 * 2 / 1024
    for bf16 in (False, True):
        assert rows[bf16, False]["kb_per_token_per_layer"] > 10 * rows[bf16, True]["kb_per_token_per_layer"]
    # under autocast the uncheckpointed backward keeps the bf16 copies of a layer's frozen weights (> 60 MB)
    assert rows[True, False]["fixed_mb_per_layer"] > 60 > rows[True, True]["fixed_mb_per_layer"]
