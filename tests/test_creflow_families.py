"""The model-family registry (lazy adapters, located errors) and the testing module's tiny checkpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")


def test_families_are_registered_lazily_and_unknown_names_list_the_options():
    code = ("import sys; from creflow_train.families import FAMILIES, family_class; "
            "assert FAMILIES.names() == ('wan', 'ltx'); "
            "assert 'creflow_train.families.wan' not in sys.modules and 'torch' not in sys.modules; "
            "cls = family_class('wan'); assert cls.__name__ == 'WanFamily' and 'torch' not in sys.modules; "
            "print(sorted(m for m in sys.modules if m.startswith('creflow_train')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(res.stdout)
    assert "creflow_train.families.ltx" not in loaded and "creflow_train.testing" not in loaded
    from creflow_train.config import ConfigError
    from creflow_train.families import family_class, transformer_classes

    assert transformer_classes() == {"WanTransformer3DModel": "wan", "LTXVideoTransformer3DModel": "ltx"}
    with pytest.raises(ConfigError, match=r"^family: unknown model family 'wam'; did you mean 'wan'\? available: wan, ltx$"):
        family_class("wam")


def test_tiny_model_cli_and_the_old_import_path(tmp_path: Path):
    from typer.testing import CliRunner

    from creflow_train.cli import app
    from creflow_train.families import detect_family

    res = CliRunner().invoke(app, ["tiny-model", "wan", str(tmp_path / "w")])
    assert res.exit_code == 0, res.output
    assert detect_family(tmp_path / "w") == "wan"
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["text_encoder", "tokenizer", "transformer", "vae"]
    assert CliRunner().invoke(app, ["tiny-model", "sd3", str(tmp_path / "x")]).exit_code == 2
    import creflow_train.policy as policy
    from creflow_train import testing

    with pytest.warns(DeprecationWarning, match="moved to creflow_train.testing.build_tiny_ltx"):
        assert policy.build_tiny_ltx is testing.build_tiny_ltx
    with pytest.raises(AttributeError):
        policy.build_tiny_sd3  # noqa: B018
