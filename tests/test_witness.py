"""Violation witnesses: exact points on hand-made traces, the tie rule, agreement with a point-by-point reference
of the rules, the flip property and the minimality the rules guarantee, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from formulas import ATOMS, random_formula, random_signals
from witness_reference import reference_witness

from ltlreward import evaluate, monitor, parse_spec
from ltlreward.ltlf.core import atom_nodes, lower, topo
from ltlreward.ltlf.signals import prepare
from ltlreward.ltlf.traces import evaluate_nodes
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


# ------------------------------------------------------------------------------ the tie rule (#14)
def _one(text: str, **sig) -> list[tuple[str, int]]:
    return _points(monitor(_spec(text), {k: np.asarray(v, np.float64) for k, v in sig.items()})) or []


def test_f_g_blames_the_last_failing_suffix_not_frame_0():
    # every suffix minimum ties at -1: the cheapest suffix (one failing frame) is the last one
    assert _one("F G a", a=[-1, -1, 1, 1, -1]) == [("a", 4)]
    assert _one("F G a", a=[-0.2, -0.9, 1, 1, -0.3]) == [("a", 4)]


def test_never_happened_blames_the_closest_approach_or_the_deadline():
    assert _one("F a", a=[-0.9, -0.3, -0.1, -0.4, -0.8]) == [("a", 2)]  # the nearest miss
    assert _one("F a", a=[-1.0] * 5) == [("a", 4)]  # all equal: the deadline, not frame 0
    assert _one("F[1,2] a", a=[-1.0] * 5) == [("a", 2)]  # a bounded window: its last frame
    assert _one("O a", a=[-1.0] * 5) == [("a", 0)]  # at frame 0 the past is frame 0 alone


def test_ties_go_to_the_smallest_sub_witness():
    # F (a & G b): at frame 0 a holds and only b@3 fails after; at frame 3 both fail: frame 0 costs one flip
    assert _one("F (a & G b)", a=[1, -1, -1, -1], b=[1, 1, 1, -1]) == [("b", 3)]
    # a tie between ∨ children: the cheaper child (one atom) over the dearer (two failing frames)
    assert _one("G b | a", a=[-1, 1, 1], b=[-1, 1, -1]) == [("a", 0)]


def test_until_chain_stops_at_the_blocking_frame():
    # !p U q with p at frame 2 and q never: the chain from 0 stops where releasing is nearest (q@2 = -0.2)
    assert _one("!p U q", p=[-1, -1, 0.5, -1], q=[-0.9, -0.8, -0.2, -0.95]) == [("q", 2)]
    # released at 3 would hold but p fired at 2: p@2 alone is the fix
    assert _one("!p U q", p=[-1, -1, 0.5, -1], q=[-0.9, -0.8, -0.7, 0.9]) == [("p", 2)]


def test_g_f_is_not_minimal_outside_the_guaranteed_class():
    """Documented limit: under G, each frame's nearest miss of F is chosen on its own."""
    assert _one("G F a", a=[-0.5, -0.9, -0.2, -0.7]) == [("a", 2), ("a", 3)]  # {a@3} alone would fix it


# ------------------------------------------------------------------------------ the reference
def test_exact_zeros_have_no_empty_explanation():
    """A value of exactly 0 and its negation are both "false": an explanation that marks nothing is no
    explanation (cost INF), so the weak until releases at b, a real fix (regression found by the reference)."""
    assert _one("((a -> a) <-> (a -> b)) W b", a=[0.0], b=[0.0]) == [("b", 0)]


@pytest.mark.parametrize("seed", range(5))
def test_witness_matches_the_pointwise_reference(seed):
    """Every operator (bounded, past, weak, constants), ragged traces, graded and Boolean values: the batched
    rules give exactly the points of the recursive reference (tests/witness_reference.py)."""
    rng = np.random.default_rng(70 + seed)
    for _ in range(150):
        f = random_formula(rng, 3)
        B, T = 5, int(rng.integers(1, 9))
        sig = random_signals(rng, B, T, boolean=bool(rng.random() < 0.5))
        sig = {k: np.where(v, 1.0, -1.0) if v.dtype == bool else v for k, v in sig.items()}
        lengths = rng.integers(0, T + 1, size=B)
        res = monitor(TaskSpec(constraints=(Constraint("c", f),)), sig, lengths=lengths)
        root = lower(f)
        order = topo([root])
        vals = evaluate_nodes(order, prepare(atom_nodes(order), sig, boolean=False, lengths=lengths)[0])
        for b in range(B):
            w = res["c"].witness(b)
            got = set() if w is None else {(a.atom, a.frame) for a in w.atoms}
            assert got == reference_witness(root, vals, b, int(lengths[b])), (str(f), b)


# ------------------------------------------------------------------------------ minimality
_TEMPORAL = {"F", "G", "O", "H", "X", "WX", "Y", "U", "R", "W", "M", "S"}


def _propositional(f) -> bool:
    if isinstance(f, Atom):
        return True
    if isinstance(f, Unary):
        return f.op == "!" and _propositional(f.child)
    return f.op not in _TEMPORAL and _propositional(f.left) and _propositional(f.right)


def _flat_universals(f, positive: bool = True) -> bool:
    """Every universally explained temporal operator — G/H in positive position, F/O in negative position,
    every U/S/W/R/M — has propositional operands (the class in which witnesses are inclusion-minimal)."""
    if isinstance(f, Atom):
        return True
    if isinstance(f, Unary):
        if f.op == "!":
            return _flat_universals(f.child, not positive)
        if (f.op in ("G", "H")) == positive and not _propositional(f.child):
            return False
        return _flat_universals(f.child, positive)
    if f.op in ("U", "R", "W", "M", "S"):
        return _propositional(f.left) and _propositional(f.right)
    return _flat_universals(f.left, (not positive) if f.op == "->" else positive) and \
        _flat_universals(f.right, positive)


@pytest.mark.parametrize(("seed", "boolean"), [(0, True), (1, True), (2, False), (3, False)])
def test_witness_is_inclusion_minimal_in_the_flat_class(seed, boolean):
    """Linear formulas are monotone in each witnessed atom, so a witness is inclusion-minimal exactly when no
    single point can be dropped: checked for every point of every witness."""
    rng = np.random.default_rng(500 + seed)
    checked = 0
    while checked < 60:
        f = _linear(rng)
        if not _flat_universals(f):
            continue
        T = int(rng.integers(1, 8))
        raw = random_signals(rng, 1, T, boolean=boolean)
        sig = {k: (np.where(v, 1.0, -1.0) if boolean else np.where(v == 0, 0.5, v)) for k, v in raw.items()}
        res = monitor(TaskSpec(constraints=(Constraint("c", f),)), sig)
        if res["c"].satisfied[0]:
            continue
        w = res["c"].witness(0)
        assert bool(evaluate(f, _flip(sig, w, 0), "boolean")[0]), str(f)
        for drop in w.atoms:
            rest = type(w)(w.frames, tuple(a for a in w.atoms if a != drop), w.entities)
            assert not bool(evaluate(f, _flip(sig, rest, 0), "boolean")[0]), (str(f), drop)
        checked += 1


@pytest.mark.parametrize("seed", range(2))
def test_flipping_the_witness_flips_the_verdict_with_graded_values(seed):
    rng = np.random.default_rng(900 + seed)
    checked = 0
    while checked < 60:
        f = _linear(rng)
        T = int(rng.integers(1, 8))
        sig = {k: np.where(v == 0, 0.5, v) for k, v in random_signals(rng, 1, T).items()}  # no exact zeros
        res = monitor(TaskSpec(constraints=(Constraint("c", f),)), sig)
        if res["c"].satisfied[0]:
            continue
        assert bool(evaluate(f, _flip(sig, res["c"].witness(0), 0), "boolean")[0]), str(f)
        checked += 1


def test_witnesses_of_some_violated_traces_equal_those_of_all():
    """The work runs on the violated traces only (or on the whole batch when most are): same points."""
    rng = np.random.default_rng(8)
    spec = _spec("G (a -> X (!a U b)) | F G c")
    sig = random_signals(rng, 16, 40)
    whole = monitor(spec, sig)
    for i in range(16):
        one = monitor(spec, {k: v[i : i + 1] for k, v in sig.items()})
        assert _points(one) == _points(whole, i)


def test_minplus_scan_equals_its_recurrence():
    from ltlreward.ltlf.kernels import minplus_scan

    rng = np.random.default_rng(3)
    for T in (1, 7, 49, 130):
        a = rng.integers(0, 9, size=(T, 4)).astype(np.float32)
        b = rng.integers(0, 4, size=(T, 4)).astype(np.float32)
        a[rng.random((T, 4)) < 0.2] = np.inf
        b[rng.random((T, 4)) < 0.2] = np.inf
        want = np.empty_like(a)
        nxt = np.full(4, np.inf, np.float32)
        for t in range(T - 1, -1, -1):
            want[t] = nxt = np.minimum(a[t], b[t] + nxt)
        np.testing.assert_array_equal(minplus_scan(a, b, np.inf), want)
