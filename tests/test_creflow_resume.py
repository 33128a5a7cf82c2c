"""`creflow train` resume and config hardening (#18 item 4): damaged checkpoints, non-finite config values, and
`torch.load(weights_only=True)` everywhere. The resume cases run a real `creflow train` process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": "m", "spec": "s.ltl", "prompts": ["a cup"], "output_dir": "o"}


@pytest.mark.parametrize(("over", "key"), [
    ({"lr": float("inf")}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"grad_clip": float("-inf")}, "grad_clip"),
    ({"weight_decay": float("nan")}, "weight_decay"),
    ({"loss": {"kl_weight": float("nan")}}, "loss.kl_weight"),
    ({"loss": {"anchor_outside": float("inf")}}, "loss.anchor_outside"),
])
def test_non_finite_config_values_are_rejected_by_name(over: dict, key: str) -> None:
    from creflow_train.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must be a finite number"):
        config_from_dict(BASE | over)


def test_yaml_nan_and_inf_are_rejected_by_name(tmp_path: Path) -> None:
    from creflow_train.config import ConfigError, load_config

    for text, key in (("kl_weight: .nan", "loss.kl_weight"), ("lr: .inf", "lr")):
        body = f"loss:\n  {text}\n" if key.startswith("loss.") else text + "\n"
        path = tmp_path / "c.yaml"
        path.write_text("model: m\nspec: s.ltl\noutput_dir: o\nprompts: [a cup]\n" + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must be a finite number, got (nan|inf)"):
            load_config(path)


def _real_checkpoint(path: Path) -> None:
    torch.save({"step": 3, "lora": {"w": torch.ones(64, 64)}, "optimizer": {}, "rng": {}}, path)


def test_read_checkpoint_names_each_kind_of_damage(tmp_path: Path) -> None:
    from creflow_train.errors import CheckpointError
    from creflow_train.trainer import read_checkpoint

    good = tmp_path / "good.pt"
    _real_checkpoint(good)
    assert read_checkpoint(good)["step"] == 3
    empty, garbage, cut, foreign = (tmp_path / f"{n}.pt" for n in ("empty", "garbage", "cut", "foreign"))
    empty.write_bytes(b"")
    garbage.write_bytes(b"not a torch file\n" * 10)
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    torch.save({"weights": torch.zeros(2)}, foreign)
    cases = [(empty, "empty file (0 bytes)"), (garbage, "unreadable checkpoint"), (cut, "unreadable checkpoint"),
             (foreign, "not a creflow checkpoint (missing step, lora, optimizer, rng)")]
    for path, why in cases:
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(path)
        assert str(e.value).startswith(f"{path}: {why}"), str(e.value)


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    """A pickle checkpoint can run code on load: every torch.load in shipped code passes weights_only=True."""
    offenders = []
    for folder in ("creflow_train", "ltlreward", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "torch.load(" in line and "weights_only=True" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []


def _train(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    """One real `creflow train` process (the shared venv's interpreter, this checkout first on the path)."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "creflow_train.cli", "train", str(cfg), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_and_none_readable_is_a_clear_error(
    tiny_model: Path, tmp_path: Path
) -> None:
    from test_creflow_trainer import write_config

    cfg = write_config(tmp_path, tiny_model, steps=2, group_size=2, prompts=["a blue cup"], keep_checkpoints=3)
    first = _train(cfg)
    assert first.returncode == 0, first.stderr
    ckpts = tmp_path / "run" / "checkpoints"
    one, two = ckpts / "checkpoint-0000001.pt", ckpts / "checkpoint-0000002.pt"
    assert one.is_file() and two.is_file()

    two.write_bytes(b"")  # a zero-byte newest checkpoint (a disk-full write): used to print only "Aborted."
    again = _train(cfg, "--steps", "3")
    assert again.returncode == 0, again.stderr
    assert f"warning: {two}: empty file (0 bytes); moved aside to checkpoint-0000002.pt.corrupt" in again.stderr
    assert f"resumed from {one} at step 1" in again.stderr
    assert "trained to step 3 (2 steps this run, " in again.stdout
    assert (ckpts / "checkpoint-0000002.pt.corrupt").stat().st_size == 0
    assert sorted(p.name for p in ckpts.glob("*.pt")) == [f"checkpoint-000000{i}.pt" for i in (1, 2, 3)]

    for p in sorted(ckpts.glob("*.pt")):  # now no checkpoint is readable: a located error, nothing renamed
        p.write_bytes(p.read_bytes()[:100])
    (ckpts / "checkpoint-0000001.pt").write_bytes(b"")
    bad = _train(cfg, "--steps", "4")
    assert bad.returncode == 1, bad.stderr
    assert "Traceback" not in bad.stderr and "Aborted" not in bad.stderr
    assert f"no readable checkpoint in {ckpts}" in bad.stderr
    for i in (1, 2, 3):
        assert f"{ckpts / f'checkpoint-000000{i}.pt'}: " in bad.stderr
    assert len(list(ckpts.glob("*.pt"))) == 3  # kept for the user to look at


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_keeps_one_log_line_per_step(tiny_model: Path, tmp_path: Path) -> None:
    """A `creflow train` process killed with SIGKILL after its second checkpoint, with a half-written log line
    left behind (a kill mid-write), resumes from its newest checkpoint and ends with exactly one line per step."""
    import json
    import signal
    import time

    from test_creflow_trainer import write_config

    cfg = write_config(tmp_path, tiny_model, steps=40, group_size=2, prompts=["a blue cup"], keep_checkpoints=5)
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "creflow_train.cli", "train", str(cfg), "--quiet"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "run" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (ckpts / "checkpoint-0000002.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    log = tmp_path / "run" / "train_log.jsonl"
    with log.open("a", encoding="utf-8") as f:
        f.write('{"step": 99, "skipped": nu')  # torn line
    newest = sorted(ckpts.glob("checkpoint-*.pt"))[-1]
    done = int(newest.stem.split("-")[1])
    again = _train(cfg, "--steps", str(done + 1))
    assert again.returncode == 0, again.stderr
    assert f"resumed from {newest} at step {done}" in again.stderr
    steps = [json.loads(line)["step"] for line in log.read_text(encoding="utf-8").splitlines()]
    assert steps == list(range(1, done + 2))
