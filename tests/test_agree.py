"""Agreement metrics against hand-computed values, the vectorised bootstrap, label loading and `run_agree`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ltlreward.agree import (
    LabelError,
    all_metrics,
    auroc_weighted,
    bootstrap_metrics,
    cohen_kappa,
    count_metrics,
    counts_matrix,
    end_state_spec,
    fleiss_kappa,
    inter_rater,
    load_labels,
    spearman_weighted,
)
from ltlreward.agree_cli import run_agree
from ltlreward.spec import parse_spec


# ------------------------------------------------------------------------------------------ metrics
def test_count_metrics_on_a_2x2_table_match_hand_computation():
    # TP 20, FP 5, FN 10, TN 15 (n = 50): po = 0.7, pe = (25·30 + 25·20) / 50² = 0.5 → κ = 0.4
    m = {k: float(v) for k, v in count_metrics(20, 5, 10, 15).items()}
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["kappa"] == pytest.approx(0.4)
    assert m["balanced_accuracy"] == pytest.approx((20 / 30 + 15 / 20) / 2)
    assert m["f1"] == pytest.approx(40 / 55)
    assert m["mcc"] == pytest.approx((20 * 15 - 5 * 10) / math.sqrt(25 * 30 * 20 * 25))


def test_undefined_metrics_are_nan_or_zero_by_convention():
    m = count_metrics(np.array([5.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]))  # one class only
    assert math.isnan(m["balanced_accuracy"][0]) and math.isnan(m["kappa"][0])
    assert m["mcc"][0] == 0.0 and m["accuracy"][0] == 1.0


def test_cohen_kappa_of_two_raters():
    a = [1, 1, 1, 0, 0, 0, 1, 0]
    b = [1, 1, 0, 0, 0, 1, 1, 0]  # 6/8 agree, both say yes half the time → pe = 0.5, κ = 0.5
    assert cohen_kappa(np.array(a, bool), np.array(b, bool)) == pytest.approx(0.5)


def test_fleiss_kappa_small_table():
    # 3 items × 3 raters: P̄ = 7/9, p = (5/9, 4/9), Pe = 41/81 → κ = (7/9 − 41/81) / (40/81) = 0.55
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [2, 1]])) == pytest.approx(0.55)


def test_auroc_counts_ties_as_half():
    one = np.ones((1, 4))
    y = np.array([1, 1, 0, 0], bool)
    assert auroc_weighted(one, y, np.array([0.9, 0.4, 0.5, 0.1]))[0] == pytest.approx(0.75)
    assert auroc_weighted(one, y, np.array([0.5, 0.5, 0.5, 0.1]))[0] == pytest.approx(0.75)
    assert auroc_weighted(one, y, np.array([1.0, 0.9, 0.2, 0.1]))[0] == pytest.approx(1.0)


def test_spearman_with_ties_matches_hand_computation():
    # ranks of z = [1, 2, 3.5, 5, 3.5]; centred: x (−2..2), z (−2, −1, .5, 2, .5) → 8 / √(10 · 9.5)
    rho = spearman_weighted(np.ones((1, 5)), np.array([1, 2, 3, 4, 5.0]), np.array([5, 6, 7, 8, 7.0]))
    assert rho[0] == pytest.approx(8 / math.sqrt(95))


def test_weighted_metrics_equal_metrics_of_the_explicit_resample():
    rng = np.random.default_rng(3)
    n = 30
    y = rng.random(n) < 0.5
    pred = np.where(rng.random(n) < 0.8, y, ~y)
    score = rng.random(n) + y
    graded = rng.integers(0, 4, n).astype(float)
    C = counts_matrix(n, 5, seed=11)
    vec = all_metrics(C, y, pred, score, graded)
    for b in range(5):
        idx = np.repeat(np.arange(n), C[b].astype(int))
        one = all_metrics(np.ones((1, idx.size)), y[idx], pred[idx], score[idx], graded[idx])
        for k in vec:
            assert vec[k][b] == pytest.approx(one[k][0], nan_ok=True), k


def test_bootstrap_ci_contains_point_and_is_deterministic_by_seed():
    rng = np.random.default_rng(0)
    y = rng.random(80) < 0.5
    pred = np.where(rng.random(80) < 0.85, y, ~y)
    score = pred + rng.normal(0, 0.3, 80)
    a = bootstrap_metrics(y, pred, score, n_boot=500, seed=7)
    b = bootstrap_metrics(y, pred, score, n_boot=500, seed=7)
    c = bootstrap_metrics(y, pred, score, n_boot=500, seed=8)
    for k in ("accuracy", "balanced_accuracy", "f1", "kappa", "mcc", "auroc"):
        assert a[k].lo <= a[k].value <= a[k].hi, k
        assert (a[k].lo, a[k].hi) == (b[k].lo, b[k].hi)
    assert (a["accuracy"].lo, a["accuracy"].hi) != (c["accuracy"].lo, c["accuracy"].hi) or \
        (a["kappa"].lo, a["kappa"].hi) != (c["kappa"].lo, c["kappa"].hi)


def test_end_state_spec_keeps_only_F_G_of_a_plain_formula():
    spec = parse_spec('entity a = "a"\nentity b = "b"\n'
                      'constraint order: !lifted(a) U near(a, b)\n'
                      'constraint end: F G (dist(a, b) < 0.05)\n'
                      'constraint nested: F G (near(a, b) U lifted(a))\n')
    cut = end_state_spec(spec)
    assert [c.name for c in cut.constraints] == ["end"]
    assert end_state_spec(parse_spec('entity a = "a"\nconstraint x: F lifted(a)\n')) is None


# ------------------------------------------------------------------------------------------ labels
def _write(path, text):
    path.write_text(text)
    return path


def test_load_labels_jsonl_and_csv(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    j = _write(tmp_path / "l.jsonl", '{"video": "a.mp4", "success": true, "task": "t"}\n\n'
                                     '{"video": "b.mp4", "label": "no"}\n')
    items = load_labels(j)
    assert [(it.label, it.task) for it in items] == [(True, "t"), (False, None)]
    assert items[0].video == str((tmp_path / "a.mp4").resolve())
    c = _write(tmp_path / "l.csv", "video,label,rater\na.mp4,1,ann\na.mp4,0,bob\nb.mp4,yes,ann\nb.mp4,yes,bob\n")
    items = load_labels(c)
    assert [it.label for it in items] == [False, True]  # a tie counts as failure
    ir = inter_rater(items)
    assert ir["raters"] == ["ann", "bob"] and ir["ties"] == 1
    assert ir["pairs"]["ann|bob"]["agreement"] == 0.5


@pytest.mark.parametrize("text, suffix, message", [
    ('{"video": "a.mp4", "label": "maybe"}\n', ".jsonl", ":1: label must be"),
    ('{"video": "a.mp4"}\n', ".jsonl", ":1: missing 'label'"),
    ('{"label": 1}\n', ".jsonl", ":1: missing 'video'"),
    ('{"video": "a.mp4", "label": 1}\n{"video": "a.mp4", "label": 0}\n', ".jsonl", ":2: second label for a.mp4"),
    ('{"video": "nope.mp4", "label": 1}\n', ".jsonl", ":1: video 'nope.mp4' not found"),
    ('{"video": "a.mp4", "label": 1\n', ".jsonl", ":1: not valid JSON"),
    ("name,label\na.mp4,1\n", ".csv", ":1: a CSV labels file needs a header"),
    ("video,label,rater\na.mp4,1,x\na.mp4,0,x\n", ".csv", ":3: rater 'x' labels a.mp4 twice"),
])
def test_label_errors_name_file_and_line(tmp_path, text, suffix, message):
    (tmp_path / "a.mp4").write_bytes(b"x")
    p = _write(tmp_path / f"labels{suffix}", text)
    with pytest.raises(LabelError) as e:
        load_labels(p)
    assert str(p) in str(e.value) and message in str(e.value)


# ------------------------------------------------------------------------------------------ run_agree
SPEC = """task "Bring the block to the goal"
entity block = "block"
entity goal = "goal" : region
constraint untouched_start "the block rests for the first frames": G[0,2] !moving(block)
constraint at_goal [weight=2] "the block ends within 5 cm of the goal": F G (dist(block, goal) < 0.05)
"""


def _make_set(tmp_path, finals):
    """Tiny videos + sidecars: the block slides from x=0.4 to `final` (goal at x=0)."""
    from ltlreward.video import write_video

    T = 12
    lines = []
    for i, (final, label) in enumerate(finals):
        frames = np.full((T, 32, 32, 3), 90, np.uint8)
        write_video(tmp_path / f"v{i}.mp4", frames, 10)
        x = np.concatenate([np.full(4, 0.4), np.linspace(0.4, final, T - 4)])
        pos = np.stack([x, np.zeros(T), np.full(T, 0.02)], 1)
        side = {"version": 1, "fps": 10, "n_frames": T,
                "entities": {"block": {"position": pos.tolist()}, "goal": {"position": [[0, 0, 0.02]] * T}}}
        (tmp_path / f"v{i}.sidecar.json").write_text(json.dumps(side))
        lines.append(json.dumps({"video": f"v{i}.mp4", "success": label, "task": "slide", "suite": "toy",
                                 "spec": "slide.ltl", "grade": round(1.0 - abs(final), 2)}))
    (tmp_path / "slide.ltl").write_text(SPEC)
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "labels.jsonl"


def test_run_agree_end_to_end(tmp_path, capsys):
    # v0–v2 reach the goal, v3–v5 stop 20 cm short; v5 is labelled a success → exactly one disagreement
    labels = _make_set(tmp_path, [(0.01, True), (0.0, True), (0.02, True), (0.2, False), (0.25, False),
                                  (0.2, True)])
    out = tmp_path / "report.json"
    md = tmp_path / "table.md"
    code = run_agree([labels], baselines=["end_state", "last_frame", "vlm"], n_boot=200, json_output=True,
                     out=str(out), markdown=str(md), overlay_dir=str(tmp_path / "ov"))
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep == json.loads(out.read_text())
    spec = rep["methods"][0]
    assert spec["name"] == "spec" and spec["n"] == 6
    assert spec["metrics"]["accuracy"]["value"] == pytest.approx(5 / 6, abs=1e-4)
    assert spec["confusion"] == {"tp": 3, "fp": 0, "fn": 1, "tn": 2}
    assert spec["per_task"]["slide"]["n"] == 6
    (d,) = rep["disagreements"]
    assert d["video"].endswith("v5.mp4") and d["label"] is True and d["predicted"] is False
    assert [v["name"] for v in d["violated"]] == ["at_goal"]
    assert d["overlay"] and d["overlay"].endswith("v5.mp4")
    names = [m["name"] for m in rep["methods"]]
    assert names == ["spec", "end_state", "last_frame", "vlm"]
    last = rep["methods"][2]
    assert last["metrics"]["accuracy"]["value"] == pytest.approx(5 / 6, abs=1e-4)
    assert rep["methods"][3]["skipped"]  # no VLM weights in the test environment
    assert "| spec | all | 6 |" in md.read_text()


def test_run_agree_usage_errors(tmp_path, capsys):
    labels = _make_set(tmp_path, [(0.0, True), (0.3, False)])
    assert run_agree([labels], spec=str(tmp_path / "slide.ltl"), spec_map="m.json") == 2
    assert run_agree([labels], baselines=["oracle"]) == 2
    assert run_agree([tmp_path / "missing.jsonl"]) == 2
    (tmp_path / "map.json").write_text(json.dumps({"other": "slide.ltl"}))
    assert run_agree([labels], spec_map=str(tmp_path / "map.json"), baselines=[]) == 2  # no video has a spec
    err = capsys.readouterr().err
    assert "at most one of" in err and "unknown baseline" in err and "labels file not found" in err


def test_run_agree_graded_labels_report_spearman(tmp_path, capsys):
    labels = _make_set(tmp_path, [(0.0, True), (0.01, True), (0.2, False), (0.3, False)])
    assert run_agree([labels], baselines=[], n_boot=100, graded="grade", json_output=True) == 0
    m = json.loads(capsys.readouterr().out)["methods"][0]["metrics"]
    # reward ranks (3.5, 3.5, 1.5, 1.5) vs grade ranks (4, 3, 2, 1): cov 4 / √(4 · 5) = 2/√5
    assert m["spearman"]["value"] == pytest.approx(2 / math.sqrt(5), abs=1e-4)


def test_run_agree_with_two_human_raters(tmp_path, capsys):
    _make_set(tmp_path, [(0.0, True), (0.0, True), (0.3, False), (0.3, False)])
    rows = ["video,label,rater"] + [f"v{i}.mp4,{a},ann" for i, a in enumerate([1, 1, 0, 0])] + \
        [f"v{i}.mp4,{b},bob" for i, b in enumerate([1, 0, 0, 0])]
    (tmp_path / "human.csv").write_text("\n".join(rows) + "\n")
    code = run_agree([tmp_path / "human.csv"], spec=str(tmp_path / "slide.ltl"), baselines=[], n_boot=50,
                     json_output=True)
    assert code == 0
    ir = json.loads(capsys.readouterr().out)["inter_rater"]
    # ann vs bob agree on 3/4; ann says yes 1/2, bob 1/4 → pe = (.5·.25 + .5·.75) = .5, κ = (.75 − .5)/.5
    assert ir["cohen_kappa"] == pytest.approx(0.5)
    assert ir["spec_vs_rater"]["ann"] == {"n": 4, "cohen_kappa": 1.0}
    assert ir["spec_vs_rater"]["bob"]["cohen_kappa"] == pytest.approx(0.5)


def test_specs_compiled_from_descriptions_are_cached_and_failures_noted():
    from ltlreward.agree import LabelItem, assign_specs

    text = "Pick up the red block and put it on the yellow plate."
    items = [LabelItem("a.mp4", True, description=text), LabelItem("b.mp4", False, description=text),
             LabelItem("c.mp4", False, description="Xyzzy plugh frobnicate."), LabelItem("d.mp4", True)]
    specs, notes = assign_specs(items, from_descriptions=True)
    assert specs[0] is specs[1] and "red_block" in specs[0].entity_names
    assert specs[2] is None and specs[3] is None
    assert any("could not compile 'Xyzzy" in n for n in notes)
    assert "no spec for (no description): 1 video(s) not scored" in notes


# ------------------------------------------------------------------------------------------ baselines registry
def test_unknown_baseline_is_the_registry_error_listing_the_options():
    from ltlreward.agree import BASELINES, BaselineError, LabelItem, agreement
    from ltlreward.registry import describe

    assert BASELINES.names() == ("end_state", "last_frame", "vlm")
    assert [row[0] for row in describe(BASELINES)] == ["end_state", "last_frame", "vlm"]
    with pytest.raises(BaselineError) as e:  # before anything is scored
        agreement([LabelItem("a.mp4", True, spec="never_read.ltl")], baselines=["end_stat"])
    assert str(e.value) == "unknown baseline 'end_stat'; did you mean 'end_state'? available: end_state, last_frame, vlm"
    assert isinstance(e.value, ValueError)


def test_a_registered_baseline_runs_beside_the_builtin_ones(tmp_path):
    from ltlreward.agree import BASELINES, BaselineResult, agreement, load_labels

    @BASELINES.register("always_yes")
    def always_yes(inp):
        n = len(inp.items)
        return BaselineResult(inp.evaluate("always_yes", "every video succeeds", [True] * n, [1.0] * n, [True] * n),
                              ("always_yes: a constant",))

    try:
        labels = _make_set(tmp_path, [(0.0, True), (0.0, True), (0.3, False)])
        rep = agreement(load_labels(labels), baselines=["always_yes"], n_boot=0)
    finally:
        BASELINES.unregister("always_yes")
    assert [m.name for m in rep.methods] == ["spec", "always_yes"]
    assert rep.methods[1].metrics["accuracy"].value == pytest.approx(2 / 3)
    assert rep.methods[1].confusion == {"tp": 2, "fp": 1, "fn": 0, "tn": 0}
    assert rep.notes == ["spec: grounder auto chose state for 3 video(s) (sidecar beside the video: v0.sidecar.json)",
                         "always_yes: a constant"]
    assert rep.config["baselines"] == ["always_yes"]
