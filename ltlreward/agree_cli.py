"""The `ltlreward agree` command as a plain function; ltlreward/cli.py wires it into typer.

Human output: a rich table per method (metrics with bootstrap 95 % CIs, per suite), the per-task breakdown of
the spec, its confusion matrix, the disagreements with their violated constraints (and overlay paths) and
notes (skipped baselines, unscored videos). `json_output`: the report as one JSON object on stdout.
Exit codes: 0 every video scored, 1 some video failed to score, 2 usage / label / spec errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LtlRewardError, problem_text


def _fmt(e: dict[str, Any]) -> str:
    """'0.950 [0.900, 0.990]' from an Estimate's JSON form."""
    if e["value"] is None:
        return "–"
    return f"{e['value']:.3f}" + (f" [{e['lo']:.3f}, {e['hi']:.3f}]" if e["lo"] is not None else "")


def _print_report(console: Any, report: Any, max_rows: int) -> None:
    from rich.table import Table

    t = Table(title=f"agreement with the labels — {report.n_items} videos, {report.n_positive} positive, "
                    f"grounder {report.grounder}")
    names = ("balanced_accuracy", "auroc", "accuracy", "f1", "kappa", "mcc")
    graded = any("spearman" in m.metrics for m in report.methods)
    cols = (*names, "spearman") if graded else names
    for c in ("method", "suite", "n", *cols):
        t.add_column(c, justify="left" if c in ("method", "suite") else "right")
    for m in report.methods:
        if m.skipped:
            t.add_row(m.name, "–", "–", *(["skipped"] * len(cols)))
            continue
        rows = [("all", m.n, m.metrics)]
        if len(m.per_suite) > 1:
            rows += [(s, int(v["n"].value), v) for s, v in m.per_suite.items()]
        for suite, n, met in rows:
            t.add_row(m.name, suite, str(n), *(met[k].fmt() if k in met else "–" for k in cols))
    console.print(t)
    spec = report.methods[0]
    if spec.confusion:
        c = spec.confusion
        console.print(f"confusion (spec): TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}")
    if spec.per_task:
        pt = Table(title="per task (spec)")
        for col in ("task", "n", "positives", "accuracy", "balanced accuracy", "auroc"):
            pt.add_column(col, justify="left" if col == "task" else "right")
        for task, d in spec.per_task.items():
            pt.add_row(task, str(d["n"]), str(d["positives"]), _fmt(d["accuracy"]), _fmt(d["balanced_accuracy"]),
                       _fmt(d["auroc"]))
        console.print(pt)
    if report.disagreements:
        dt = Table(title=f"disagreements (spec vs label), {len(report.disagreements)} shown")
        for col in ("video", "label", "spec", "reward", "violated constraints", "overlay"):
            dt.add_column(col)
        for d in report.disagreements[:max_rows]:
            viol = "; ".join(f"{v['name']} ({v['robustness']:+.2f}, frames {v['frames'][:4]})"
                             for v in d["violated"]) or "–"
            dt.add_row(Path(d["video"]).name, "✓" if d["label"] else "✗", "✓" if d["predicted"] else "✗",
                       f"{d['reward']:.2f}", viol, d.get("overlay") or "")
        console.print(dt)
    if report.inter_rater:
        ir = report.inter_rater
        console.print(f"inter-rater: {len(ir['raters'])} raters on {ir['n_items']} videos, "
                      f"Fleiss κ {ir['fleiss_kappa']}" +
                      (f", Cohen κ {ir['cohen_kappa']}" if "cohen_kappa" in ir else ""))
        for r, v in ir.get("spec_vs_rater", {}).items():
            console.print(f"  spec vs {r}: Cohen κ {v['cohen_kappa']} on {v['n']} videos")
    for n in report.notes:
        console.print(f"[yellow]note:[/yellow] {n}")


def _usage_problem(labels: Sequence[Any], spec: str | None, spec_map: str | None, from_descriptions: bool,
                   baselines: Sequence[str], n_boot: int, workers: int) -> str | None:
    """What is wrong with the arguments before any file is read (None when nothing is)."""
    from .agree import BASELINES, BaselineError

    if not labels:
        return "give at least one labels file (--labels FILE)"
    if sum(x is not None and x is not False for x in (spec, spec_map, from_descriptions or None)) > 1:
        return "give at most one of --spec, --spec-map and --from-descriptions"
    try:
        for b in baselines:
            BASELINES.canonical(b)
    except BaselineError as e:
        return str(e)
    if n_boot < 0 or workers < 1:
        return "--n-boot must be >= 0 and --workers >= 1"
    return None


def _write_outputs(report: Any, data: dict[str, Any], out: str | None, markdown: str | None) -> None:
    """The report's JSON to `out` and its Markdown table to `markdown` (either may be None)."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(data, indent=1))
    if markdown:
        Path(markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown).write_text(report.to_markdown() + "\n")


def run_agree(
    labels: Sequence[str | os.PathLike[str]],
    *,
    spec: str | None = None,
    spec_map: str | None = None,
    from_descriptions: bool = False,
    grounder: str = "auto",
    baselines: Sequence[str] | None = None,
    workers: int = 1,
    n_boot: int = 2000,
    seed: int = 0,
    graded: str | None = None,
    overlay_dir: str | None = None,
    out: str | None = None,
    markdown: str | None = None,
    json_output: bool = False,
    max_rows: int = 20,
    console: Any = None,
    err_console: Any = None,
    prompts: str | None = None,
    nl_backend: str = "rules",
) -> int:
    """Score labelled videos and print agreement metrics; returns the exit code (0 ok, 1 failures, 2 usage).

    `labels`: JSONL/CSV label files. Specs: `spec` for every video, else `spec_map` (JSON task → .ltl), else
    `from_descriptions` (compile each description with ltlreward.nl), else each label row's `spec` field.
    `baselines`: names from ltlreward.agree.BASELINES (None = all; [] = none). `graded`: name of a numeric
    label column for Spearman's ρ. `out`: write the report JSON; `markdown`: write the Markdown table. `prompts`:
    entity prompts for every video (a prompts file, or a directory of `<stem>.prompts.json`). `nl_backend`:
    the English backend of `from_descriptions` (rules, llm, auto).
    """
    from rich.console import Console

    from .agree import BASELINES, LabelError, agreement, load_labels, load_spec_map

    console = console or Console()
    err = err_console or Console(stderr=True)

    def usage(problem: BaseException | str) -> int:
        err.print(problem_text(problem), style="red", markup=False, highlight=False)  # one 'error:' prefix
        return 2

    chosen = list(BASELINES.names() if baselines is None else baselines)
    problem = _usage_problem(labels, spec, spec_map, from_descriptions, chosen, n_boot, workers)
    if problem is not None:
        return usage(problem)
    try:
        items = load_labels([os.fspath(p) for p in labels], graded=graded)
        smap = load_spec_map(spec_map) if spec_map else None
        progress = None if json_output else (lambda msg: err.print(f"[dim]{msg}[/dim]"))
        report = agreement(items, grounder=grounder, spec=spec, spec_map=smap, from_descriptions=from_descriptions,
                           baselines=chosen, workers=workers, n_boot=n_boot, seed=seed, graded=graded is not None,
                           overlay_dir=overlay_dir, progress=progress,
                           model_options={"prompts": prompts} if prompts else None, nl_backend=nl_backend)
    except (LabelError, LtlRewardError, ValueError) as e:  # a SpecError prints its own located lines
        return usage(e)
    _emit(report, console, out, markdown, json_output, max_rows)
    return 1 if report.n_failed else 0


def _emit(report: Any, console: Any, out: str | None, markdown: str | None, json_output: bool, max_rows: int) -> None:
    """The report to its files, then as JSON or the tables on stdout."""
    data = report.to_json()
    _write_outputs(report, data, out, markdown)
    if json_output:
        print(json.dumps(data))
    else:
        _print_report(console, report, max_rows)


__all__ = ["run_agree"]
