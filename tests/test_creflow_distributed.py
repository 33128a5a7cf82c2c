"""Two CPU ranks (gloo) of `DistributedTrainer` against one process with the same global batch.

Two steps of CreFlow on the tiny random Wan model: afterwards both ranks hold identical LoRA tensors and
they equal a single-process run's (rollout noise, advantages, loss scaling and gradient averaging agree).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from test_creflow_trainer import write_config  # noqa: E402  (the trainer tests' config helper)

U32 = 2.0**-24
ADAM_EPS = 1e-3  # a test-sized AdamW ε: the update lr·m̂/(√v̂ + ε) then moves at most 2·lr/ε per unit of gradient
REORDER = 12 * 8 * U32  # float32 reordering bound of a gradient entry, relative to the largest (see the micro-batch
# test in test_creflow_trainer.py): ranks sum the same row contributions in another order


def lora_tolerance(logs: list[dict], lr: float) -> float:
    """Bound on a LoRA entry's difference after len(logs) Adam steps whose gradients differ by at most
    REORDER·max|g| ≤ REORDER·‖g‖₂ per step (‖g‖₂ from the log)."""
    return sum(2 * lr / ADAM_EPS * REORDER * d["grad_norm"] for d in logs if d["skipped"] is None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RowReward:
    """Reward = mean brightness, except group 1 of every step gets a constant (no advantage there).

    It knows the global row of each video from the rank's shard, so ranks carry unequal numbers of valid
    samples and reflow targets: the per-rank loss rescaling is what makes the gradients agree.
    """

    def __init__(self, lo: int, group_size: int) -> None:
        self.lo, self.k = lo, group_size

    def __call__(self, videos: torch.Tensor) -> tuple[object, dict]:
        import numpy as np

        rows = np.arange(self.lo, self.lo + videos.shape[0])
        r = videos.float().mean(dim=(1, 2, 3, 4)).numpy().astype(np.float32)
        r[rows // self.k == 1] = 0.5
        return r, {"all_satisfied": rows % self.k == 0}


def _worker(rank: int, world: int, port: int, config: str, out: str, fake_reward: bool) -> None:
    """One rank: join the gloo group, train to cfg.steps, save the LoRA state (world 1: plain Trainer)."""
    import torch

    from creflow_train.config import load_config
    from creflow_train.distributed import DistributedTrainer, init_process_group, make_trainer, shard_rows
    from creflow_train.trainer import Trainer

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    cfg = load_config(config)
    if fake_reward:
        reward = RowReward(shard_rows(cfg.prompts_per_step, cfg.group_size, rank, world)[0], cfg.group_size)
        if world > 1:
            init_process_group("gloo")
            trainer: Trainer = DistributedTrainer(cfg, reward_model=reward)
        else:
            trainer = Trainer(cfg, reward_model=reward)
    else:
        trainer = make_trainer(cfg)
    trainer.run()
    torch.save({"lora": trainer.policy.lora_state_dict(), "step": trainer.step,
                "type": type(trainer).__name__}, Path(out) / f"rank{rank}.pt")
    if world > 1:
        torch.distributed.destroy_process_group()


def _launch(world: int, config: Path, out: Path, fake_reward: bool) -> list[dict]:
    import torch.multiprocessing as mp

    out.mkdir(parents=True, exist_ok=True)
    mp.start_processes(_worker, args=(world, _free_port(), str(config), str(out), fake_reward), nprocs=world,
                       join=True, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.mark.slow
def test_two_spawned_ranks_match_one_process(tiny_model: Path, tmp_path: Path) -> None:
    """Unequal valid/reflow counts per rank (RowReward): only the W·n_r/N loss rescaling makes them agree."""
    model, fake_reward = tiny_model, True  # RowReward in every rank and in the single process
    over = {"steps": 2, "prompts_per_step": 4, "group_size": 4, "checkpoint_every": 1, "adam_eps": ADAM_EPS,
            "prompts": ["a red block moves to the green zone", "a blue cup on the table", "a gripper"]}
    single_dir, multi_dir = tmp_path / "single", tmp_path / "multi"
    single_dir.mkdir()
    multi_dir.mkdir()
    one = _launch(1, write_config(single_dir, model, **over), single_dir / "states", fake_reward)
    two = _launch(2, write_config(multi_dir, model, **over), multi_dir / "states", fake_reward)
    assert one[0]["type"] == "Trainer" and [s["type"] for s in two] == ["DistributedTrainer"] * 2
    assert one[0]["step"] == two[0]["step"] == two[1]["step"] == 2

    ref, r0, r1 = one[0]["lora"], two[0]["lora"], two[1]["lora"]
    assert r0.keys() == r1.keys() == ref.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # replicas never drift apart
    # rank 0 alone logged, and its global statistics are the single process's
    logs = [[json.loads(s) for s in (d / "run" / "train_log.jsonl").read_text().splitlines()]
            for d in (single_dir, multi_dir)]
    tol = lora_tolerance(logs[0], 0.01)
    assert 0 < tol < 1e-4
    for k in ref:
        assert float((r0[k] - ref[k]).abs().max()) <= tol, k
    lora0 = {k: v for k, v in ref.items() if ".lora_B.default." in k}
    assert any(float(v.abs().max()) > 1e-3 for v in lora0.values())  # B started at 0: training moved it

    assert [d["step"] for d in logs[1]] == [1, 2]
    assert any(d["skipped"] is None for d in logs[0])
    assert [d["n_valid"] for d in logs[0]] == [12, 12]  # 4 on rank 0 (group 1 has none), 8 on rank 1
    for a, b in zip(*logs, strict=True):
        assert a["skipped"] == b["skipped"] and a["n_valid"] == b["n_valid"]
        assert a["reward_mean"] == pytest.approx(b["reward_mean"], rel=1e-5, abs=1e-7)
        assert a["satisfied_frac"] == b["satisfied_frac"]
        for key in ("loss", "grad_norm"):
            if a["skipped"] is None:
                assert a[key] == pytest.approx(b[key], rel=REORDER), key
    ckpts = sorted(p.name for p in (multi_dir / "run" / "checkpoints").glob("*"))
    assert ckpts == ["checkpoint-0000001.pt", "checkpoint-0000002.pt"]
    state = torch.load(multi_dir / "run" / "checkpoints" / ckpts[-1], weights_only=True)
    assert all(torch.equal(state["lora"][k], r0[k]) for k in r0)


@pytest.mark.slow
def test_accelerate_launch_cli_matches_one_process(tiny_model: Path, tmp_path: Path) -> None:
    """`accelerate launch --multi_gpu --num_processes 2 -m creflow_train.cli train` = `creflow train`."""
    import subprocess
    import sys

    over = {"steps": 2, "prompts_per_step": 2, "group_size": 4, "checkpoint_every": 2, "adam_eps": ADAM_EPS}
    env = os.environ | {"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env.pop("WORLD_SIZE", None)
    runs, logs = {}, {}
    for name in ("single", "multi"):
        (tmp_path / name).mkdir()
        config = str(write_config(tmp_path / name, tiny_model, **over))
        cli = ["-m", "creflow_train.cli", "train", config]
        # --multi_gpu picks accelerate's torchrun launcher (gloo here, no GPU); --cpu would need mpirun
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", str(_free_port())]
        cmd = [*launch, *cli] if name == "multi" else [sys.executable, *cli]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.count("trained to step 2 (2 steps this run") == 1, res.stdout  # rank 0 reports
        ranks = "data parallel over 2 ranks: 1 group(s) of 4 per rank"
        assert (ranks in res.stderr) == (name == "multi") and res.stderr.count("step 2: reward") == 1
        runs[name] = torch.load(tmp_path / name / "run" / "checkpoints" / "checkpoint-0000002.pt",
                                weights_only=True)
        logs[name] = [json.loads(s) for s in (tmp_path / name / "run" / "train_log.jsonl").read_text().splitlines()]
    single, multi = runs["single"]["lora"], runs["multi"]["lora"]
    assert multi.keys() == single.keys()
    for a, b in zip(logs["single"], logs["multi"], strict=True):  # the real RewardModel: same scores and counts
        assert (a["skipped"], a["reward_mean"], a["reflow_n"], a["policy_rows"]) == \
            (b["skipped"], b["reward_mean"], b["reflow_n"], b["policy_rows"])
        assert a["loss"] == pytest.approx(b["loss"], rel=REORDER) and a["grad_norm"] == pytest.approx(
            b["grad_norm"], rel=REORDER)
    tol = lora_tolerance(logs["single"], 0.01)
    for k in single:
        assert float((multi[k] - single[k]).abs().max()) <= tol, k
    assert runs["multi"]["step"] == 2


def test_groups_are_sharded_whole_and_in_order() -> None:
    from creflow_train.config import ConfigError
    from creflow_train.distributed import shard_rows

    assert [shard_rows(4, 3, r, 2) for r in (0, 1)] == [(0, 6), (6, 12)]  # 2 groups of 3 per rank
    assert [shard_rows(3, 2, r, 3) for r in (0, 1, 2)] == [(0, 2), (2, 4), (4, 6)]
    assert shard_rows(5, 8, 0, 1) == (0, 40)
    with pytest.raises(ConfigError, match=r"^prompts_per_step: 3 groups per step cannot be split"):
        shard_rows(3, 4, 0, 2)
