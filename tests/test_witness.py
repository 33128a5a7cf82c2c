"""Violation witnesses: exact points on hand-made traces, determinism, and the flip property."""

from __future__ import annotations

import numpy as np
import pytest
from formulas import ATOMS, random_formula, random_signals

from ltlreward import evaluate, monitor, parse_spec
from ltlreward.spec.ast import Atom, Binary, Call, Constraint, TaskSpec, Unary


def _spec(text: str) -> TaskSpec:
    return TaskSpec(constraints=(Constraint("c", __import__("ltlreward").parse_formula(text)),))


def _points(res, b=0):
    w = res["c"].witness(b)
    return None if w is None else [(a.atom, a.frame) for a in w.atoms]


B = {"a": np.array([1.0, -0.5, 1.0, -0.2, 1.0]), "b": np.array([-1.0, -0.3, -0.8, -1.0, -1.0])}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("G a", [("a", 1), ("a", 3)]),  # every failing frame under a minimum
        ("F b", [("b", 1)]),  # the nearest miss under a maximum
        ("F b & G a", [("b", 1), ("a", 1), ("a", 3)]),
        ("a & b", [("b", 0)]),  # only the failing conjunct
        ("a -> b", [("a", 0)]),  # the argmax of (!a | b) is !a (tie broken to the first child)
        ("X a", [("a", 1)]),
        ("G[2,4] a", [("a", 3)]),
        ("F[2,4] b", [("b", 2)]),
        ("a U b", [("b", 1)]),  # best release at frame 1: b = -0.3 fails there, a@0 held
        ("!F a", [("a", 0), ("a", 2), ("a", 4)]),  # negation swaps: every frame where a holds
        ("G !b", []),  # holds: no witness
    ],
)
def test_witness_points(text, expected):
    res = monitor(_spec(text), B)
    got = _points(res)
    assert (got or []) == sorted(expected, key=lambda p: (p[1], p[0]))


def test_until_witness_names_blocking_left_frames():
    sig = {"a": np.array([1.0, 1.0, -0.4, 1.0]), "b": np.array([-1.0, -1.0, -1.0, 0.5])}
    res = monitor(_spec("a U b"), sig)
    # the best release point is frame 3 (b = 0.5) but a fails at 2 in between
    assert _points(res) == [("a", 2)]


def test_witness_entities_and_frames_from_spec():
    spec = parse_spec(
        'entity g = "gripper" : gripper\nentity o = "cube"\n'
        "constraint keep: G (lifted(o) -> holding(g, o))\n"
    )
    sig = {"lifted(o)": np.array([-1.0, 1.0, 1.0, 1.0]), "holding(g,o)": np.array([-1.0, 1.0, -0.5, 1.0])}
    w = monitor(spec, sig)["keep"].witness(0)
    assert w.frames == (2,)
    assert w.entities == ("g", "o")  # the nearest miss at frame 2: holding (-0.5) beats !lifted (-1)
    assert [(a.atom, a.frame, a.value) for a in w.atoms] == [("holding(g,o)", 2, -0.5)]
    assert w.to_dict() == {"frames": [2], "atoms": [{"atom": "holding(g,o)", "frame": 2, "value": -0.5}],
                           "entities": ["g", "o"]}


def test_witness_batch_equals_single_trace():
    rng = np.random.default_rng(5)
    spec = _spec("G (a -> F[0,2] b) & (c U[1,4] a) | O b")
    sig = random_signals(rng, 12, 15)
    lengths = rng.integers(1, 16, size=12)
    batch = monitor(spec, sig, lengths=lengths)
    for i in range(12):
        one = monitor(spec, {k: v[i, : lengths[i]] for k, v in sig.items()})
        assert _points(one) == _points(batch, i)


def _flip(sig, w, b):
    """Set every witnessed atom instance to the opposite truth value."""
    out = {k: v.copy() for k, v in sig.items()}
    for a in w.atoms:
        out[a.atom][b, a.frame] = -1.0 if out[a.atom][b, a.frame] > 0 else 1.0
    return out


def _linear(rng):
    """A formula with each atom at most once (so no atom instance is needed both true and false), and
    no operator whose value can be fixed by the trace end alone (X or WX at the last frame, Y at frame 0, a window
    past the end): then the witness must be a fix."""
    while True:
        f = random_formula(rng, 3, consts=False, bounded=False, ops_unary=("!", "F", "G", "O", "H"))
        leaves, stack = [], [f]
        while stack:
            g = stack.pop()
            if isinstance(g, Atom):
                leaves.append(g.canonical)
            elif isinstance(g, Unary):
                stack.append(g.child)
            elif isinstance(g, Binary):
                if g.op == "<->":
                    leaves += ["dup", "dup"]
                stack += [g.left, g.right]
        if len(leaves) == len(set(leaves)) and leaves:
            return f


@pytest.mark.parametrize("seed", range(4))
def test_flipping_the_witness_flips_the_verdict(seed):
    rng = np.random.default_rng(300 + seed)
    checked = 0
    while checked < 60:
        f = _linear(rng)
        T = int(rng.integers(1, 8))
        sig = {k: np.where(v, 1.0, -1.0) for k, v in random_signals(rng, 1, T, boolean=True).items()}
        spec = TaskSpec(constraints=(Constraint("c", f),))
        res = monitor(spec, sig)
        if res["c"].satisfied[0]:
            continue
        w = res["c"].witness(0)
        assert bool(evaluate(f, _flip(sig, w, 0), "boolean")[0]), str(f)
        checked += 1


def test_witness_is_deterministic():
    rng = np.random.default_rng(11)
    spec = _spec("F (a & b) | G c")
    sig = random_signals(rng, 4, 30)
    assert [_points(monitor(spec, sig), i) for i in range(4)] == [_points(monitor(spec, sig), i) for i in range(4)]


def test_witness_masks_shape_and_union():
    res = monitor(_spec("G a"), {k: v[None] for k, v in B.items()})
    c = res["c"]
    assert c.witness_frames.shape == (1, 5)
    np.testing.assert_array_equal(c.witness_frames[0], [False, True, False, True, False])
    assert set(c.atom_masks) == {"a"} and Call("a").canonical == "a" and ATOMS
