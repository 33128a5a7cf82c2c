"""Reward modes: how a spec's per-constraint verdicts and robustness become one reward per video.

Each mode is a function `(satisfied (B, C) bool, robustness (B, C) float64 in [-1, 1], weights (C,)) ->
(B,) float64` registered in `REWARD_MODES` (the one `ltlreward.registry.Registry` shape) with its formula
and a one-line doc beside it. The spec's `reward` line names one of them; the spec validator reads the
names from here (`ltlreward.spec.ast.REWARD_MODES` is this registry). For weights w_c, verdicts s_c and
robustness ρ_c:

  weighted_mean    Σ w_c·[s_c] / Σ w_c          (weighted fraction of satisfied constraints)
  all              1 if every constraint holds else 0
  mean_robustness  Σ w_c·(ρ_c + 1)/2 / Σ w_c    (robustness mapped from [-1, 1] to [0, 1])
  min_robustness   (min_c ρ_c + 1) / 2

A spec without constraints scores 1 in every mode (`aggregate` handles that before any mode runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .registry import Registry

Aggregator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RewardModeInfo:
    """What a reward mode computes: its formula over w_c, s_c, ρ_c and a one-line description."""

    formula: str
    doc: str


REWARD_MODES: Registry[Aggregator] = Registry("reward mode")


@REWARD_MODES.register("weighted_mean", meta=RewardModeInfo("Σ w_c·[s_c] / Σ w_c",
                                                            "weighted fraction of satisfied constraints"))
def weighted_mean(sat: np.ndarray, rho: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) weighted fraction of the constraints that hold."""
    return (sat * w).sum(axis=1) / w.sum()


@REWARD_MODES.register("all", meta=RewardModeInfo("∧_c s_c", "1 if every constraint holds else 0"))
def all_hold(sat: np.ndarray, rho: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) 1.0 where every constraint holds, else 0.0."""
    return sat.all(axis=1).astype(np.float64)


@REWARD_MODES.register("mean_robustness", meta=RewardModeInfo("Σ w_c·(ρ_c + 1)/2 / Σ w_c",
                                                              "weighted mean robustness mapped to [0, 1]"))
def mean_robustness(sat: np.ndarray, rho: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) weighted mean of the robustness mapped from [-1, 1] to [0, 1]."""
    return ((rho + 1.0) / 2.0 * w).sum(axis=1) / w.sum()


@REWARD_MODES.register("min_robustness", meta=RewardModeInfo("(min_c ρ_c + 1) / 2",
                                                             "the worst constraint's robustness mapped to [0, 1]"))
def min_robustness(sat: np.ndarray, rho: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) the smallest robustness mapped from [-1, 1] to [0, 1]."""
    return (rho.min(axis=1) + 1.0) / 2.0


def unknown_mode(mode: str) -> str:
    """The message for a reward mode that is not registered (lists the modes)."""
    return f"unknown reward mode {mode!r}; choose one of: {', '.join(REWARD_MODES)}"


def aggregate(mode: str, satisfied: np.ndarray, robustness: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rewards (B,) float64 from verdicts (B, C) bool, robustness (B, C) in [-1, 1] and weights (C,)."""
    sat = np.asarray(satisfied, dtype=bool)
    rho = np.clip(np.asarray(robustness, dtype=np.float64), -1.0, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    if sat.ndim != 2 or rho.shape != sat.shape or w.shape != (sat.shape[1],):
        raise ValueError(f"shapes must be (B,C), (B,C), (C,); got {sat.shape}, {rho.shape}, {w.shape}")
    if sat.shape[1] == 0:
        return np.ones(sat.shape[0], np.float64)
    if mode not in REWARD_MODES:
        raise ValueError(unknown_mode(mode))
    return REWARD_MODES.get(mode)(sat, rho, w)


__all__ = ["REWARD_MODES", "Aggregator", "RewardModeInfo", "aggregate", "unknown_mode"]
