"""Shared test helpers: paths, a random formula generator, and the direct (definition-by-definition) semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT
