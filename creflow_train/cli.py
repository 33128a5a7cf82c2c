"""`creflow` command line: the CPU ablation of CreFlow against DiffusionNFT on the toy world."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CreFlow post-training for flow video models.")

DEFAULT_OUT = Path("benchmarks/creflow_toy")  # runs go to <this>/quick or <this>/run unless --out says otherwise
SHIPPED_CACHE = Path(__file__).resolve().parents[1] / "benchmarks" / "creflow_toy" / "_work"  # source checkout


@app.callback()
def _root() -> None:
    """CreFlow: credit-aware NFT + corrective reflow for flow-matching video models."""


@app.command()
def toy(
    quick: Annotated[bool, typer.Option(
        "--quick", help="One seed, 12 steps (about a minute with the shipped checkpoint).",
    )] = False,
    seeds: Annotated[int, typer.Option(help="Number of seeds (full run).", min=1)] = 3,
    steps: Annotated[int | None, typer.Option(help="Post-training steps per arm (overrides the preset).")] = None,
    arms: Annotated[str, typer.Option(help="Comma-separated arms.")] = "nft,credit-nft,reflow,creflow",
    out: Annotated[Path | None, typer.Option(
        help="Output directory (results.json, curves.csv, PNGs); default benchmarks/creflow_toy/quick or …/run.",
    )] = None,
    cache: Annotated[Path | None, typer.Option(
        help="Directory of the pretrained checkpoint, reused when the world and pretraining config match; "
             "default the checkout's benchmarks/creflow_toy/_work, else OUT/_work.",
    )] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate of every arm (default 1e-4).")] = None,
    anchor_outside: Annotated[float | None, typer.Option(
        help="Credit-aware arms: weight of the anchor to the reference outside the masks (default 1; 0 = off).",
    )] = None,
    kl_weight: Annotated[float | None, typer.Option(help="KL anchor weight of every arm (default 1e-4).")] = None,
    mask_floor: Annotated[float, typer.Option(help="Weight let through outside violation masks (0-1).")] = 0.0,
    mask_norm: Annotated[str, typer.Option(help="Credit-aware NFT normalisation: mask (ΣM) or numel.")] = "mask",
    threads: Annotated[int, typer.Option(help="torch CPU threads (1 is fastest on a busy machine).")] = 0,
    jobs: Annotated[int, typer.Option(help="Parallel processes, one (arm, seed) run each (1 thread each).",
                                      min=1)] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON before the four lines.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Narrate training.")] = False,
) -> None:
    """Run the four-arm ablation (nft, credit-nft, reflow, creflow) and print each arm's final success rate."""
    import torch

    from .toy.bench import AblationConfig, final_lines, quick_config, run_ablation
    from .toy.train import ARMS

    if threads > 0:
        torch.set_num_threads(threads)
    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    unknown = [a for a in chosen if a not in ARMS]
    if unknown:
        typer.echo(f"error: unknown arm(s) {', '.join(unknown)}; expected: {', '.join(ARMS)}", err=True)
        raise typer.Exit(2)
    cfg = quick_config() if quick else AblationConfig(seeds=tuple(range(seeds)))
    if steps is not None:
        cfg = replace(cfg, rl=replace(cfg.rl, steps=steps))
    if not 0.0 <= mask_floor <= 1.0:
        typer.echo(f"error: --mask-floor must be in [0, 1], got {mask_floor}", err=True)
        raise typer.Exit(2)
    if mask_norm not in ("mask", "numel"):
        typer.echo(f"error: --mask-norm must be one of: mask, numel (got {mask_norm!r})", err=True)
        raise typer.Exit(2)
    over = {k: v for k, v in (("lr", lr), ("anchor_outside", anchor_outside), ("kl_weight", kl_weight))
            if v is not None}
    bad = [k for k, v in over.items() if v < 0 or (k == "lr" and v == 0)]
    if bad:
        typer.echo(f"error: --{bad[0].replace('_', '-')} must be {'> 0' if bad[0] == 'lr' else '>= 0'}", err=True)
        raise typer.Exit(2)
    cfg = replace(cfg, rl=replace(cfg.rl, mask_floor=mask_floor, mask_norm=mask_norm, **over))
    cfg = replace(cfg, arms=chosen)
    log = (lambda msg: typer.echo(msg, err=True)) if verbose else None
    out = out or DEFAULT_OUT / ("quick" if quick else "run")
    cache = cache or (SHIPPED_CACHE if SHIPPED_CACHE.is_dir() else None)
    summary = run_ablation(cfg, out, log, jobs=jobs, cache_dir=cache)
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
    results = trainer.run(resume=not no_resume, log=None if quiet else (lambda msg: typer.echo(msg, err=True)))
    skipped = sum(r.skipped is not None for r in results)
    shutdown()
    if getattr(trainer, "rank", 0) != 0:
        return
    typer.echo(f"trained to step {trainer.step} ({len(results)} steps this run, {skipped} skipped); "
               f"log {trainer.log_path}; checkpoint {trainer.latest_checkpoint()}")


def main() -> None:
    """Console-script entry point (`creflow = "creflow_train.cli:main"`)."""
    app()


if __name__ == "__main__":
    main()
