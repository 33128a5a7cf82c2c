"""Pinned CPU kernels for reproducible toy figures (this module imports no torch: it must run before torch does).

torch picks its vector kernels (ATen's CPU capability), oneDNN its ISA and MKL its code path from the CPU it
finds, and each choice rounds floats differently, so a 40-step run drifts apart between an AVX2 and an
AVX-512 machine. PORTABLE_MATH pins all three to paths every x86-64 CPU since ~2013 runs; `creflow toy` and
benchmarks/creflow_toy/ablation.py set them (unless already set) before importing torch.
"""

from __future__ import annotations

import os
import sys

PORTABLE_MATH = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}


def pin_math() -> bool:
    """Set PORTABLE_MATH's variables (unless set); False when torch was imported first (the pin may not hold)."""
    late = "torch" in sys.modules and any(os.environ.get(k) != v for k, v in PORTABLE_MATH.items())
    for k, v in PORTABLE_MATH.items():
        os.environ.setdefault(k, v)
    return not late
