"""The results file under concurrency and change (#18 items 1–2), with real processes: a `--retry-failed`
rewrite while another run appends, two simultaneous runs on one file, and record fingerprints (a resume
re-scores only what was made with another spec, grounder or options, and the summary never mixes them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ltlreward import batch
from ltlreward.batch import read_jsonl, score_videos
from ltlreward.result import validate_json

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = ROOT / "specs" / "pick_place.ltl"
NAMES = ("pick_place_success", "pick_place_miss", "pick_place_drop")

# A run in its own process: the state grounder made slow (so runs overlap), scored by the real batch driver.
RUNNER = """
import sys, time, json
from ltlreward.batch import score_videos
from ltlreward.grounding.backends.state import StateGrounder

class Slow(StateGrounder):
    def ground(self, video, entities, **kw):
        time.sleep({delay})
        return super().ground(video, entities, **kw)

args = json.loads(sys.argv[1])
s = score_videos(args["videos"], {{"spec": args["spec"], "grounder": Slow()}}, out=args["out"],
                 resume=args["resume"], retry_failed=args["retry"])
print(json.dumps({{"scored": len(s.scored), "skipped": len(s.skipped)}}))
"""


def _copies(d: Path, n: int, *, sidecars: bool = True) -> list[Path]:
    """n copies of the pick-place examples (distinct files, so distinct records) in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = NAMES[i % len(NAMES)]
        p = d / f"v{i:03d}.mp4"
        shutil.copy(EXAMPLES / f"{src}.mp4", p)
        if sidecars:
            shutil.copy(EXAMPLES / f"{src}.sidecar.json", p.with_name(f"v{i:03d}.sidecar.json"))
        out.append(p)
    return out


def _start(tmp: Path, videos: list[Path], out: Path, *, resume: bool = False, retry: bool = False,
           delay: float = 0.05) -> subprocess.Popen:
    script = tmp / "runner.py"
    script.write_text(RUNNER.format(delay=delay))
    args = json.dumps({"videos": [str(v) for v in videos], "spec": str(SPEC), "out": str(out), "resume": resume,
                       "retry": retry})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before writing {n} lines: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"no {n} lines in {path} after {timeout} s")


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    recs = [json.loads(x) for x in lines]  # every line parses
    assert all(validate_json(r) == [] for r in recs)
    return recs


@pytest.mark.slow
def test_retry_failed_rewrite_while_another_run_appends_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    failed = _copies(tmp_path / "a", 8, sidecars=False)
    assert score_videos(failed, {"spec": str(SPEC), "grounder": "state"}, out=out).exit_code == 1  # 8 failed
    for i, v in enumerate(failed):  # "fixed": their sidecars appear
        shutil.copy(EXAMPLES / f"{NAMES[i % 3]}.sidecar.json", v.with_name(f"{v.stem}.sidecar.json"))
    others = _copies(tmp_path / "b", 30)
    appender = _start(tmp_path, others, out, delay=0.06)
    _wait_for_lines(out, 8 + 3, appender)  # the appender is running
    retry = _start(tmp_path, failed, out, resume=True, retry=True, delay=0.02)  # rewrites the file now
    assert _finish(retry)["scored"] == 8
    assert _finish(appender)["scored"] == 30
    recs = _records(out)
    counts = Counter(r["video"] for r in recs)
    want = {str(v.resolve()) for v in [*failed, *others]}
    assert set(counts) == want  # no record lost
    assert max(counts.values()) == 1  # no duplicate, no failed record left
    assert not any(r["error"] for r in recs)


@pytest.mark.slow
def test_two_simultaneous_runs_on_one_file_record_each_video_once(tmp_path: Path) -> None:
    """Two `--resume` runs over the same videos at once (sharing the work through the file)."""
    out = tmp_path / "results.jsonl"
    videos = _copies(tmp_path / "v", 24)
    a = _start(tmp_path, videos, out, resume=True, delay=0.04)
    _wait_for_lines(out, 1, a)
    b = _start(tmp_path, videos, out, resume=True, delay=0.04)
    ra, rb = _finish(a), _finish(b)
    counts = Counter(r["video"] for r in _records(out))
    assert set(counts) == {str(v.resolve()) for v in videos}
    assert max(counts.values()) == 1, [k for k, c in counts.items() if c > 1][:3]
    assert ra["scored"] + ra["skipped"] == 24 and rb["scored"] + rb["skipped"] == 24


def _spec_variant(tmp: Path, edit: str) -> Path:
    p = tmp / f"spec_{abs(hash(edit)) % 10**6}.ltl"
    text = SPEC.read_text()
    p.write_text(text + edit)
    return p


def test_resume_rescores_only_records_with_another_fingerprint(tmp_path: Path) -> None:
    videos = _copies(tmp_path / "v", 3)
    out = tmp_path / "r.jsonl"
    kw = {"spec": str(SPEC), "grounder": "state"}
    first = score_videos(videos, kw, out=out)
    fp = batch.fingerprint(kw)
    assert {r["fingerprint"] for r in read_jsonl(out)} == {fp}
    # a comment changes nothing: every record is resumed
    same = score_videos(videos, {**kw, "spec": str(_spec_variant(tmp_path, "# a note\n"))}, out=out, resume=True)
    assert (len(same.skipped), len(same.scored), same.rescored) == (3, 0, 0)
    # an edited spec: every video again, and the summary holds only the new records
    edited = _spec_variant(tmp_path, 'constraint extra: F visible(block)\n')
    second = score_videos(videos, {**kw, "spec": str(edited)}, out=out, resume=True)
    assert (len(second.skipped), len(second.scored), second.rescored) == (0, 3, 3)
    assert all(len(r["constraints"]) == len(first.scored[0]["constraints"]) + 1 for r in second.scored)
    assert {r["fingerprint"] for r in second.scored} == {batch.fingerprint({**kw, "spec": str(edited)})}
    # sampling options and grounder options are part of it too
    strided = score_videos(videos[:1], {**kw, "stride": 2}, out=out, resume=True)
    assert (len(strided.scored), strided.rescored) == (1, 1)
    # back to the first spec: those records are still there and match
    back = score_videos(videos, kw, out=out, resume=True)
    assert (len(back.skipped), len(back.scored), back.rescored) == (3, 0, 0)
    assert {r["fingerprint"] for r in back.skipped} == {fp}
    assert batch.fingerprint({**kw, "grounder_options": {"strict_frames": False}}) != fp
    assert batch.fingerprint({**kw, "grounder_options": {"cache_dir": str(tmp_path)}}) == fp  # changes no result


def test_summary_line_never_mixes_fingerprints(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from ltlreward.score_cli import run_score

    videos = _copies(tmp_path / "v", 3)
    out = tmp_path / "r.jsonl"
    con, err = Console(file=io.StringIO(), width=200), Console(file=io.StringIO(), width=200)
    assert run_score([str(v) for v in videos], str(SPEC), grounder="state", out=str(out), console=con,
                     err_console=err) == 0
    strict = _spec_variant(tmp_path, 'constraint never: G !visible(block)\n')  # fails on every video
    buf = io.StringIO()
    con = Console(file=buf, width=200)
    assert run_score([str(v) for v in videos], str(strict), grounder="state", out=str(out), resume=True,
                     console=con, err_console=err) == 0
    text = buf.getvalue()
    recs = [r for r in read_jsonl(out) if r["fingerprint"] == batch.fingerprint({"spec": str(strict), "grounder": "state"})]
    mean = sum(r["reward"] for r in recs) / len(recs)
    assert f"mean reward {mean:.3f}" in text and "0 satisfy every constraint" in text
    assert "3 scored again" in text
