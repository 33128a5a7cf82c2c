"""The `ltlreward score` command as plain functions; ltlreward/cli.py wires them into typer.

Human output: one rich table per video (reward, each constraint ✓/✗ with robustness, weight, violating frames
and entities) and a progress bar for batches. `--json`: one JSON object per line per video (schema in
ltlreward.result), nothing else on stdout. Exit codes: 0 all scored, 1 some video failed, 2 usage or spec
error (bad spec, unknown grounder, no videos match).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LtlRewardError


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
    fps = record.get("fps") or None
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
        )
    return table


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
    for key in ("masks_file", "overlay", "timeline"):
        if key in record:
            console.print(f"  [dim]{key.replace('_', ' ')}: {escape(display_path(record[key]))}[/]")
    if record.get("output_error"):
        console.print(f"  [yellow]could not write outputs: {escape(record['output_error'])}[/]")


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
) -> int:
    """Score VIDEO|DIR|GLOB inputs against `spec`; prints tables (or JSON lines) and returns the exit code."""
    from rich.console import Console
    from rich.markup import escape

    from .batch import VideoScorer, expand_inputs, score_videos
    from .reward import load_task_spec

    console = console or Console()
    err = err_console or Console(stderr=True)

    def usage(msg: str) -> int:
        err.print(f"[red]error:[/] {escape(msg)}")
        return 2

    if resume and out is None:
        return usage("--resume needs --out FILE (the results file to resume)")
    if workers < 1:
        return usage(f"--workers must be >= 1, got {workers}")
    if engine not in ("local", "ray"):
        return usage(f"--engine must be 'local' or 'ray', got {engine!r}")
    if engine == "ray":
        from .ray_engine import ray_available

        if not ray_available():
            return usage("--engine ray needs Ray Data: pip install 'ray[data]>=2.40,<2.64'")
    try:
        task = load_task_spec(Path(spec))
    except LtlRewardError as e:
        return usage(str(e))
    try:
        videos = expand_inputs(inputs)
    except ValueError as e:
        return usage(str(e))
    if not videos:
        return usage("no videos given")
    model_kwargs: dict[str, Any] = {
        "spec": task, "grounder": grounder, "sidecar": sidecar, "stride": stride, "target_fps": target_fps,
        "max_frames": max_frames, "size": size, "grounder_options": dict(grounder_options or {}),
    }
    from .ray_engine import is_model_backend  # light: does not import ray

    scorer = None
    if engine == "local" or not is_model_backend(grounder):
        try:  # built up front so a bad grounder name or option is a usage error, not N failed videos
            scorer = VideoScorer(model_kwargs, masks_dir, overlay_dir)
        except (LtlRewardError, ValueError) as e:
            return usage(str(e))

    progress = None
    if not json_out and len(videos) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        task_id = progress.add_task("scoring", total=len(videos))

    def on_result(record: dict[str, Any], skipped: bool) -> None:
        if json_out:
            console.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            console.file.flush()
        else:
            print_record(progress.console if progress else console, record, skipped)
        if progress is not None:
            progress.advance(task_id)

    def run():
        common = dict(out=out, resume=resume, retry_failed=retry_failed, masks_dir=masks_dir,
                      overlay_dir=overlay_dir, on_result=on_result)
        if engine == "ray":
            from .ray_engine import RayOptions, score_with_ray

            options = RayOptions(num_cpus=workers if workers > 1 else None)
            return score_with_ray(videos, model_kwargs, ray_address=ray_address, options=options, **common)
        return score_videos(videos, model_kwargs, workers=workers, scorer=scorer, **common)

    try:
        if progress is not None:
            with progress:
                summary = run()
        else:
            summary = run()
    except (OSError, ValueError, ImportError) as e:
        return usage(str(e))

    if not json_out and len(videos) > 1:
        recs = [*summary.skipped, *summary.scored]
        good = [r for r in recs if not r.get("error")]
        mean = sum(r["reward"] for r in good) / len(good) if good else float("nan")
        n_all = sum(1 for r in good if r.get("satisfied"))
        line = (f"{len(recs)} videos: {n_all} satisfy every constraint, {len(summary.failed)} failed, "
                f"mean reward {mean:.3f}")
        if summary.skipped:
            line += f" ({len(summary.skipped)} resumed from {escape(os.fspath(out))})"
        console.print(f"[bold]{line}[/]")
    return summary.exit_code


__all__ = ["display_path", "format_frames", "print_record", "result_table", "run_score"]
