"""Shared test helpers: paths, a random formula generator, and the direct (definition-by-definition) semantics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MuJoCo picks its GL backend when first imported; headless tests need EGL (osmesa/EGL on CPU), whichever test
# imports a simulator first (a GLFW context cannot be made here and aborts later renderers)
os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT
