"""`ltlreward` command line: thin typer commands over the library; errors become one located message.

Exit codes: 0 ok, 1 scoring failures, 2 usage or spec errors, 130 interrupted (Ctrl-C), 143 terminated.
`--json` follows one rule: JSON Lines — one object per line, one line per item (video, trace, spec file,
predicate, grounder) — for commands that list items; one JSON object for commands with a single result
(explain, compile, agree). Nothing else is written to stdout then.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="ltlreward",
    help="LTL constraint rewards with violation traces for videos and robot rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"ltlreward {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """LTL constraint rewards with violation traces for videos and robot rollouts."""


def _json_lines(rows) -> None:
    """The --json form of a list of items: one compact JSON object per line."""
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape

    from .errors import problem_text

    _err_console().print(f"[red]{escape(problem_text(message))}[/red]")
    return typer.Exit(code)


def _load(path: Path, grounder: str | None = None):
    from .spec import load_spec

    return load_spec(path, grounder=grounder)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (see `ltlreward --help`).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (and --json output).")]
ModelConfigOpt = Annotated[Path | None, typer.Option(help="ltlreward.toml with model paths (model grounders).")]
ModelOpt = Annotated[
    list[str] | None, typer.Option("--model", help="ROLE=PATH_OR_HUB_ID, e.g. sam2=/models/sam2 (repeatable).")
]
DeviceOpt = Annotated[str | None, typer.Option(help="cuda, cpu or auto (model grounders).")]
AllowDownloadOpt = Annotated[bool, typer.Option(help="Let model grounders download missing weights.")]
ObsCacheOpt = Annotated[str | None, typer.Option(help="Observations cache directory of model grounders ('' turns "
                                                      "it off; state and color have nothing to cache).")]
PromptsOpt = Annotated[Path | None, typer.Option(
    help="Entity prompts for every video: a prompts file, or a directory of <stem>.prompts.json (default: "
         "<stem>.prompts.json beside each video).")]


def _grounder_options(config, models, device, allow_download, cache) -> dict:
    """Options for model grounders, only those the user set (ltlreward.score_cli passes each grounder the
    ones it takes)."""
    opts: dict = {}
    if config is not None:
        opts["config"] = str(config)
    if models:
        from .errors import GroundingError
        from .grounding.backends.models.config import parse_model_flags

        try:
            opts["models"] = parse_model_flags(models)
        except GroundingError as exc:
            raise _fail(str(exc)) from None
    if device:
        opts["device"] = device
    if allow_download:
        opts["allow_download"] = True
    if cache is not None:
        opts["cache_dir"] = str(cache)
    return opts


def _check_entry(p: Path, grounder: str | None) -> tuple[dict, str | None]:
    """One spec file's --json entry and, when it has errors, their rendering."""
    from .errors import SpecError, spec_errors

    try:
        spec = _load(p, grounder or "auto")
    except SpecError as exc:
        errs = [{"message": e.message, "line": e.line, "column": e.column} for e in spec_errors(exc)]
        first = errs[0]
        entry = {"spec": str(p), "ok": False, "error": first["message"], "line": first["line"],
                 "column": first["column"], "errors": errs}
        return entry, exc.render()
    return {"spec": str(p), "ok": True, "constraints": len(spec.constraints), "entities": len(spec.entities),
            "reward": spec.reward}, None


@app.command()
def check(
    specs: Annotated[list[Path], typer.Argument(help="Spec files (.ltl) to parse and validate.")],
    grounder: Annotated[str | None, typer.Option(help="Also check entity hints and atoms against what this "
                                                      "grounder reads and answers.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Parse and validate spec files; report every error with file:line:col (option ranges and the hint
    values of every grounder that reads them; with --grounder, also what that grounder cannot answer)."""
    from rich.markup import escape

    if grounder is not None:
        from .errors import GroundingError
        from .grounding.registry import GROUNDERS

        try:
            grounder = GROUNDERS.canonical(grounder)
        except GroundingError as exc:
            raise _fail(str(exc)) from None
    console, failures, report = _console(), 0, []
    for p in specs:
        entry, errors = _check_entry(p, grounder)
        report.append(entry)
        failures += errors is not None
        if errors is not None and not as_json:
            _err_console().print(errors, markup=False, highlight=False)
        elif not (as_json or quiet):
            n = entry["entities"]
            console.print(f"[green]ok[/green] {escape(str(p))}: {entry['constraints']} constraint(s), {n} entit"
                          f"{'y' if n == 1 else 'ies'}, reward {entry['reward']}")
    if as_json:
        _json_lines(report)
    if failures:
        raise typer.Exit(2)


_SPACE_WORDS = {"metric": "metres (3-D positions, or 2.5-D from masks + camera)", "image": "the image (pixels)",
                "auto": "3-D, else 2.5-D, else the image (bare numbers)", "signal": "a signal (no geometry)"}


@app.command()
def explain(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec file (.ltl).")],
    as_json: JsonOpt = False,
) -> None:
    """Read each constraint of a spec in plain English."""
    from rich.markup import escape

    from .errors import SpecError
    from .spec import atoms_of, explain_constraint, format_formula
    from .spec.walk import requested_space

    try:
        spec = _load(spec_path)
    except SpecError as exc:
        raise _fail(exc.render()) from None
    rows = [
        {
            "name": c.name,
            "weight": c.weight,
            "description": c.description,
            "formula": format_formula(c.formula),
            "english": explain_constraint(c, spec),
            "spaces": {a.canonical: requested_space(a) for a in atoms_of(c.formula)},
        }
        for c in spec.constraints
    ]
    if as_json:
        print(json.dumps({"task": spec.task, "reward": spec.reward, "constraints": rows}, indent=2))
        return
    console = _console()
    if spec.task:
        console.print(f"[bold]{escape(spec.task)}[/bold]")
    for e in spec.entities:
        hints = " ".join(f"{k}={v}" for k, v in e.hints)
        console.print(f"  entity [cyan]{e.name}[/cyan] = {escape(repr(e.prompt))} ({e.kind}) {escape(hints)}")
    for r in rows:
        w = f" [dim]weight {r['weight']:g}[/dim]" if r["weight"] != 1 else ""
        console.print(f"\n[bold cyan]{r['name']}[/bold cyan]{w}  {escape(r['description'])}")
        console.print(f"  [dim]{escape(r['formula'])}[/dim]")
        console.print(f"  {escape(r['english'])}.")
        judged = "; ".join(f"{a}: {_SPACE_WORDS[sp]}" for a, sp in r["spaces"].items())
        console.print(f"  [dim]judged in: {escape(judged)}[/dim]")
    console.print(f"\nreward: {spec.reward}")


@app.command("monitor")
def monitor_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Spec file (.ltl).")],
    signals: Annotated[Path, typer.Option("--signals", help="Atom signals: .npz, .csv or .json.")],
    fps: Annotated[float | None, typer.Option(help="Frames per second (needed for intervals in seconds).")] = None,
    semantics: Annotated[str, typer.Option(help="robustness or boolean.")] = "robustness",
    as_json: JsonOpt = False,
) -> None:
    """Monitor a spec over signals you computed yourself (no video): verdicts, robustness, witnesses."""
    from .errors import MonitorError, SpecError
    from .ltlf import load_signals, monitor

    try:
        spec = _load(spec_path)
        sig, lengths, file_fps = load_signals(signals)
        res = monitor(spec, sig, fps=fps if fps is not None else file_fps, semantics=semantics, lengths=lengths)
    except (SpecError, MonitorError) as exc:
        raise _fail(exc.render() if isinstance(exc, SpecError) else str(exc)) from None
    out = []
    for b in range(res.batch_size):
        cons = []
        for c in res.constraints:
            w = c.witness(b)
            cons.append({
                "name": c.name,
                "satisfied": bool(c.satisfied[b]),
                "robustness": round(float(c.robustness[b]), 6),
                "weight": c.weight,
                "witness": w.to_dict() if w else None,
            })
        out.append({"trace": b, "length": int(res.lengths[b]), "satisfied": all(x["satisfied"] for x in cons),
                    "constraints": cons})
    if as_json:
        _json_lines(out)
        return
    _print_monitor_tables(out, spec_path)


def _print_monitor_tables(out: list[dict], spec_path: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    for tr in out:
        title = f"{spec_path.name} · trace {tr['trace']} · {tr['length']} frames"
        table = Table(title=title, title_justify="left")
        table.add_column("constraint")
        table.add_column("", justify="center")
        table.add_column("robustness", justify="right")
        table.add_column("witness (atom@frame)")
        for c in tr["constraints"]:
            mark = "[green]✓[/green]" if c["satisfied"] else "[red]✗[/red]"
            wit = ""
            if c["witness"]:
                atoms = [f"{a['atom']}@{a['frame']}" for a in c["witness"]["atoms"]]
                wit = ", ".join(atoms[:6]) + (f", … (+{len(atoms) - 6})" if len(atoms) > 6 else "")
            table.add_row(c["name"], mark, f"{c['robustness']:+.3f}", escape(wit))
        console.print(table)
        verdict = "[green]all constraints hold[/green]" if tr["satisfied"] else "[red]violated[/red]"
        console.print(verdict)


@app.command()
def score(
    inputs: Annotated[list[str], typer.Argument(metavar="VIDEO|DIR|GLOB...", help="Videos, directories or globs.")],
    spec: Annotated[Path, typer.Option("--spec", help="Task spec (.ltl).")],
    grounder: Annotated[
        str, typer.Option(help="auto (sidecar → state, prompts → track, else color), state, track, color, …")
    ] = "auto",
    sidecar: Annotated[
        Path | None, typer.Option(help="Sidecar for every video (default: <stem>.sidecar.json beside each).")
    ] = None,
    prompts: PromptsOpt = None,
    as_json: JsonOpt = False,
    out: Annotated[Path | None, typer.Option("--out", help="Append one JSON line per video as each ends.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip videos already in --out.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="With --resume, score failed videos again.")] = False,
    masks: Annotated[Path | None, typer.Option("--masks", help="Write <stem>.npz violation masks here.")] = None,
    overlay: Annotated[
        Path | None, typer.Option("--overlay", help="Write <stem>.mp4 overlays and <stem>.png timelines here.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    stride: Annotated[int, typer.Option(help="Keep every n-th frame.")] = 1,
    target_fps: Annotated[float | None, typer.Option(help="Resample to about this frame rate.")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Keep at most this many frames.")] = None,
    size: Annotated[int | None, typer.Option(help="Resize: shortest side in pixels.")] = None,
    model_config: ModelConfigOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    allow_download: AllowDownloadOpt = False,
    obs_cache: ObsCacheOpt = None,
    engine: Annotated[str, typer.Option(help="local (process pool) or ray (Ray Data pipeline).")] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else local).")
    ] = None,
    allow_2d: Annotated[bool, typer.Option("--allow-2d", help="Judge atoms with metre constants in the image "
                                           "(with a warning) when neither positions nor a camera exist.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Score videos against a spec: reward, per-constraint verdicts, violation frames."""
    from .score_cli import run_score

    def s(p: Path | None) -> str | None:
        return None if p is None else str(p)

    options = _grounder_options(model_config, model, device, allow_download, obs_cache)
    code = run_score(
        inputs, str(spec), grounder, s(sidecar), as_json, s(out), resume, s(masks), s(overlay), workers, stride,
        target_fps, max_frames, _console(), size=size, retry_failed=retry_failed, err_console=_err_console(),
        grounder_options=options, engine=engine, ray_address=ray_address, allow_2d=allow_2d, prompts=s(prompts),
        quiet=quiet,
    )
    raise typer.Exit(code)


@app.command()
def agree(
    labels: Annotated[list[Path], typer.Option("--labels", help="Labels (video, label[, rater]).")],
    spec: Annotated[Path | None, typer.Option("--spec", help="One spec for every video.")] = None,
    spec_map: Annotated[Path | None, typer.Option("--spec-map", help="JSON map task -> spec file.")] = None,
    from_descriptions: Annotated[bool, typer.Option(
        help="Compile each video's task description (ltlreward.nl), entities named as its sidecar does.")] = False,
    nl_backend: Annotated[str, typer.Option(help="English backend for descriptions: rules, llm, auto.")] = "rules",
    grounder: Annotated[str, typer.Option(help="auto, state, track, color or a model grounder.")] = "auto",
    prompts: PromptsOpt = None,
    baseline: Annotated[
        list[str] | None, typer.Option("--baseline", help="end_state, last_frame, vlm (repeatable; default all).")
    ] = None,
    no_baselines: Annotated[bool, typer.Option(help="Skip every baseline.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    graded: Annotated[str | None, typer.Option(help="Label column with graded scores (Spearman).")] = None,
    overlay: Annotated[Path | None, typer.Option("--overlay", help="Overlays of the disagreements here.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the full report (JSON) here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the report tables (Markdown) here.")] = None,
    max_rows: Annotated[int, typer.Option(help="Disagreements listed on screen.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Agreement of rewards with simulator or human labels: accuracy, κ, MCC, AUROC… with bootstrap CIs."""
    from .agree_cli import run_agree

    def s(p: Path | None) -> str | None:
        return None if p is None else str(p)

    code = run_agree(
        [str(p) for p in labels], spec=s(spec), spec_map=s(spec_map), from_descriptions=from_descriptions,
        grounder=grounder, baselines=[] if no_baselines else baseline, workers=workers, n_boot=n_boot, seed=seed,
        graded=graded, overlay_dir=s(overlay), out=s(out), markdown=s(markdown), json_output=as_json,
        max_rows=max_rows, console=_console(), err_console=_err_console(), prompts=s(prompts), nl_backend=nl_backend,
    )
    raise typer.Exit(code)


@app.command()
def calibrate(
    labels: Annotated[Path, typer.Argument(help="JSONL of labelled frames: video, frame, label, atom|predicate.")],
    method: Annotated[str, typer.Option(help="platt or isotonic.")] = "platt",
    out: Annotated[Path, typer.Option("--out", help="Where to store the calibration maps.")] = Path("calibration.json"),
    min_per_key: Annotated[int, typer.Option(help="Labels needed to fit a per-question map.")] = 20,
    size: Annotated[int | None, typer.Option(help="Resize frames: shortest side in pixels.")] = None,
    model_config: ModelConfigOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    allow_download: AllowDownloadOpt = False,
) -> None:
    """Fit Platt or isotonic maps from labelled frames for the vlm grounder's yes/no probabilities."""
    from .errors import LtlRewardError

    try:
        from .grounding import get_grounder
        from .grounding.backends.models.calibrate import calibrate as fit

        options = _grounder_options(model_config, model, device, allow_download, None)
        g = get_grounder("vlm", cache_dir="", **options)
        cal = fit(labels, g, method=method, out=out, min_per_key=min_per_key,
                  video_options={"size": size} if size else None)
    except LtlRewardError as exc:
        raise _fail(str(exc)) from None
    _console().print_json(data=cal.report)
    _console().print(f'stored {out}; add  [vlm] calibration = "{out}"  to ltlreward.toml to use it')


@app.command("compile")
def compile_(
    text: Annotated[str, typer.Argument(help='English task description, e.g. "put the red block on the plate".')],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write the spec (.ltl) here.")] = None,
    backend: Annotated[str, typer.Option(
        help="rules (offline, deterministic), llm (packaged small model, constrained) or auto (rules, else llm)."
    )] = "rules",
    model: Annotated[str | None, typer.Option(
        help="For llm / auto: a packaged model (smollm2, gemma3-270m) or a .gguf path; default smollm2.")] = None,
    attempts: Annotated[int, typer.Option(help="LLM tries before giving up.")] = 3,
    entities: Annotated[Path | None, typer.Option(
        help="A sidecar or prompts file: name the compiled entities as it does.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compile an English task description into a spec; print it with its English explanation."""
    from .errors import LtlRewardError
    from .nl import BACKENDS, BackendError, compile_command_output, compile_text

    try:
        name = BACKENDS.canonical(backend)
    except BackendError as exc:  # lists the registered backends
        raise _fail(str(exc)) from None
    opts = {"model": model, "max_attempts": attempts} if BACKENDS.meta(name).options else {}
    try:
        result = compile_text(text, backend=name, entities=entities, **opts)
    except LtlRewardError as exc:
        raise _fail(str(exc)) from None
    if out is not None:
        out.write_text(result.text)
    if as_json:
        print(compile_command_output(result, json=True))
    else:
        _console().print(compile_command_output(result), markup=False)


@app.command()
def predicates(
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="The README's semantics table.")] = False,
) -> None:
    """List the predicate library: names, parameters, options and meaning."""
    from rich.table import Table

    from .predicates import PREDICATES, predicate_table_markdown

    if as_json:
        _json_lines(p.to_json() for p in PREDICATES.values())
        return
    if markdown:
        print(predicate_table_markdown(), end="")
        return
    table = Table(title="predicate library")
    table.add_column("signature")
    table.add_column("kind")
    table.add_column("meaning")
    for p in PREDICATES.values():
        table.add_row(p.signature(), "numeric" if p.numeric else "predicate", p.doc)
    _console().print(table)


@app.command()
def grounders(as_json: JsonOpt = False) -> None:
    """List the registered grounders: what each fills, the extra and models it needs, whether it answers
    quoted atoms (nothing is imported or loaded)."""
    from rich.table import Table

    from .grounding.registry import describe_grounders

    rows = describe_grounders()
    if as_json:
        _json_lines(rows)
        return
    table = Table(title="grounders")
    for col in ("name", "provides", "needs", "quoted atoms", "what it does"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        needs = "; ".join([*([f"pip [{r['extra']}]"] if r["extra"] else []),
                           *([f"weights: {', '.join(r['models'])}"] if r["models"] else [])]) or "core"
        table.add_row(name, ", ".join(r["provides"]), needs, "yes" if r["quoted"] else "", r["doc"])
    _console().print(table, markup=False)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C (workers stopped, the results file closed), then exit 143."""
    raise KeyboardInterrupt("SIGTERM")


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except KeyboardInterrupt as e:  # outside a command that handles it itself (score)
        sys.exit(143 if e.args == ("SIGTERM",) else 130)


if __name__ == "__main__":  # pragma: no cover
    main()
