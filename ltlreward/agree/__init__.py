"""Reward–label agreement: score a labelled video set and measure how well the verdicts match the labels.

    items = load_labels(["labels.jsonl"])                          # simulator or human labels
    report = agreement(items, grounder="state")                    # specs from the labels / a map / one spec
    print(report.to_markdown())

Prediction = the spec's Boolean verdict (every constraint holds); score = the reward (for AUROC). One module
per job:

    labels      label files → LabelItem (raters combined by majority), spec maps, each item's spec
    statistics  accuracy, balanced accuracy, F1, κ, MCC, AUROC, Spearman under bootstrap weights; rater κ
    scoring     each video with its spec through ltlreward.batch → Scored
    baselines   the BASELINES registry: end_state, last_frame, vlm
    report      MethodReport / AgreementReport, JSON and Markdown
    driver      agreement(): specs → spec scores → disagreements → baselines → report
"""

from __future__ import annotations

from .baselines import (
    BASELINES,
    Baseline,
    BaselineError,
    BaselineInfo,
    BaselineInput,
    BaselineResult,
    LastFrame,
    end_state_spec,
    goal_entities,
    last_frame_heuristic,
    task_object,
    vlm_spec,
    vlm_unavailable,
)
from .driver import agreement
from .labels import LabelError, LabelItem, assign_specs, load_labels, load_spec_map, parse_label, resolve_path
from .report import AgreementReport, MethodReport, evaluate_method
from .scoring import Scored, score_with_specs
from .statistics import (
    METRICS,
    Estimate,
    all_metrics,
    auroc_weighted,
    bootstrap_metrics,
    cohen_kappa,
    confusion_counts,
    count_metrics,
    counts_matrix,
    fleiss_kappa,
    inter_rater,
    spearman_weighted,
    weighted_ranks,
)

__all__ = ["BASELINES", "METRICS", "AgreementReport", "Baseline", "BaselineError", "BaselineInfo", "BaselineInput",
           "BaselineResult", "Estimate", "LabelError", "LabelItem", "LastFrame", "MethodReport", "Scored", "agreement",
           "all_metrics", "assign_specs", "auroc_weighted", "bootstrap_metrics", "cohen_kappa", "confusion_counts",
           "count_metrics", "counts_matrix", "end_state_spec", "evaluate_method", "fleiss_kappa", "goal_entities",
           "inter_rater", "last_frame_heuristic", "load_labels", "load_spec_map", "parse_label", "resolve_path",
           "score_with_specs", "spearman_weighted", "task_object", "vlm_spec", "vlm_unavailable", "weighted_ranks"]
