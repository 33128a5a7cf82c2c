"""Specs that cannot hang or explode (#18 item 5) and check-time validation (#18 item 6).

Each attack runs in a subprocess under a wall-clock and address-space budget (resource limits): a window far
longer than the trace is clamped to it, a bound beyond any trace is a located SpecError, and a macro chain
that expands exponentially is a located SpecError in `check` and before monitoring. `check` reports option
ranges, hints and what the chosen grounder cannot answer with file:line:col — every error of a file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltlreward import evaluate
from ltlreward.cli import app
from ltlreward.errors import SpecError
from ltlreward.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
BUDGET_S = 20  # wall clock for a whole subprocess (interpreter start and imports included)
BUDGET_BYTES = 1 << 30  # address space


def _run_budgeted(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter under BUDGET_S seconds and BUDGET_BYTES of address space."""
    prelude = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({BUDGET_BYTES}, {BUDGET_BYTES})); "
               f"resource.setrlimit(resource.RLIMIT_CPU, ({BUDGET_S}, {BUDGET_S}))\n")
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    try:
        return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env, capture_output=True,
                              text=True, timeout=BUDGET_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"over the {BUDGET_S} s budget")


def _exponential_macros(tmp: Path, depth: int, params: bool) -> Path:
    """A ~1-KB spec whose last macro doubles `depth` times (with or without parameters)."""
    x = "(x)" if params else ""
    lines = ['entity a = "a"', f"let m0{x} := visible({'x' if params else 'a'})"]
    lines += [f"let m{i}{x} := m{i - 1}{x} & m{i - 1}{x}" for i in range(1, depth + 1)]
    lines.append(f"constraint c: G m{depth}{'(a)' if params else ''}")
    p = tmp / f"exp_{depth}_{params}.ltl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_a_window_beyond_the_trace_is_clamped_under_budget(tmp_path: Path) -> None:
    spec = tmp_path / "big.ltl"
    spec.write_text('entity a = "a"\nconstraint c: F[0,100000000] visible(a)\n'
                    'constraint d: G[3,100000000] visible(a)\nconstraint e: visible(a) U[0,100000000] !visible(a)\n')
    r = _run_budgeted(f"""
        import numpy as np
        from ltlreward import monitor, load_spec
        res = monitor(load_spec({str(spec)!r}), {{"visible(a)": np.array([-.5, -.5, .5, .1, .2, -.1, .3])}})
        print([round(float(c.robustness[0]), 3) for c in res])
        """)
    assert r.returncode == 0, r.stderr
    # on 7 frames the same as windows that end just past the trace (and hand-checked: F max = 0.5; G over
    # frames 3-6 = -0.1; the right side of U already holds at frame 0: 0.5)
    short = spec.read_text().replace("100000000", "7")
    from ltlreward import monitor
    res = monitor(parse_spec(short), {"visible(a)": np.array([-.5, -.5, .5, .1, .2, -.1, .3])})
    assert r.stdout.strip() == str([round(float(c.robustness[0]), 3) for c in res]) == "[0.5, -0.1, 0.5]"


@pytest.mark.parametrize("op", ["F", "G", "O", "H"])
def test_clamped_windows_equal_windows_just_past_the_end(op: str) -> None:
    """Exactness of the clamp (the bound stays small enough that an unclamped monitor computes it too)."""
    rng = np.random.default_rng(0)
    sig = {"a": rng.uniform(-1, 1, (6, 9)).astype(np.float32), "b": rng.uniform(-1, 1, (6, 9)).astype(np.float32)}
    lengths = np.array([9, 1, 4, 7, 9, 2])
    for lo in (0, 2, 8, 9, 20):
        want = evaluate(f"{op}[{lo},30] a", sig, "robustness", lengths=lengths)
        got = evaluate(f"{op}[{lo},100000] a", sig, "robustness", lengths=lengths)
        np.testing.assert_array_equal(got, want)
    for binop in ("U", "R"):
        want = evaluate(f"a {binop}[1,30] b", sig, "robustness", lengths=lengths)
        np.testing.assert_array_equal(evaluate(f"a {binop}[1,100000] b", sig, "robustness", lengths=lengths), want)


def test_a_bound_beyond_any_trace_is_a_located_spec_error(tmp_path: Path) -> None:
    spec = tmp_path / "huge.ltl"
    spec.write_text('entity a = "a"\nconstraint c: F[0,1e20] visible(a)\n')
    res = runner.invoke(app, ["check", str(spec)])
    assert res.exit_code == 2
    assert f"{spec}:2:19: error: bad interval: bound 1e20 is too large" in res.output
    with pytest.raises(SpecError, match="too large"):
        evaluate("F[0s,100000000000s] a", {"a": np.ones(3)}, fps=10)


@pytest.mark.parametrize("params", [True, False])
def test_exponential_macros_are_a_located_error_in_check_under_budget(tmp_path: Path, params: bool) -> None:
    spec = _exponential_macros(tmp_path, 40, params)
    assert spec.stat().st_size < 1300  # about the 900-byte file of the issue
    r = _run_budgeted(f"""
        import sys
        from ltlreward.cli import app
        sys.argv = ["ltlreward", "check", {str(spec)!r}]
        app()
        """)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"{spec}:" in r.stderr and "expands to more than" in r.stderr


@pytest.mark.parametrize("params", [True, False])
def test_exponential_macros_are_a_located_error_before_monitoring(tmp_path: Path, params: bool) -> None:
    spec = _exponential_macros(tmp_path, 40, params)
    r = _run_budgeted(f"""
        import numpy as np
        from ltlreward import monitor, load_spec
        from ltlreward.errors import SpecError
        try:
            monitor(load_spec({str(spec)!r}), {{"visible(a)": np.ones(7)}})
        except SpecError as e:
            print(e.location)
        """)
    assert r.returncode == 0, r.stderr[-2000:]
    line = r.stdout.strip()
    assert line.startswith(f"{spec}:") and line.count(":") == 2
    small = parse_spec(_exponential_macros(tmp_path, 8, params).read_text())  # 2^8 leaves are fine
    assert small.constraints[0].formula is not None


# ------------------------------------------------------------------------------------------ item 6
def _check(tmp_path: Path, text: str, *args: str):
    p = tmp_path / "s.ltl"
    p.write_text(text)
    return p, runner.invoke(app, ["check", str(p), *args])


@pytest.mark.parametrize("text, where, message", [
    ('entity a = "a"\nentity b = "b"\nconstraint c: F near(a, b, d=-1)\n', "3:28",
     "option d of near must be a non-negative number, got -1"),
    ('entity g = "g" : gripper\nentity b = "b"\nconstraint c: F holding(g, b, p=1.5)\n', "3:31",
     "option p of holding is a fraction in [0, 1], got 1.5"),
    ('entity a = "a" hsv=(1,2)\nconstraint c: F visible(a)\n', "1:16", "hsv= hint must be 6 numbers"),
    ('entity a = "a" color=octarine\nconstraint c: F visible(a)\n', "1:16", "unknown color='octarine'"),
])
def test_check_validates_option_ranges_and_hints(tmp_path: Path, text: str, where: str, message: str) -> None:
    p, res = _check(tmp_path, text)
    assert res.exit_code == 2, res.output
    assert f"{p}:{where}: error: " in res.output and message in res.output


def test_check_with_a_grounder_reports_what_it_cannot_answer(tmp_path: Path) -> None:
    text = 'entity cup = "a cup"\nentity box = "the blue box"\nconstraint c: F "the cup is full" & near(cup, box)\n'
    p, res = _check(tmp_path, text)
    assert res.exit_code == 0, res.output  # any grounder could be chosen: nothing to say yet
    _, res = _check(tmp_path, text, "--grounder", "state")
    assert res.exit_code == 0, res.output  # the sidecar answers both
    _, res = _check(tmp_path, text, "--grounder", "color")
    assert res.exit_code == 2
    assert f"{p}:1:8: error: entity 'cup' ('a cup') has no colour the color grounder can segment" in res.output
    assert f"{p}:3:17: error: grounder 'color' cannot answer quoted atoms" in res.output
    assert "'box'" not in res.output  # "blue" in its prompt is enough
    _, res = _check(tmp_path, text, "--grounder", "nope")
    assert res.exit_code == 2 and "unknown grounder 'nope'" in res.output


def test_check_reports_every_error_in_a_file(tmp_path: Path) -> None:
    text = ('entity a = "a" color=octarine\n'
            'entity b = "b"\n'
            'constraint one: F near(a, c)\n'
            'constraint two: G (visible(a) &\n'
            'constraint three: F[5,2] visible(b) & lifted(b, h=-2)\n'
            'constraint four: F holdin(a, b)\n')
    p, res = _check(tmp_path, text)
    assert res.exit_code == 2
    wanted = [("1:16", "unknown color='octarine'"), ("3:27", "unknown entity 'c'"),
              ("4:32", "unexpected end of input"), ("5:20", "lower bound 5 is greater than upper bound 2"),
              ("5:49", "option h of lifted must be a non-negative number"),
              ("6:20", "unknown predicate 'holdin'")]
    lines = [x for x in res.output.splitlines() if ": error: " in x]
    assert len(lines) == len(wanted), res.output
    for line, (where, msg) in zip(lines, wanted, strict=True):
        assert line.startswith(f"{p}:{where}") and msg in line, (line, where, msg)
    res = runner.invoke(app, ["check", "--json", str(p)])
    (entry,) = [json.loads(x) for x in res.stdout.splitlines()]
    assert entry["ok"] is False and len(entry["errors"]) == len(wanted)
    assert [e["line"] for e in entry["errors"]] == [1, 3, 4, 5, 5, 6]
