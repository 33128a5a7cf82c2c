"""Worker processes die with `ltlreward score --workers 2` (#18 item 3), with real processes: after kill -9 or
SIGTERM of the command no worker survives, Ctrl-C (SIGINT to the process group) stops it within 2 s, and
the results file it leaves resumes to every video exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = ROOT / "specs" / "pick_place.ltl"
NAMES = ("pick_place_success", "pick_place_miss", "pick_place_drop")
N_VIDEOS = 90

pytestmark = pytest.mark.slow


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    d = tmp_path / "v"
    d.mkdir()
    for i in range(N_VIDEOS):
        shutil.copy(EXAMPLES / f"{NAMES[i % 3]}.mp4", d / f"v{i:03d}.mp4")
    return d


def _score(videos: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ltlreward.cli", "score", str(videos), "--spec", str(SPEC), "--grounder", "color",
           "--out", str(out), "--workers", "2", "--json", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _workers_once_running(proc: subprocess.Popen, out: Path, timeout: float = 120.0) -> list[int]:
    """Wait until the run has written 2 records, then return its child processes' pids."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if out.is_file() and len(out.read_text().splitlines()) >= 2:
            kids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            assert kids, "no worker processes"
            return kids
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("the run wrote no records")


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _survivors(pids: list[int], within: float) -> list[int]:
    t0 = time.monotonic()
    while _alive(pids) and time.monotonic() - t0 < within:
        time.sleep(0.05)
    left = _alive(pids)
    for pid in left:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    return left


def _resume_completes(videos: Path, out: Path) -> None:
    lines = out.read_text().splitlines()
    [json.loads(x) for x in lines[:-1]]  # every complete line parses (a torn last one is repaired on resume)
    proc = _score(videos, out, "--resume")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    counts = Counter(json.loads(x)["video"] for x in out.read_text().splitlines())
    assert len(counts) == N_VIDEOS and max(counts.values()) == 1


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(tmp_path: Path, videos: Path, sig: int) -> None:
    out = tmp_path / "r.jsonl"
    proc = _score(videos, out)
    kids = _workers_once_running(proc, out)
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    assert _survivors(kids, within=3.0) == []
    _resume_completes(videos, out)


def test_ctrl_c_stops_within_two_seconds_and_leaves_a_resumable_file(tmp_path: Path, videos: Path) -> None:
    out = tmp_path / "r.jsonl"
    proc = _score(videos, out)
    kids = _workers_once_running(proc, out)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    rc = proc.wait(timeout=30)
    took = time.monotonic() - t0
    err = proc.stderr.read()
    assert took < 2.0, f"took {took:.1f} s"
    assert rc == 130, err
    assert "Traceback" not in err and "--resume" in err
    assert _survivors(kids, within=1.0) == []
    _resume_completes(videos, out)
