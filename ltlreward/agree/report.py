"""Agreement reports: `evaluate_method` turns one method's verdicts into a `MethodReport` (metrics overall,
per suite and per task, confusion counts); `AgreementReport` gathers the methods, the spec's disagreements and
rater agreement, and prints itself as JSON or a Markdown table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .labels import LabelItem
from .statistics import Estimate, bootstrap_metrics, confusion_counts


@dataclass
class MethodReport:
    """Agreement of one method (the spec, or a baseline) with the labels."""

    name: str
    description: str
    n: int = 0
    n_failed: int = 0
    metrics: dict[str, Estimate] = field(default_factory=dict)
    confusion: dict[str, int] = field(default_factory=dict)
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_suite: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "n": self.n, "n_failed": self.n_failed,
                "skipped": self.skipped, "seconds": round(self.seconds, 2),
                "metrics": {k: v.to_json() for k, v in self.metrics.items()}, "confusion": self.confusion,
                "per_task": self.per_task,
                "per_suite": {s: {k: v.to_json() for k, v in m.items()} for s, m in self.per_suite.items()}}


@dataclass
class AgreementReport:
    """Everything `agreement` measured: per-method metrics, disagreements of the spec, rater agreement."""

    grounder: str
    n_items: int
    n_positive: int
    methods: list[MethodReport]
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    inter_rater: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Videos the main method could not score."""
        return self.methods[0].n_failed if self.methods else 0

    def to_json(self) -> dict[str, Any]:
        return {"grounder": self.grounder, "n_items": self.n_items, "n_positive": self.n_positive,
                "methods": [m.to_json() for m in self.methods], "disagreements": self.disagreements,
                "inter_rater": self.inter_rater, "notes": self.notes, "config": self.config}

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        """A Markdown table: one row per method (and per suite when there are several), CIs in brackets."""
        if metrics is None:
            metrics = ["balanced_accuracy", "auroc", "accuracy", "f1", "kappa", "mcc"]
            if any("spearman" in m.metrics for m in self.methods):
                metrics.append("spearman")
        head = "| method | suite | n | " + " | ".join(metrics) + " |"
        lines = [head, "|" + "---|" * (3 + len(metrics))]
        for m in self.methods:
            if m.skipped:
                lines.append(f"| {m.name} | – | – | " + " | ".join("skipped" for _ in metrics) + " |")
                continue
            rows = [("all", m.n, m.metrics)]
            if len(m.per_suite) > 1:
                rows += [(s, int(v["n"].value), v) for s, v in m.per_suite.items()]
            for suite, n, met in rows:
                cells = " | ".join(met[k].fmt() if k in met else "–" for k in metrics)
                lines.append(f"| {m.name} | {suite} | {n} | {cells} |")
        return "\n".join(lines)


def _task_table(items: Sequence[LabelItem], y: np.ndarray, pred: np.ndarray, score: np.ndarray, ok: np.ndarray,
                n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per task: n, positives, accuracy, balanced accuracy and AUROC (the method's score), with CIs."""
    out = {}
    for task in sorted({it.task or "(none)" for it in items}):
        sel = np.array([(it.task or "(none)") == task for it in items]) & ok
        if not sel.any():
            continue
        est = bootstrap_metrics(y[sel], pred[sel], score[sel], n_boot=n_boot, seed=seed)
        out[task] = {"n": int(sel.sum()), "positives": int(y[sel].sum()),
                     **{k: est[k].to_json() for k in ("accuracy", "balanced_accuracy", "auroc")}}
    return out


def evaluate_method(name: str, description: str, items: Sequence[LabelItem], pred: Sequence[bool],
                    score: Sequence[float], ok: Sequence[bool], *, n_boot: int = 2000, seed: int = 0,
                    graded: bool = False) -> MethodReport:
    """Metrics of one method over the items it scored (`ok`), overall, per suite and per task."""
    y = np.array([it.label for it in items], bool)
    pred_a, score_a, ok_a = np.asarray(pred, bool), np.asarray(score, np.float64), np.asarray(ok, bool)
    rep = MethodReport(name, description, n=int(ok_a.sum()), n_failed=int((~ok_a).sum()))
    if not ok_a.any():
        rep.skipped = "no video could be scored"
        return rep
    g = np.array([it.graded for it in items], np.float64) if graded else None
    rep.metrics = bootstrap_metrics(y[ok_a], pred_a[ok_a], score_a[ok_a], None if g is None else g[ok_a],
                                    n_boot=n_boot, seed=seed)
    tp, fp, fn, tn = (int(v[0]) for v in confusion_counts(np.ones((1, int(ok_a.sum()))), y[ok_a], pred_a[ok_a]))
    rep.confusion = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    suites = sorted({str(it.meta.get("suite", "")) for it in items} - {""})
    for s in suites:
        sel = np.array([it.meta.get("suite") == s for it in items]) & ok_a
        if sel.any():
            est = bootstrap_metrics(y[sel], pred_a[sel], score_a[sel], n_boot=n_boot, seed=seed)
            est["n"] = Estimate(float(sel.sum()), math.nan, math.nan)
            rep.per_suite[s] = est
    rep.per_task = _task_table(items, y, pred_a, score_a, ok_a, n_boot, seed)
    return rep


__all__ = ["AgreementReport", "MethodReport", "evaluate_method"]
