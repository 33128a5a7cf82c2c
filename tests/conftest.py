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

# Test files whose assertions compare floats of torch arithmetic: every test in them is marked float_sensitive,
# and `make test` runs that mark a second time under ATEN_CPU_CAPABILITY=default (other CPU kernels sum in
# another order). A float-sensitive test elsewhere takes `@pytest.mark.float_sensitive` itself.
FLOAT_SENSITIVE_FILES = ("test_creflow_*.py", "test_models_grounders.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of FLOAT_SENSITIVE_FILES float_sensitive."""
    for item in items:
        if any(item.path.match(pattern) for pattern in FLOAT_SENSITIVE_FILES):
            item.add_marker(pytest.mark.float_sensitive)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-initialised Wan checkpoint (creflow_train.testing), built once for every trainer test."""
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    from creflow_train.testing import build_tiny_wan

    return Path(build_tiny_wan(tmp_path_factory.mktemp("tiny_wan")))
