"""The monitor against the literal definitions, a table of tricky cases, and its batching contracts."""

from __future__ import annotations

import numpy as np
import pytest
from formulas import (
    ATOMS,
    FUTURE_BINARY,
    FUTURE_UNARY,
    PAST_BINARY,
    PAST_UNARY,
    random_formula,
    random_signals,
    reference,
)

from ltlreward import evaluate, monitor, parse_formula, parse_spec
from ltlreward.errors import MonitorError
from ltlreward.spec.ops import Op


def _ref_batch(f, sig, lengths):
    return np.array([reference(f, {k: v[b] for k, v in sig.items()}, 0, int(lengths[b])) for b in range(len(lengths))])


def test_the_random_formulas_cover_every_operator_of_the_table():
    """A new operator must reach the reference semantics (tests/formulas.py) before it ships."""
    ops = FUTURE_UNARY + PAST_UNARY + FUTURE_BINARY + PAST_BINARY
    assert sorted(ops) == sorted(str(op) for op in Op)
    assert all(Op(o).info.arity == 1 for o in FUTURE_UNARY + PAST_UNARY)
    assert all(Op(o).info.past for o in PAST_UNARY + PAST_BINARY)
    assert not any(Op(o).info.past for o in FUTURE_UNARY + FUTURE_BINARY)


@pytest.mark.parametrize("seed", range(6))
def test_random_formulas_match_definitions_with_ragged_lengths(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        f = random_formula(rng, 4)
        T = int(rng.integers(1, 10))
        sig = random_signals(rng, 5, T)
        lengths = rng.integers(0, T + 1, size=5)
        got = evaluate(f, sig, "robustness", lengths=lengths)
        np.testing.assert_allclose(got, _ref_batch(f, sig, lengths), atol=1e-6, err_msg=str(f))


@pytest.mark.parametrize("seed", range(3))
def test_boolean_semantics_equals_thresholded_robustness(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(80):
        f = random_formula(rng, 4)
        T = int(rng.integers(1, 12))
        sig = random_signals(rng, 8, T)
        rob = evaluate(f, sig, "robustness")
        boo = evaluate(f, {k: v > 0 for k, v in sig.items()}, "boolean")
        # the Boolean verdict of thresholded atoms equals the Boolean semantics on ±1 signals
        pm = evaluate(f, {k: np.where(v > 0, 1.0, -1.0) for k, v in sig.items()}, "robustness") > 0
        np.testing.assert_array_equal(boo, pm, err_msg=str(f))
        # and robustness > 0 implies the Boolean verdict (min/max robustness is sound)
        assert np.all(~(rob > 0) | boo), str(f)
        assert np.all(~(rob < 0) | ~boo), str(f)


T3 = {"a": np.array([1.0, -1.0, 1.0]), "b": np.array([-1.0, -1.0, 1.0])}
ONE = {"a": np.array([0.5]), "b": np.array([-0.5])}

TRICKY = [
    # (formula, signals, lengths, expected value at frame 0)
    ("X a", ONE, None, -1.0),  # strong next at the last frame
    ("WX a", ONE, None, 1.0),  # weak next at the last frame
    ("X WX a", ONE, None, -1.0),
    ("Y a", ONE, None, -1.0),  # yesterday at frame 0 is false
    ("!Y a", ONE, None, 1.0),
    ("O a", ONE, None, 0.5),  # once includes the current frame
    ("H b", ONE, None, -0.5),
    ("a S b", ONE, None, -0.5),
    ("F a", ONE, None, 0.5),
    ("G b", ONE, None, -0.5),
    ("a U b", ONE, None, -0.5),
    ("a W b", ONE, None, 0.5),  # weak until: a held to the end, so max(b, min(a, +1)) = 0.5
    ("F[1,3] a", T3, None, 1.0),
    ("F[3,5] a", T3, None, -1.0),  # window entirely past the end
    ("G[3,5] a", T3, None, 1.0),  # ... is vacuously true for G
    ("G[1,9] a", T3, None, -1.0),  # window running off the end keeps its in-trace part
    ("F[2,9] b", T3, None, 1.0),
    ("a U[1,1] b", T3, None, -1.0),
    ("a U[2,2] b", T3, None, -1.0),  # needs a at frames 0 and 1
    ("a U[0,5] b", T3, None, -1.0),
    ("b R a", T3, None, -1.0),
    ("true U[4,6] a", T3, None, -1.0),
    ("a R[4,6] false", T3, None, 1.0),
    # empty traces: atoms false, strong operators false, weak ones true
    ("a", T3, [0], -1.0),
    ("!a", T3, [0], 1.0),
    ("F a", T3, [0], -1.0),
    ("G a", T3, [0], 1.0),
    ("X a", T3, [0], -1.0),
    ("WX a", T3, [0], 1.0),
    ("a U b", T3, [0], -1.0),
    ("a W b", T3, [0], 1.0),
    ("true", T3, [0], 1.0),
    # ragged: a one-frame prefix of T3
    ("F b", T3, [2], -1.0),
    ("G a", T3, [1], 1.0),
    ("X a", T3, [2], -1.0),
]


@pytest.mark.parametrize(("text", "sig", "lengths", "expected"), TRICKY, ids=[t[0] + (f"@{t[2]}" if t[2] else "") for t in TRICKY])
def test_tricky_cases(text, sig, lengths, expected):
    f = parse_formula(text)
    got = evaluate(f, sig, "robustness", lengths=lengths)
    assert float(np.asarray(got).reshape(-1)[0]) == pytest.approx(expected)
    L = lengths[0] if lengths else len(next(iter(sig.values())))
    assert reference(f, {k: np.asarray(v, float) for k, v in sig.items()}, 0, L) == pytest.approx(expected)


def test_weak_until_holds_when_left_holds_forever():
    sig = {"a": np.array([0.5, 0.7]), "b": np.array([-1.0, -1.0])}
    assert float(evaluate("a W b", sig, "robustness")) == pytest.approx(0.5)
    assert float(evaluate("a U b", sig, "robustness")) == pytest.approx(-1.0)


def test_seconds_intervals_need_fps_and_convert():
    sig = {"a": np.array([-1.0, -1.0, -1.0, 1.0, -1.0])}
    with pytest.raises(MonitorError, match="fps"):
        evaluate("F[0s,1s] a", sig)
    assert bool(evaluate("F[0s,1s] a", sig, fps=3.0))  # frames 0..3
    assert not bool(evaluate("F[0s,0.5s] a", sig, fps=3.0))  # frames 0..1
    with pytest.raises(MonitorError, match="no frame"):
        evaluate("F[0.1s,0.2s] a", sig, fps=3.0)


def test_shapes_scalar_for_1d_and_batch_for_2d():
    f = "F a"
    assert np.asarray(evaluate(f, {"a": np.array([0.0, 1.0])})).shape == ()
    assert evaluate(f, {"a": np.zeros((4, 3))}).shape == (4,)
    assert evaluate(f, {"a": np.zeros((4, 3))}).dtype == bool
    assert evaluate(f, {"a": np.zeros((4, 3))}, "robustness").dtype == np.float32


def test_ragged_batch_equals_separate_calls():
    rng = np.random.default_rng(7)
    f = parse_formula("G (a -> F[0,3] b) & (c U b) | O[1,2] a")
    sig = random_signals(rng, 16, 20)
    lengths = rng.integers(1, 21, size=16)
    together = evaluate(f, sig, "robustness", lengths=lengths)
    for i in range(16):
        alone = evaluate(f, {k: v[i, : lengths[i]] for k, v in sig.items()}, "robustness")
        assert float(alone) == pytest.approx(float(together[i]))


def test_mask_equals_lengths_and_rejects_non_prefix():
    sig = {"a": np.array([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])}
    mask = np.array([[True, True, False], [True, False, False]])
    np.testing.assert_array_equal(evaluate("G a", sig, mask=mask), evaluate("G a", sig, lengths=[2, 1]))
    with pytest.raises(MonitorError, match="prefix"):
        evaluate("G a", sig, mask=np.array([[True, False, True], [True, True, True]]))


def test_missing_atom_names_it_and_lists_signals():
    with pytest.raises(MonitorError, match=r"no signal for atom\(s\) b .*signals given: a"):
        evaluate("a U b", {"a": np.ones(3)})


def test_nan_and_bad_shapes_are_clear_errors():
    with pytest.raises(MonitorError, match="NaN"):
        evaluate("a", {"a": np.array([np.nan])}, "robustness")
    with pytest.raises(MonitorError, match="share"):
        evaluate("a & b", {"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(MonitorError, match="semantics"):
        evaluate("a", {"a": np.ones(3)}, "fuzzy")


def test_comparison_from_numeric_terms():
    sig = {"dist(a,b)": np.array([0.2, 0.04, 0.1])}
    f = parse_formula("F dist(a, b) < 0.05")
    assert bool(evaluate(f, sig))
    # robustness = (0.05 - 0.04) / max(|0.04|, |0.05|) = 0.2 at frame 1
    assert float(evaluate(f, sig, "robustness")) == pytest.approx(0.2)
    # a directly supplied comparison signal wins
    assert not bool(evaluate(f, {"dist(a,b)<0.05": np.array([-1.0, -1.0, -1.0])}))


def test_monitor_shares_subformulas_and_reports_per_constraint():
    spec = parse_spec(
        'entity o = "box"\n'
        "constraint one: F lifted(o)\n"
        "constraint two [weight=3]: G !lifted(o)\n"
        "reward all\n"
    )
    res = monitor(spec, {"lifted(o)": np.array([[-1.0, 0.5], [-1.0, -1.0]])})
    np.testing.assert_array_equal(res["one"].satisfied, [True, False])
    np.testing.assert_array_equal(res["two"].satisfied, [False, True])
    np.testing.assert_allclose(res.robustness, [[0.5, -0.5], [-1.0, 1.0]])
    assert res["two"].weight == 3.0
    assert res.satisfied.shape == (2, 2)
    assert res["one"].trace.shape == (2, 2)
    with pytest.raises(KeyError, match="constraints: one, two"):
        res["three"]


def test_all_atoms_have_signal_values_in_range():
    rng = np.random.default_rng(3)
    sig = {k: rng.uniform(-3, 3, size=(2, 5)) for k in ATOMS}
    v = evaluate("F (a & !b) | G c", sig, "robustness")
    assert np.all(np.abs(v) <= 1.0)  # inputs are clipped to [-1, 1]
