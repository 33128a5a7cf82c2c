"""`creflow` command line: the CPU ablation of CreFlow against DiffusionNFT on the toy world."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CreFlow post-training for flow video models.")

DEFAULT_OUT = Path("out/creflow_toy")  # git-ignored: runs go to <this>/quick or <this>/run unless --out says otherwise
SHIPPED_CACHE = Path(__file__).resolve().parents[1] / "benchmarks" / "creflow_toy" / "_work"  # read, never written


@app.callback()
def _root() -> None:
    """CreFlow: credit-aware NFT + corrective reflow for flow-matching video models."""


@app.command()
def toy(
    quick: Annotated[bool, typer.Option(
        "--quick", help="One seed, 12 steps (about 2½ minutes on one core with the shipped checkpoint).",
    )] = False,
    seeds: Annotated[int, typer.Option(help="Number of seeds (full run).", min=1)] = 3,
    first_seed: Annotated[int, typer.Option(help="Seeds are first_seed … first_seed + seeds − 1.", min=0)] = 0,
    steps: Annotated[int | None, typer.Option(help="Post-training steps per arm (overrides the preset).")] = None,
    arms: Annotated[str, typer.Option(help="Comma-separated arms (nft, credit-nft, reflow, creflow, nft-anchor, "
                                           "nft-kl).")] = "nft,credit-nft,reflow,creflow",
    out: Annotated[Path | None, typer.Option(
        help="Output directory (results.json, curves.csv, PNGs); default out/creflow_toy/quick or …/run.",
    )] = None,
    cache: Annotated[Path | None, typer.Option(
        help="Directory of the pretrained checkpoint, reused when the world and pretraining config match (and "
             "written there otherwise); default: read the checkout's shipped one, write OUT/_work.",
    )] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate of every arm (default 1e-4).")] = None,
    anchor_outside: Annotated[float | None, typer.Option(
        help="Weight of the outside anchor of the anchored arms (and nft-kl's KL); 0 = off.",
    )] = None,
    kl_weight: Annotated[float | None, typer.Option(help="KL anchor weight of every arm (default 1e-4).")] = None,
    mask_floor: Annotated[float | None, typer.Option(help="Weight let through outside violation masks.")] = None,
    mask_norm: Annotated[str | None, typer.Option(help="Credit-aware NFT normalisation: mask or numel.")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads inside each run.", min=1)] = 1,
    jobs: Annotated[int, typer.Option(help="Parallel processes, one (arm, seed) run each.", min=1)] = 1,
    timing_reps: Annotated[int, typer.Option(help="Interleaved steps per arm for the overhead figure (0 = skip).",
                                             min=0)] = 6,
    portable_math: Annotated[bool, typer.Option(
        help="Pin the CPU kernels (ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=AVX2, MKL_CBWR=COMPATIBLE) so "
             "another x86 machine computes the same floats; --native-math uses the fastest ones.",
    )] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON before the arm lines.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Narrate training.")] = False,
) -> None:
    """Run the ablation arms (default nft, credit-nft, reflow, creflow) and print each arm's final success rate."""
    _pin_math(portable_math)
    from .toy.bench import final_lines, run_ablation  # after _pin_math: this imports torch

    loss_over = {"anchor_outside": anchor_outside, "kl_weight": kl_weight, "mask_floor": mask_floor,
                 "mask_norm": mask_norm}
    cfg = _toy_config(quick, range(first_seed, first_seed + seeds), steps, arms, lr, threads, loss_over)
    cfg = replace(cfg, timing_reps=timing_reps if not quick else min(timing_reps, cfg.timing_reps))
    log = (lambda msg: typer.echo(msg, err=True)) if verbose else None
    out = out or DEFAULT_OUT / ("quick" if quick else "run")
    shipped = SHIPPED_CACHE if cache is None and SHIPPED_CACHE.is_dir() else None
    summary = run_ablation(cfg, out, log, jobs=jobs, cache_dir=cache, shipped_cache=shipped)
    if as_json:
        typer.echo(json.dumps({
            "target_success": summary.target,
            "pretrained_success": summary.pretrained_success,
            "creflow_overhead_vs_nft": summary.overhead,
            "arms": {k: {"final_success": v.final_success, "final_drift": v.final_drift,
                         "steps_to_target": v.steps_to_target, "step_seconds": v.step_seconds}
                     for k, v in summary.arms.items()},
        }))
    for line in final_lines(summary):
        typer.echo(line)


def _pin_math(portable: bool) -> None:
    """Pin the CPU kernels before torch starts (see toy/mathenv.py); warn when torch already chose them
    (results.json records the kernels actually used either way)."""
    from .toy.mathenv import PORTABLE_MATH, pin_math

    if portable and not pin_math():
        typer.echo("warning: torch was imported before the CPU kernels could be pinned; for portable floats set "
                   + " ".join(f"{k}={v}" for k, v in PORTABLE_MATH.items()) + " in the environment", err=True)


def _toy_config(quick: bool, seeds: range, steps: int | None, arms: str, lr: float | None, threads: int,
                loss_over: dict) -> Any:
    """The AblationConfig of `creflow toy`'s options; a bad value raises typer.BadParameter (exit code 2)."""
    from .toy.bench import AblationConfig, quick_config
    from .toy.train import ARMS

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    unknown = [a for a in chosen if a not in ARMS]
    if unknown:
        raise typer.BadParameter(f"unknown arm(s) {', '.join(unknown)}; expected: {', '.join(ARMS)}",
                                 param_hint="--arms")
    if lr is not None and not lr > 0:
        raise typer.BadParameter("must be > 0", param_hint="--lr")
    cfg = quick_config() if quick else AblationConfig(seeds=tuple(seeds))
    try:
        loss = replace(cfg.rl.loss, **{k: v for k, v in loss_over.items() if v is not None})
    except ValueError as e:
        key = str(e).split(":")[0]
        raise typer.BadParameter(str(e), param_hint="--" + key.replace("_", "-")) from None
    rl = replace(cfg.rl, loss=loss, threads=threads, **({"lr": lr} if lr is not None else {}),
                 **({"steps": steps} if steps is not None else {}))
    return replace(cfg, rl=rl, arms=chosen)


@app.command("tiny-model")
def tiny_model(
    family: Annotated[str, typer.Argument(help="Layout: wan, ltx, wan-ti2v (Wan2.2-TI2V), wan-i2v (Wan2.1-I2V) or "
                                               "wan-moe (Wan2.2-A14B's two experts).")],
    out: Annotated[Path, typer.Argument(help="Directory to write (diffusers layout).")],
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Save a tiny random-initialised Wan or LTX-Video checkpoint for offline smoke runs of `creflow train`."""
    from .testing import TINY_BUILDERS

    if family not in TINY_BUILDERS:
        raise typer.BadParameter(f"expected one of: {', '.join(TINY_BUILDERS)}", param_hint="FAMILY")
    typer.echo(TINY_BUILDERS[family](out, seed=seed))


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML training config (see examples/creflow_tiny.yaml).")],
    steps: Annotated[int | None, typer.Option(help="Override the config's total step count.", min=1)] = None,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Ignore checkpoints in output_dir.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not narrate steps.")] = False,
) -> None:
    """Post-train a diffusers Wan or LTX-Video model's LoRA with CreFlow/NFT against an ltlreward spec (resumes)."""
    from .config import ConfigError, load_config
    from .distributed import make_trainer, shutdown

    try:
        cfg = load_config(config)
        if steps is not None:
            cfg.steps = steps
    except (ConfigError, OSError) as e:
        typer.echo(f"error: {config}: {e}", err=True)
        raise typer.Exit(2) from e
    try:
        trainer = make_trainer(cfg)  # a DistributedTrainer under `accelerate launch` / torchrun (WORLD_SIZE > 1)
    except ConfigError as e:
        typer.echo(f"error: {config}: {e}", err=True)
        raise typer.Exit(2) from e
    from .errors import CheckpointError

    try:
        results = trainer.run(resume=not no_resume, log=None if quiet else (lambda msg: typer.echo(msg, err=True)),
                              warn=lambda msg: typer.echo(f"warning: {msg}", err=True))
    except CheckpointError as e:  # (a zero-byte file used to surface as click's bare "Aborted.")
        typer.echo(f"error: {config}: {e}", err=True)
        raise typer.Exit(1) from e
    skipped = sum(r.skipped is not None for r in results)
    shutdown()
    if getattr(trainer, "rank", 0) != 0:
        return
    typer.echo(f"trained to step {trainer.step} ({len(results)} steps this run, {skipped} skipped); "
               f"log {trainer.log_path}; checkpoint {trainer.latest_checkpoint()}")


@app.command()
def sample(
    config: Annotated[Path, typer.Argument(help="YAML training config (the model, prompts, images, K, sampling).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for p<prompt>_k<rollout>.mp4 and rewards.jsonl.")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="A creflow train checkpoint (.pt) whose LoRA θ samples; default: the base model (before training).",
    )] = None,
    seed: Annotated[int | None, typer.Option(help="Noise seed (default: the config's seed).")] = None,
    crf: Annotated[int, typer.Option(help="H.264 quality: 0 = lossless, 18-23 = small files.", min=0, max=51)] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not narrate prompts.")] = False,
) -> None:
    """Sample each prompt's K rollouts (before or after training) as mp4s; rewards and verdicts in rewards.jsonl."""
    from .config import ConfigError, load_config
    from .sample import REWARDS_FILE, sample_to_dir

    if checkpoint is not None and not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint} is not a file", param_hint="--checkpoint")
    try:
        cfg = load_config(config)
        records = sample_to_dir(cfg, out, checkpoint=checkpoint, seed=seed, crf=crf,
                                log=None if quiet else (lambda msg: typer.echo(msg, err=True)))
    except (ConfigError, OSError) as e:
        typer.echo(f"error: {config}: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote {len(records)} videos and {out / REWARDS_FILE}")


def main() -> None:
    """Console-script entry point (`creflow = "creflow_train.cli:main"`)."""
    app()


if __name__ == "__main__":
    main()
