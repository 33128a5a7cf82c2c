"""The `ltlreward` CLI: exit codes, located errors, JSON output, and a fast import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ltlreward.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_check_ok_and_errors(tmp_path):
    good = runner.invoke(app, ["check", str(ROOT / "specs" / "handover.ltl")])
    assert good.exit_code == 0, good.output
    assert "ok" in good.output and "4 constraint(s)" in good.output
    bad = tmp_path / "bad.ltl"
    bad.write_text('entity a = "x"\nconstraint c: F lifted(b)\n')
    res = runner.invoke(app, ["check", str(bad), str(ROOT / "specs" / "handover.ltl")])
    assert res.exit_code == 2
    assert f"{bad}:2:24: error: unknown entity 'b'" in res.output


def test_check_json(tmp_path):
    bad = tmp_path / "bad.ltl"
    bad.write_text("constraint c: F (p &\n")
    res = runner.invoke(app, ["check", "--json", str(bad)])
    assert res.exit_code == 2
    (entry,) = [json.loads(x) for x in res.stdout.splitlines()]  # JSON Lines: one object per spec file
    assert entry["ok"] is False and entry["line"] == 1 and "end of input" in entry["error"]


def test_explain_reads_constraints_in_english():
    res = runner.invoke(app, ["explain", "--json", str(ROOT / "specs" / "handover.ltl")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    names = [c["name"] for c in data["constraints"]]
    assert names == ["grasp_first", "exchange", "finish", "no_drop"]
    finish = data["constraints"][2]
    assert finish["english"].startswith("Eventually, and from then on always, the right gripper holds the red bottle")


def test_monitor_signals_files(tmp_path):
    spec = tmp_path / "s.ltl"
    spec.write_text('constraint reach: F p\nconstraint safe: G !q\n')
    npz = tmp_path / "sig.npz"
    np.savez(npz, p=np.array([[-1.0, 0.5, -1.0], [-1.0, -1.0, -1.0]]), q=np.array([[-1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]]))
    res = runner.invoke(app, ["monitor", str(spec), "--signals", str(npz), "--json"])
    assert res.exit_code == 0, res.output
    t0, t1 = [json.loads(x) for x in res.stdout.splitlines()]  # JSON Lines: one object per trace
    assert t0["satisfied"] is True
    assert [c["satisfied"] for c in t1["constraints"]] == [False, False]
    assert t1["constraints"][1]["witness"]["atoms"] == [{"atom": "q", "frame": 1, "value": 1.0}]
    csv = tmp_path / "sig.csv"
    csv.write_text("frame,p,q\n0,false,false\n1,true,false\n")
    res = runner.invoke(app, ["monitor", str(spec), "--signals", str(csv)])
    assert res.exit_code == 0 and "all constraints hold" in res.output
    res = runner.invoke(app, ["monitor", str(spec), "--signals", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "no such signals file" in res.output


def test_monitor_shipped_example_signals():
    res = runner.invoke(app, ["monitor", str(ROOT / "specs" / "handover.ltl"), "--signals",
                              str(ROOT / "examples" / "signals" / "handover.json"), "--json"])
    assert res.exit_code == 0, res.output
    success, drop = [json.loads(x) for x in res.stdout.splitlines()]
    assert success["satisfied"] is True
    assert drop["satisfied"] is False


def test_import_is_light():
    """`import ltlreward` and `--help` load no heavy extra (its time is measured in benchmarks/, not here)."""
    heavy = ("torch", "cv2", "av", "decord", "transformers", "scipy", "matplotlib")
    code = f"import ltlreward, ltlreward.cli, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
