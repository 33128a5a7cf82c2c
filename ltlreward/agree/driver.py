"""The agreement driver: specs per item → score with the spec → disagreements (and overlays) → baselines →
rater agreement → one AgreementReport. Each step is a function of values; `agreement` only chains them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .baselines import BASELINES, Baseline, BaselineInput
from .labels import LabelError, LabelItem, assign_specs
from .report import AgreementReport, MethodReport
from .scoring import Scored, score_with_specs
from .statistics import cohen_kappa, inter_rater


def _specified(items: Sequence[LabelItem], specs: Sequence[Any]) -> tuple[list[LabelItem], list[Any]]:
    """The items that have a spec, with their specs; LabelError when none has one."""
    keep = [i for i, s in enumerate(specs) if s is not None]
    if not keep:
        raise LabelError("no labelled video has a spec: pass --spec, --spec-map, --from-descriptions or put a "
                         "'spec' field in the labels")
    return [items[i] for i in keep], [specs[i] for i in keep]


def _parse_specs(specs: Sequence[Any]) -> list[Any]:
    """A TaskSpec per item, parsed once per distinct path (or spec object) so equal specs share one object."""
    from ..reward import load_task_spec

    parsed: dict[Any, Any] = {}
    for s in specs:
        key = s if isinstance(s, str) else id(s)
        if key not in parsed:
            parsed[key] = load_task_spec(s)
    return [parsed[s if isinstance(s, str) else id(s)] for s in specs]


def _score_spec(inp: BaselineInput, specs: Sequence[Any]) -> tuple[list[Scored], MethodReport, list[str]]:
    """The main method: every video scored with its full spec; notes group the failures by error type."""
    inp.say(f"scoring {len(inp.videos)} videos with the spec ({inp.grounder})")
    t0 = time.perf_counter()
    main = score_with_specs(inp.videos, specs, inp.grounder, workers=inp.workers, model_options=inp.model_options)
    rep = inp.evaluate("spec", f"full spec, {inp.grounder} grounding", [s.satisfied for s in main],
                       [s.reward for s in main], [s.error is None for s in main])
    rep.seconds = time.perf_counter() - t0
    errors = Counter(s.error.split(":")[0] for s in main if s.error)
    notes = [f"spec: {n} video(s) failed with {e} (first: "
             f"{next(s.error for s in main if s.error and s.error.startswith(e))})" for e, n in errors.items()]
    return main, rep, _backend_notes(inp.grounder, main) + notes


def _backend_notes(grounder: str, main: Sequence[Scored]) -> list[str]:
    """What `auto` chose, per backend: how many videos and the first video's reason (never a silent fallback)."""
    if grounder != "auto":
        return []
    chosen = Counter(s.grounder for s in main if s.grounder)
    first = {b: next(s.grounder_reason for s in main if s.grounder == b) for b in chosen}
    return [f"spec: grounder auto chose {b} for {n} video(s) ({first[b]})" for b, n in chosen.most_common()]


def _disagreements(items: Sequence[LabelItem], main: Sequence[Scored], limit: int) -> list[dict[str, Any]]:
    """The first `limit` scored videos whose verdict differs from their label, with the violated constraints."""
    out = [{"video": it.video, "task": it.task, "label": it.label, "predicted": s.satisfied,
            "reward": round(s.reward, 4), "failure_mode": it.meta.get("failure_mode"), "violated": s.violated,
            "overlay": None}
           for it, s in zip(items, main, strict=True) if s.error is None and s.satisfied != it.label]
    return out[:limit]


def _with_overlays(disagreements: Sequence[dict[str, Any]], items: Sequence[LabelItem], specs: Sequence[Any],
                   inp: BaselineInput, overlay_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The disagreements with an overlay video drawn for each (or the error that prevented it)."""
    from ..batch import VideoScorer

    inp.say(f"writing {len(disagreements)} overlay(s) to {overlay_dir}")
    by_video = {it.video: sp for it, sp in zip(items, specs, strict=True)}
    out = []
    for d in disagreements:
        d = dict(d)
        try:
            sc = VideoScorer({"spec": by_video[d["video"]], "grounder": inp.grounder, "masks": False,
                              **dict(inp.model_options or {})}, overlay_dir=os.fspath(overlay_dir))
            d["overlay"] = sc(d["video"]).get("overlay")
        except Exception as e:  # an overlay that cannot be drawn never hides the disagreement
            d["overlay_error"] = f"{type(e).__name__}: {e}"
        out.append(d)
    return out


def _run_baseline(name: str, baseline: Baseline, inp: BaselineInput) -> tuple[MethodReport, list[str]]:
    """One baseline, timed; a skipped one leaves a note saying why."""
    t0 = time.perf_counter()
    res = baseline(inp)
    res.report.seconds = time.perf_counter() - t0
    notes = list(res.notes) + ([f"{name}: skipped — {res.report.skipped}"] if res.report.skipped else [])
    return res.report, notes


def _raters(items: Sequence[LabelItem], main: Sequence[Scored]) -> dict[str, Any] | None:
    """Inter-rater agreement, and ours beside theirs: Cohen's κ of the spec's verdicts against each rater."""
    raters = inter_rater(items)
    if raters is None:
        return None
    raters["spec_vs_rater"] = {}
    for r in raters["raters"]:
        both = [(s.satisfied, it.ratings[r]) for it, s in zip(items, main, strict=True)
                if r in it.ratings and s.error is None]
        if both:
            a, b = zip(*both, strict=True)
            raters["spec_vs_rater"][r] = {"n": len(both), "cohen_kappa": round(cohen_kappa(a, b), 4)}
    return raters


def agreement(items: Sequence[LabelItem], *, grounder: str = "auto", spec: str | None = None,
              spec_map: Mapping[str, str] | None = None, from_descriptions: bool = False,
              baselines: Sequence[str] | None = None, workers: int = 1, n_boot: int = 2000, seed: int = 0,
              graded: bool = False, overlay_dir: str | os.PathLike[str] | None = None,
              max_disagreements: int = 50, model_options: Mapping[str, Any] | None = None,
              progress: Callable[[str], None] | None = None, nl_backend: str = "rules") -> AgreementReport:
    """Score `items` with the spec(s) and the baselines (None = every registered one) and measure agreement
    with their labels. Specs: see `assign_specs`; an unknown baseline is a BaselineError listing the options."""
    specs, notes = assign_specs(items, spec=spec, spec_map=spec_map, from_descriptions=from_descriptions,
                                nl_backend=nl_backend)
    items, specs = _specified(items, specs)
    chosen = list(BASELINES.names() if baselines is None else baselines)
    runs = [(b, BASELINES.get(b)) for b in chosen]
    inp = BaselineInput(items, [it.video for it in items], _parse_specs(specs), grounder, workers, n_boot, seed,
                        graded, model_options, progress or (lambda _msg: None))
    main, rep, spec_notes = _score_spec(inp, specs)
    methods, notes = [rep], notes + spec_notes
    disagreements = _disagreements(items, main, max_disagreements)
    if overlay_dir is not None and disagreements:
        disagreements = _with_overlays(disagreements, items, specs, inp, overlay_dir)
    for name, baseline in runs:
        m, more = _run_baseline(name, baseline, inp)
        methods.append(m)
        notes += more
    y = np.array([it.label for it in items], bool)
    return AgreementReport(grounder=grounder, n_items=len(items), n_positive=int(y.sum()), methods=methods,
                           disagreements=disagreements, inter_rater=_raters(items, main), notes=notes,
                           config={"n_boot": n_boot, "seed": seed, "workers": workers, "baselines": chosen})


__all__ = ["agreement"]
