"""A newcomer's first hour with the CLI (#18 items 9, 10, 13): the README's first example runs, `--version`
and `--quiet`, one `--json` rule (JSON Lines for streams of records, one object otherwise), one error prefix,
no FFmpeg log lines on stderr, `--obs-cache` with every grounder, and `auto` recording its choice and why."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltlreward import __version__
from ltlreward.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ltlreward.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_the_readme_first_score_example_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    first = next(line for line in readme.splitlines() if line.startswith("ltlreward score "))
    words = shlex.split(first.split("#")[0])[1:]
    monkeypatch.chdir(ROOT)
    args = [m for w in words for m in (sorted(glob.glob(w)) if "*" in w else [w])]  # what the shell expands
    res = runner.invoke(app, args)
    assert res.exit_code == 0, (first, res.output[-3000:])


def test_version_and_quiet(tmp_path: Path) -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"ltlreward {__version__}"
    video = str(EXAMPLES / "pick_place_success.mp4")
    res = _cli("score", video, "--spec", "specs/pick_place.ltl", "--quiet")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
    res = _cli("score", video, str(tmp_path / "missing.mp4"), "--spec", "specs/pick_place.ltl", "-q")
    assert res.returncode == 1 and res.stdout == "" and "missing.mp4" in res.stderr  # failures still said
    res = runner.invoke(app, ["check", "--quiet", str(ROOT / "specs" / "handover.ltl")])
    assert res.exit_code == 0 and res.output == ""


def _json_shape(stdout: str) -> str:
    """'lines' for JSON Lines of objects (one or more), 'object' for one JSON object; anything else fails."""
    lines = stdout.strip().splitlines()
    try:
        objs = [json.loads(x) for x in lines]
    except ValueError:
        obj = json.loads(stdout)
        assert isinstance(obj, dict), f"not an object: {type(obj).__name__}"
        return "object"
    assert objs and all(isinstance(o, dict) for o in objs), stdout[:300]
    return "lines"


@pytest.mark.parametrize("args, shape", [
    (["check", "specs/handover.ltl", "specs/pick_place.ltl"], "lines"),
    (["check", "specs/handover.ltl"], "lines"),
    (["monitor", "specs/handover.ltl", "--signals", "examples/signals/handover.json"], "lines"),
    (["score", "examples/pick_place_success.mp4", "--spec", "specs/pick_place.ltl"], "lines"),
    (["predicates"], "lines"),
    (["grounders"], "lines"),
    (["explain", "specs/handover.ltl"], "object"),
    (["compile", "pick up the red block"], "object"),
])
def test_one_json_rule(args: list[str], shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert _json_shape(res.stdout) == shape
    if shape == "lines":
        assert all(not line.startswith(" ") for line in res.stdout.splitlines())  # one object per line


@pytest.mark.slow  # command-line processes
def test_errors_carry_one_prefix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ltl"
    bad.write_text('entity a = "a"\nconstraint c: F holdin(a)\n')
    video = str(EXAMPLES / "pick_place_success.mp4")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"video": video, "label": 1}) + "\n")
    (tmp_path / "map.json").write_text(json.dumps({"t": str(bad)}))
    mapped = tmp_path / "mapped.jsonl"
    mapped.write_text(json.dumps({"video": video, "label": 1, "task": "t"}) + "\n")
    for args in (["score", video, "--spec", str(bad)], ["explain", str(bad)], ["check", str(bad)],
                 ["monitor", str(bad), "--signals", str(EXAMPLES / "signals" / "handover.json")],
                 ["agree", "--labels", str(labels), "--spec", str(bad), "--n-boot", "0"],
                 ["agree", "--labels", str(mapped), "--spec-map", str(tmp_path / "map.json"), "--n-boot", "0"]):
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert f"{bad}:2:17: error: unknown predicate 'holdin'" in res.stderr, (args, res.stderr)
        assert not re.search(r"error:.*error:", res.stderr), (args, res.stderr)


@pytest.mark.slow  # command-line processes
def test_every_cli_problem_says_error_exactly_once(tmp_path: Path) -> None:
    """Problems that are not spec errors: one 'error: ' at the start of the message, never two, never none."""
    cases = {("check", "--grounder", "stat", "specs/handover.ltl"): "error: unknown grounder 'stat'",
             ("agree", "--labels", str(tmp_path / "nope.jsonl")): f"error: {tmp_path / 'nope.jsonl'}: labels file",
             ("agree", "--labels", "examples/labels.jsonl", "--baseline", "oracle"): "error: unknown baseline 'oracle'",
             ("compile", "Xyzzy plugh"): 'error: cannot understand "Xyzzy plugh"',
             ("monitor", "specs/handover.ltl", "--signals", str(tmp_path / "nope.json")): "error: "}
    for args, head in cases.items():
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith(head) and res.stderr.count("error:") == 1, (args, res.stderr)


def test_ffmpeg_log_lines_do_not_leak_to_stderr(tmp_path: Path) -> None:
    data = (EXAMPLES / "pick_place_success.mp4").read_bytes()
    (tmp_path / "header_only.mp4").write_bytes(data[:3000])
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    garbled = bytearray(data)
    garbled[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
    (tmp_path / "garbled.mp4").write_bytes(bytes(garbled))
    for grounder in ("color", "state"):
        res = _cli("score", str(tmp_path), "--spec", "specs/pick_place.ltl", "--grounder", grounder, "--json")
        assert res.returncode == 1
        leaked = [x for x in res.stderr.splitlines() if x.startswith("[")]
        assert leaked == [], leaked[:5]


@pytest.mark.parametrize("grounder", ["state", "color", "auto"])
@pytest.mark.parametrize("cache", ["", "DIR"])
def test_obs_cache_works_for_every_core_grounder(tmp_path: Path, grounder: str, cache: str) -> None:
    cache_dir = "" if cache == "" else str(tmp_path / "cache")
    res = _cli("score", str(EXAMPLES / "pick_place_success.mp4"), "--spec", "specs/pick_place.ltl", "--grounder",
               grounder, "--obs-cache", cache_dir, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["reward"] == 1.0


def test_auto_records_which_backend_it_chose_and_why(tmp_path: Path) -> None:
    with_sidecar = tmp_path / "a.mp4"
    shutil.copy(EXAMPLES / "pick_place_miss.mp4", with_sidecar)
    shutil.copy(EXAMPLES / "pick_place_miss.sidecar.json", tmp_path / "a.sidecar.json")
    without = tmp_path / "b.mp4"
    shutil.copy(EXAMPLES / "pick_place_miss.mp4", without)
    res = _cli("score", str(with_sidecar), str(without), "--spec", "specs/pick_place.ltl", "--json")
    recs = {Path(r["video"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    a, b = recs["a.mp4"], recs["b.mp4"]
    assert a["grounder"] == "state" and "sidecar" in a["grounder_reason"] and "a.sidecar.json" in a["grounder_reason"]
    assert b["grounder"] == "color"
    assert "b.sidecar.json" in b["grounder_reason"] and "no model weights" in b["grounder_reason"]
    res = _cli("score", str(without), "--spec", "specs/pick_place.ltl", "--json", "--sidecar",
               str(tmp_path / "a.sidecar.json"))
    assert "--sidecar" in json.loads(res.stdout)["grounder_reason"]
    res = _cli("score", str(with_sidecar), "--spec", "specs/pick_place.ltl", "--json", "--grounder", "state")
    assert json.loads(res.stdout)["grounder_reason"] is None  # chosen by the user, nothing to explain
