"""The `ltlreward score` command as plain functions; ltlreward/cli.py wires them into typer.

Human output: one rich table per video (reward, each constraint ✓/✗ with robustness, weight, violating frames
and entities) and a progress bar for batches. `--json`: one JSON object per line per video (schema in
ltlreward.result), nothing else on stdout. `quiet`: only errors (failed videos, usage errors) on stderr.
Exit codes: 0 all scored, 1 some video failed, 2 usage or spec error (bad spec, unknown grounder, no videos
match), 130 interrupted by Ctrl-C and 143 by SIGTERM (the results file stays resumable).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import LtlRewardError, problem_text


def format_frames(frames: Sequence[int], limit: int = 6) -> str:
    """Compact frame list: consecutive runs as ranges ('3–7, 12'), at most `limit` runs then '…'."""
    fs = sorted({int(f) for f in frames})
    runs: list[tuple[int, int]] = []
    for f in fs:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append("…")
    return ", ".join(parts)


def display_path(video: str, short: bool = False) -> str:
    """`video` relative to the working directory when it lies below it; with `short`, else its file name."""
    try:
        return str(Path(video).relative_to(Path.cwd()))
    except ValueError:
        return Path(video).name if short and not video.startswith("<") else video


def result_table(record: dict[str, Any]) -> Any:
    """A rich Table for one video's JSON record (see ltlreward.result)."""
    from rich.markup import escape
    from rich.table import Table

    reward = record.get("reward")
    ok = bool(record.get("satisfied"))
    mark = "[green]✓[/]" if ok else "[red]✗[/]"
    head = f"{mark} [bold]{escape(display_path(str(record.get('video', '?')), short=True))}[/]"
    rtxt = "—" if reward is None else f"{reward:.3f}"
    caption = (f"{escape(str(record.get('reward_mode', '')))} · {record.get('n_frames', 0)} frames · "
               f"grounder {escape(str(record.get('grounder', '')))}")
    table = Table(title=f"{head}  reward [bold]{rtxt}[/]", title_justify="left", caption=caption,
                  caption_justify="left", expand=False)
    table.add_column("", width=1)
    table.add_column("constraint")
    table.add_column("robustness", justify="right")
    table.add_column("weight", justify="right")
    table.add_column("violating frames")
    table.add_column("entities")
    table.add_column("space")
    spaces = record.get("spaces") or {}
    clock = record.get("clock") or {}
    fps = clock.get("fps") or record.get("fps") or None
    if clock.get("source") == "sidecar":
        table.caption += f" · seconds at the sidecar's {clock.get('fps'):g} fps"
    for c in record.get("constraints", []):
        w = c.get("witness") or {}
        frames = w.get("frames", [])
        ftxt = format_frames(frames) if frames else ""
        if frames and fps:
            a, b = min(frames) / fps, max(frames) / fps
            ftxt += f" [dim]({a:.1f} s)[/]" if a == b else f" [dim]({a:.1f}–{b:.1f} s)[/]"
        rho = float(c["robustness"])
        colour = "green" if c["satisfied"] else "red"
        table.add_row(
            "[green]✓[/]" if c["satisfied"] else "[red]✗[/]",
            escape(c["name"]),
            f"[{colour}]{rho:+.3f}[/]",
            f"{float(c['weight']):g}",
            ftxt,
            escape(", ".join(w.get("entities", []))),
            escape(_constraint_spaces(c, spaces)),
        )
    return table


def _constraint_spaces(c: dict[str, Any], spaces: dict[str, str]) -> str:
    """The spaces the atoms of constraint `c` were judged in ('3d', '2.5d', 'image', 'signal'), joined by '+'
    (from its own `spaces`, else the record's)."""
    used = list((c.get("spaces") or spaces).values())
    return "+".join(dict.fromkeys(used))


def print_record(console: Any, record: dict[str, Any], skipped: bool) -> None:
    """Human output for one video: its table, or one line for a failure / a resumed skip."""
    from rich.markup import escape

    name = escape(display_path(str(record.get("video", "?"))))
    if record.get("error"):
        tag = " [dim](from the previous run)[/]" if skipped else ""
        console.print(f"[red]✗ {name}: failed[/]{tag}: {escape(str(record['error']))}")
        return
    if skipped:
        r = record.get("reward")
        console.print(f"[dim]↷ {name}: already scored (reward {r if r is None else format(r, '.3f')})[/]")
        return
    console.print(result_table(record))
    for w in record.get("warnings") or ():
        console.print(f"  [yellow]warning: {escape(w)}[/]")
    for key in ("masks_file", "overlay", "timeline"):
        if key in record:
            console.print(f"  [dim]{key.replace('_', ' ')}: {escape(display_path(record[key]))}[/]")
    if record.get("output_error"):
        console.print(f"  [yellow]could not write outputs: {escape(record['output_error'])}[/]")


def _usage_problem(resume: bool, out: str | None, workers: int, engine: str) -> str | None:
    """What is wrong with the option combination, before any file is read (None: nothing)."""
    if resume and out is None:
        return "--resume needs --out FILE (the results file to resume)"
    if workers < 1:
        return f"--workers must be >= 1, got {workers}"
    if engine not in ("local", "ray"):
        return f"--engine must be 'local' or 'ray', got {engine!r}"
    if engine == "ray":
        from .ray_engine import ray_available

        if not ray_available():
            return "--engine ray needs Ray Data: pip install 'ray[data]>=2.40,<2.64'"
    return None


def _progress(console: Any, n: int, json_out: bool) -> tuple[Any, Callable[[], None]]:
    """A transient progress bar for a human batch of `n` videos (None otherwise) and its advance function."""
    if json_out or n <= 1:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    task_id = progress.add_task("scoring", total=n)
    return progress, lambda: progress.advance(task_id)


def _printer(console: Any, err: Any, json_out: bool, quiet: bool, progress: Any,
             advance: Callable[[], None]) -> Callable[..., None]:
    """The `on_result(record, skipped)` callback: a JSON line, the human output of one video, or (quiet)
    only a failure's line on stderr."""
    def on_result(record: dict[str, Any], skipped: bool) -> None:
        if json_out:
            console.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            console.file.flush()
        elif quiet:
            if record.get("error"):
                print_record(err, record, skipped)
        else:
            print_record(progress.console if progress else console, record, skipped)
        advance()

    return on_result


def summary_line(summary: Any, out: str | None) -> str:
    """The closing line of a human batch: videos, how many satisfy everything, failures, mean reward (all of
    this run's fingerprint: a resume never mixes records made with another spec, grounder or options)."""
    from rich.markup import escape

    recs = [*summary.skipped, *summary.scored]
    good = [r for r in recs if not r.get("error")]
    mean = sum(r["reward"] for r in good) / len(good) if good else float("nan")
    n_all = sum(1 for r in good if r.get("satisfied"))
    line = (f"{len(recs)} videos: {n_all} satisfy every constraint, {len(summary.failed)} failed, "
            f"mean reward {mean:.3f}")
    notes = [f"{len(summary.skipped)} resumed from {escape(os.fspath(out or ''))}"] if summary.skipped else []
    notes += [rescored_note(summary)] if summary.rescored else []
    return line + (f" ({'; '.join(notes)})" if notes else "")


def rescored_note(summary: Any) -> str:
    """How many videos a resume scored again because their records were made with another fingerprint."""
    return (f"{summary.rescored} scored again: their records were made with another spec, grounder or "
            f"options")


_MODEL_OPTIONS = ("config", "models", "device", "allow_download", "cache_dir")  # the CLI's model-grounder flags


def _options_for(grounder: str, options: dict[str, Any], note: Callable[[str], None]) -> dict[str, Any]:
    """The grounder options a backend takes: a backend that loads no model (state, color) has no use for the
    model flags (--obs-cache, --device, …), which are dropped with a note when given a value."""
    from .grounding.registry import GROUNDERS, grounder_info

    if grounder == "auto" or grounder not in GROUNDERS:
        return options
    info = grounder_info(grounder)
    if info is None or info.roles:
        return options
    dropped = [k for k in options if k in _MODEL_OPTIONS]
    if any(options[k] not in ("", None, False) for k in dropped):
        note(f"note: grounder {grounder!r} loads no model: {', '.join(dropped)} ignored")
    return {k: v for k, v in options.items() if k not in _MODEL_OPTIONS}


def _prepare(inputs: Sequence[str], spec: str, model_opts: dict[str, Any], engine: str, masks_dir: str | None,
             overlay_dir: str | None) -> tuple[list[Path], dict[str, Any], Any]:
    """The videos, the RewardModel kwargs and (local engine or a CPU grounder) a scorer built up front, so a
    bad spec (checked against the grounder's hints, as `check --grounder` does), pattern, grounder name or
    option is a usage error (LtlRewardError / ValueError), not N failed videos."""
    from .batch import VideoScorer, expand_inputs
    from .ray_engine import is_model_backend  # light: does not import ray
    from .spec import load_spec

    task = load_spec(Path(spec), grounder=model_opts["grounder"])
    videos = expand_inputs(inputs)
    if not videos:
        raise ValueError("no videos given")
    model_kwargs = {"spec": task, **model_opts}
    use_local = engine == "local" or not is_model_backend(model_opts["grounder"])
    return videos, model_kwargs, VideoScorer(model_kwargs, masks_dir, overlay_dir) if use_local else None


def _score(engine: str, videos: list[Path], model_kwargs: dict[str, Any], workers: int, scorer: Any,
           ray_address: str | None, common: dict[str, Any]) -> Any:
    """The batch run on the chosen engine (the local process pool, or Ray with `workers` CPUs when local)."""
    if engine == "ray":
        from .ray_engine import RayOptions, score_with_ray

        options = RayOptions(num_cpus=workers if workers > 1 else None)
        return score_with_ray(videos, model_kwargs, ray_address=ray_address, options=options, **common)
    from .batch import score_videos

    return score_videos(videos, model_kwargs, workers=workers, scorer=scorer, **common)


def run_score(
    inputs: Sequence[str],
    spec: str,
    grounder: str = "auto",
    sidecar: str | None = None,
    json_out: bool = False,
    out: str | None = None,
    resume: bool = False,
    masks_dir: str | None = None,
    overlay_dir: str | None = None,
    workers: int = 1,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    console: Any = None,
    *,
    size: int | None = None,
    retry_failed: bool = False,
    err_console: Any = None,
    grounder_options: dict[str, Any] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    allow_2d: bool = False,
    prompts: str | None = None,
    quiet: bool = False,
) -> int:
    """Score VIDEO|DIR|GLOB inputs against `spec`; prints tables (or JSON lines) and returns the exit code.
    `allow_2d`: judge atoms with metre constants in the image (with a warning) when nothing metric is known."""
    from rich.console import Console

    console = console or Console()
    err = err_console or Console(stderr=True)

    def usage(e: BaseException | str) -> int:
        err.print(problem_text(e), markup=False, highlight=False)
        return 2

    if (problem := _usage_problem(resume, out, workers, engine)) is not None:
        return usage(problem)
    note = (lambda msg: None) if quiet else (lambda msg: err.print(msg, markup=False, highlight=False))
    options = _options_for(grounder, dict(grounder_options or {}), note)
    model_opts = {"grounder": grounder, "sidecar": sidecar, "prompts": prompts, "stride": stride,
                  "target_fps": target_fps, "max_frames": max_frames, "size": size, "grounder_options": options}
    if allow_2d:
        model_opts["predicate_options"] = {"allow_2d": True}
    try:
        videos, model_kwargs, scorer = _prepare(inputs, spec, model_opts, engine, masks_dir, overlay_dir)
    except (LtlRewardError, ValueError) as e:
        return usage(e)
    return _run(videos, model_kwargs, scorer, engine, workers, ray_address, console, err, json_out, quiet,
                dict(out=out, resume=resume, retry_failed=retry_failed, masks_dir=masks_dir, overlay_dir=overlay_dir))


def _run(videos: list[Path], model_kwargs: dict[str, Any], scorer: Any, engine: str, workers: int,
         ray_address: str | None, console: Any, err: Any, json_out: bool, quiet: bool,
         common: dict[str, Any]) -> int:
    """The batch with its output (progress, records, summary) and exit code; an interrupt says how to resume."""
    progress, advance = _progress(console, len(videos), json_out or quiet)
    scored = [0]

    def counted() -> None:
        scored[0] += 1
        advance()

    common["on_result"] = _printer(console, err, json_out, quiet, progress, counted)
    out = common["out"]
    try:
        with progress if progress is not None else contextlib.nullcontext():
            summary = _score(engine, videos, model_kwargs, workers, scorer, ray_address, common)
    except (OSError, ValueError, ImportError) as e:
        err.print(problem_text(e), markup=False, highlight=False)
        return 2
    except KeyboardInterrupt as e:
        how = "terminated" if e.args == ("SIGTERM",) else "interrupted"
        kept = (f"{scored[0]} video(s) done, recorded in {out}; run again with --resume to score the rest"
                if out else f"{scored[0]} video(s) done (give --out FILE to keep results and --resume later)")
        err.print(f"{how}: {kept}", markup=False, highlight=False)
        return 143 if how == "terminated" else 130
    if summary.rescored and (json_out or len(videos) == 1) and not quiet:
        err.print(f"note: {rescored_note(summary)}", markup=False, highlight=False)
    if not (json_out or quiet) and len(videos) > 1:
        console.print(f"[bold]{summary_line(summary, out)}[/]")
    return summary.exit_code


__all__ = ["display_path", "format_frames", "print_record", "problem_text", "result_table", "run_score",
           "summary_line"]
