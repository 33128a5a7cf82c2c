"""The scoring stages as functions of values (ltlreward.pipeline) and the reward-mode registry: each step
returns a new immutable value, the steps composed equal RewardModel, dropped frames change no result, a bad
signal fails only its own video, and the spec validator reads the modes from the registry."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from test_reward import EXPECTED_RHO, SPEC, frames, model

from ltlreward.errors import SpecError
from ltlreward.pipeline import (
    STAGES,
    Decoded,
    Failure,
    Grounded,
    Observed,
    VideoInfo,
    decode_step,
    ground_step,
    monitor_all,
    observe,
    predicates_step,
)
from ltlreward.predicates import Signals
from ltlreward.registry import describe
from ltlreward.reward_modes import REWARD_MODES, RewardModeInfo, aggregate


def _json(a) -> dict:
    rec = a.result.to_json()
    rec.pop("timings")
    return rec


# ------------------------------------------------------------------------------------------ stages
def test_each_step_returns_the_next_value_and_its_time() -> None:
    pipe = model().pipeline
    d = decode_step(pipe, "clip", frames(0))
    assert isinstance(d, Decoded) and d.video.n_frames == 16 and set(d.timings) == {"decode"}
    g = ground_step(pipe, d)
    assert isinstance(g, Grounded) and g.grounder == "fake" and g.observations.n_frames == 16
    assert set(g.timings) == {"decode", "ground"} and set(d.timings) == {"decode"}  # d is left as it was
    o = predicates_step(pipe, g)
    assert isinstance(o, Observed) and set(o.signals.values) == {"p", "q", "s", "visible(a)"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.grounder = "other"  # type: ignore[misc]
    [a] = monitor_all(pipe, [o])
    assert a.result.video == "clip" and [c.robustness for c in a.result.constraints] == pytest.approx(EXPECTED_RHO)
    assert list(a.result.timings) == list(STAGES) and a.signals is o.signals
    want = model().analyze(frames(0))
    assert _json(a) | {"video": None} == _json(want) | {"video": None}
    np.testing.assert_array_equal(a.result.masks, want.result.masks)


def test_dropping_frames_after_grounding_changes_no_result() -> None:
    """The Ray engine drops decoded frames after grounding (VideoInfo): records and masks stay the same."""
    pipe = model().pipeline
    full = [observe(pipe, f"v{i}", frames(k, T)) for i, (k, T) in enumerate([(0, 16), (1, 12), (0, 14)])]
    light = [dataclasses.replace(o, video=VideoInfo.of(o.video)) for o in full]
    assert [(type(o.video), o.video.n_frames) for o in light] == [(VideoInfo, f.video.n_frames) for f in full]
    for a, b in zip(monitor_all(pipe, full), monitor_all(pipe, light), strict=True):
        assert _json(a) == _json(b)
        np.testing.assert_array_equal(a.result.masks, b.result.masks)


def test_a_bad_signal_fails_only_its_own_video() -> None:
    pipe = model().pipeline
    good = [observe(pipe, f"v{i}", frames(i % 2)) for i in range(3)]
    broken = good[1].signals.values | {"q": np.zeros(5, np.float32)}  # 5 values for a 16-frame video
    bad = dataclasses.replace(good[1], vid="bad", signals=Signals(broken, good[1].signals.support))
    results = [a.result for a in monitor_all(pipe, [good[0], bad, good[1], good[2]])]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error.startswith("ValueError: could not broadcast")
    assert math.isnan(results[1].reward) and results[1].grounder == "fake"
    assert [r.reward for r in results] == pytest.approx([2 / 7, math.nan, 1.0, 2 / 7], nan_ok=True)


def test_a_failure_passes_through_the_later_steps() -> None:
    pipe = model().pipeline
    f = decode_step(pipe, "empty", np.zeros((0, 8, 8, 3), np.uint8))
    assert isinstance(f, Failure) and "zero frames" in f.error and set(f.timings) == {"decode"}
    assert predicates_step(pipe, ground_step(pipe, f)) is f
    [a] = monitor_all(pipe, [f])
    r = a.result
    assert (r.video, r.ok, r.grounder, r.reward_mode) == ("empty", False, "fake", "weighted_mean")
    assert list(r.timings) == list(STAGES) and a.video is None and a.observations is None


def test_grounder_returning_the_wrong_frame_count_is_a_failure_naming_it() -> None:
    class Short:
        name = "short"

        def ground(self, video, entities, *, quoted=(), sidecar=None):
            from test_reward import FakeGrounder

            obs = FakeGrounder().ground(video, entities, quoted=quoted, sidecar=sidecar)
            return dataclasses.replace(obs, n_frames=video.n_frames - 1, source="short-backend")

    from ltlreward import RewardModel

    r = RewardModel(SPEC.format(mode="all"), grounder=Short()).score(frames(0))
    assert r.error == "LtlRewardError: <memory:0>: grounder 'short-backend' returned 15 frames for a video of 16"
    assert r.grounder == "short-backend"


# ------------------------------------------------------------------------------------------ reward modes
def test_reward_modes_are_registered_with_their_formula() -> None:
    from ltlreward.spec import ast

    assert REWARD_MODES.names() == ("weighted_mean", "all", "mean_robustness", "min_robustness")
    assert ast.REWARD_MODES is REWARD_MODES  # the spec validator reads the names from the registry
    for name, entry in REWARD_MODES.items():
        assert isinstance(entry.meta, RewardModeInfo) and entry.meta.formula and entry.meta.doc, name
    assert dict(describe(REWARD_MODES))["all"] == "1 if every constraint holds else 0"


def test_a_registered_mode_is_accepted_by_the_validator_and_scored() -> None:
    from ltlreward.spec import parse_spec

    with pytest.raises(SpecError, match="unknown reward mode 'max_robustness'"):
        parse_spec(SPEC.format(mode="max_robustness"))
    REWARD_MODES.register("max_robustness", lambda sat, rho, w: (rho.max(axis=1) + 1.0) / 2.0,
                          meta=RewardModeInfo("(max_c ρ_c + 1) / 2", "the best constraint's robustness"))
    try:
        assert parse_spec(SPEC.format(mode="max_robustness")).reward == "max_robustness"
        assert model("max_robustness").score(frames(0)).reward == pytest.approx((0.9 + 1) / 2, abs=1e-6)
        assert aggregate("max_robustness", np.array([[True, False]]), np.array([[0.5, -0.2]]),
                         np.ones(2)).tolist() == [0.75]
    finally:
        REWARD_MODES.unregister("max_robustness")
    assert "max_robustness" not in REWARD_MODES
