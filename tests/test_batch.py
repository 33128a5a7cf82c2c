"""Batch scoring: input expansion, resumable JSONL (truncated tail, no duplicates), failures recorded
alone, the process pool, and the `score` command's output (tables, --json, masks, overlays, exit codes)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ltlreward.batch import JsonlWriter, expand_inputs, read_jsonl, resume_state, score_videos
from ltlreward.result import validate_json
from ltlreward.score_cli import format_frames, run_score

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = ROOT / "specs" / "pick_place.ltl"
NAMES = ("pick_place_success", "pick_place_miss", "pick_place_drop")

pytestmark = pytest.mark.skipif(
    not SPEC.is_file() or not all((EXAMPLES / f"{n}.mp4").is_file() for n in NAMES),
    reason="shipped examples / specs not present",
)


@pytest.fixture
def videos(tmp_path: Path) -> list[Path]:
    """Copies of the pick-place examples (+ sidecars) and a corrupt mp4, in tmp_path/videos."""
    d = tmp_path / "videos"
    d.mkdir()
    out = []
    for n in NAMES:
        shutil.copy(EXAMPLES / f"{n}.mp4", d / f"{n}.mp4")
        shutil.copy(EXAMPLES / f"{n}.sidecar.json", d / f"{n}.sidecar.json")
        out.append(d / f"{n}.mp4")
    return out


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    p = tmp_path / "videos" / "broken.mp4"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes((EXAMPLES / "pick_place_success.mp4").read_bytes()[:3000])  # header only: no frames
    return p


KW = {"spec": str(SPEC), "grounder": "state"}


def test_expand_inputs(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for n in ("b.avi", "a.mp4", "c.txt", "D.WEBM"):
        (d / n).write_bytes(b"x")
    (d / "sub").mkdir()
    (d / "sub" / "e.mp4").write_bytes(b"x")
    assert [p.name for p in expand_inputs([d])] == ["D.WEBM", "a.mp4", "b.avi"]
    assert [p.name for p in expand_inputs([str(d / "*.mp4"), d / "a.mp4"])] == ["a.mp4"]  # deduplicated
    assert [p.name for p in expand_inputs([str(tmp_path / "**" / "*.mp4")])] == ["a.mp4", "e.mp4"]
    assert expand_inputs([tmp_path / "missing.mp4"]) == [tmp_path / "missing.mp4"]  # kept: fails as a video
    with pytest.raises(ValueError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.mkv")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="directory has no videos"):
        expand_inputs([tmp_path / "empty"])


def test_jsonl_tail_repair(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('{"video": "a", "reward": 1}\n{"video": "b", "rew')
    assert [r["video"] for r in read_jsonl(p)] == ["a"]
    with JsonlWriter(p) as w:
        w.write({"video": "c", "reward": 0.5})
    assert p.read_text() == '{"video": "a", "reward": 1}\n{"video": "c", "reward": 0.5}\n'
    p.write_text('{"video": "a"}\n{"video": "b"}')  # complete record, newline lost: kept
    with JsonlWriter(p) as w:
        w.write({"video": "c"})
    assert [r["video"] for r in read_jsonl(p)] == ["a", "b", "c"]


def test_resume_after_a_killed_run_has_no_duplicates(tmp_path: Path, videos: list[Path]) -> None:
    out = tmp_path / "results.jsonl"
    first = score_videos(videos[:2], KW, out=out)
    assert first.exit_code == 0 and len(first.scored) == 2
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    with out.open("a") as fh:  # a kill while writing the third record
        fh.write(f'{{"schema_version": 1, "video": "{videos[2].resolve()}", "reward": 0.')
    seen: list[tuple[str, bool]] = []
    second = score_videos(videos, KW, out=out, resume=True,
                          on_result=lambda r, s: seen.append((r["video"], s)))
    assert [Path(v).name for v, s in seen if s] == [v.name for v in videos[:2]]
    assert [Path(r["video"]).name for r in second.scored] == [videos[2].name]
    records = [json.loads(x) for x in out.read_text().splitlines()]  # every line parses
    assert sorted(Path(r["video"]).name for r in records) == sorted(v.name for v in videos)
    assert all(validate_json(r) == [] for r in records)
    third = score_videos(videos, KW, out=out, resume=True)  # nothing left to do
    assert third.scored == [] and len(third.skipped) == 3
    assert len(out.read_text().splitlines()) == 3
    by_name = {Path(r["video"]).name: r for r in records}
    assert by_name["pick_place_success.mp4"]["reward"] == 1.0
    assert by_name["pick_place_miss.mp4"]["satisfied"] is False


def test_corrupt_video_fails_alone(tmp_path: Path, videos: list[Path], corrupt: Path) -> None:
    out = tmp_path / "r.jsonl"
    missing = tmp_path / "videos" / "missing.mp4"
    s = score_videos([videos[0], corrupt, missing, videos[1]], KW, out=out)
    assert s.exit_code == 1
    recs = {Path(r["video"]).name: r for r in read_jsonl(out)}
    assert set(recs) == {"pick_place_success.mp4", "broken.mp4", "missing.mp4", "pick_place_miss.mp4"}
    assert recs["broken.mp4"]["error"].startswith("VideoError: ")
    assert "broken.mp4" in recs["broken.mp4"]["error"]
    assert recs["missing.mp4"]["error"].startswith("VideoError")
    assert recs["broken.mp4"]["reward"] is None and validate_json(recs["broken.mp4"]) == []
    assert recs["pick_place_success.mp4"]["error"] is None and recs["pick_place_success.mp4"]["reward"] == 1.0
    assert [Path(r["video"]).name for r in s.failed] == ["broken.mp4", "missing.mp4"]
    # resume keeps failed records (no duplicates) unless asked to retry them
    assert score_videos([corrupt], KW, out=out, resume=True).exit_code == 1
    assert len(read_jsonl(out)) == 4
    corrupt.write_bytes((EXAMPLES / "pick_place_success.mp4").read_bytes())  # "fixed"
    shutil.copy(EXAMPLES / "pick_place_success.sidecar.json", corrupt.with_name("broken.sidecar.json"))
    retry = score_videos([corrupt], KW, out=out, resume=True, retry_failed=True)
    assert retry.exit_code == 0 and retry.scored[0]["reward"] == 1.0
    names = [Path(r["video"]).name for r in read_jsonl(out)]
    assert sorted(names) == ["broken.mp4", "pick_place_miss.mp4", "pick_place_success.mp4"]  # missing dropped


class CrashingGrounder:
    """The state grounder, except that the worker process dies on any video named crash*.mp4."""

    name = "state"
    provides = frozenset()

    def ground(self, video, entities, *, quoted=(), sidecar=None):
        from ltlreward.grounding.backends.state import StateGrounder

        if Path(video.path).name.startswith("crash"):
            os._exit(3)  # what a decoder segfault looks like to the pool
        return StateGrounder().ground(video, entities, quoted=quoted, sidecar=sidecar)


@pytest.mark.slow
def test_process_pool_matches_sequential_and_survives_a_worker_crash(
    tmp_path: Path, videos: list[Path], corrupt: Path
) -> None:
    seq = score_videos(videos, KW)
    crash = videos[0].with_name("crash.mp4")
    shutil.copy(videos[0], crash)
    shutil.copy(videos[0].with_name("pick_place_success.sidecar.json"), crash.with_name("crash.sidecar.json"))
    kw = {"spec": str(SPEC), "grounder": CrashingGrounder()}
    par = score_videos([crash, *videos, corrupt], kw, out=tmp_path / "p.jsonl", workers=2, masks_dir=tmp_path / "m")
    assert par.exit_code == 1 and len(par.scored) == 5
    assert len(read_jsonl(tmp_path / "p.jsonl")) == 5
    errors = {Path(r["video"]).name: r["error"] for r in par.scored if r["error"]}
    assert errors["crash.mp4"].startswith("WorkerCrash") and errors["broken.mp4"].startswith("VideoError")
    crashed = next(r for r in par.scored if r["video"].endswith("crash.mp4"))  # as the Ray engine records it
    assert (crashed["grounder"], crashed["reward_mode"], crashed["reward"]) == ("state", "weighted_mean", None)
    def key(r: dict) -> tuple:
        return r["reward"], [c["satisfied"] for c in r["constraints"]]

    want = {r["video"]: key(r) for r in seq.scored}
    got = {r["video"]: key(r) for r in par.scored if not r["error"]}
    assert got == want
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(f"{n}.npz" for n in NAMES)


def test_each_video_is_scored_once(tmp_path: Path, videos: list[Path]) -> None:
    out = tmp_path / "r.jsonl"
    same = videos[0].parent / ".." / "videos" / videos[0].name  # another spelling of the same file
    s = score_videos([videos[0], str(videos[0]), same, videos[1]], KW, out=out)
    assert [Path(r["video"]).name for r in s.scored] == [videos[0].name, videos[1].name]
    assert [r["video"] for r in read_jsonl(out)] == [str(videos[0].resolve()), str(videos[1].resolve())]


def test_run_score_json_lines_and_exit_codes(tmp_path: Path, videos: list[Path], corrupt: Path) -> None:
    from rich.console import Console

    buf, err = io.StringIO(), io.StringIO()
    con, econ = Console(file=buf, width=120), Console(file=err, width=120)
    code = run_score([str(videos[0].parent)], str(SPEC), grounder="state", json_out=True, console=con,
                     err_console=econ, masks_dir=str(tmp_path / "masks"))
    assert code == 1  # broken.mp4 is in the directory
    objs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert sorted(Path(o["video"]).name for o in objs) == sorted([*(f"{n}.mp4" for n in NAMES), "broken.mp4"])
    assert all(validate_json(o) == [] for o in objs)
    ok = [o for o in objs if not o["error"]]
    assert all(Path(o["masks_file"]).is_file() for o in ok)
    m = np.load(next(o["masks_file"] for o in ok if "miss" in o["video"]))["mask"]
    assert m.dtype == np.float32 and m.ndim == 3 and m.max() > 0

    assert run_score(["nothing/*.mp4"], str(SPEC), console=con, err_console=econ) == 2
    assert "no file matches" in err.getvalue()
    bad = tmp_path / "bad.ltl"
    bad.write_text("constraint c: G (p &\n")
    assert run_score([str(videos[0])], str(bad), console=con, err_console=econ) == 2
    assert "bad.ltl:" in err.getvalue()
    assert run_score([str(videos[0])], str(SPEC), grounder="nope", console=con, err_console=econ) == 2
    assert "unknown grounder 'nope'" in err.getvalue()
    assert run_score([str(videos[0])], str(SPEC), resume=True, console=con, err_console=econ) == 2


def test_run_score_table_and_overlay(tmp_path: Path, videos: list[Path]) -> None:
    from rich.console import Console

    buf = io.StringIO()
    code = run_score([str(videos[1])], str(SPEC), grounder="state", console=Console(file=buf, width=140),
                     overlay_dir=str(tmp_path / "ov"), out=str(tmp_path / "r.jsonl"))
    text = buf.getvalue()
    assert code == 0
    assert "pick_place_miss.mp4" in text and "reward" in text and "placed" in text and "✗" in text
    assert (tmp_path / "ov" / "pick_place_miss.mp4").stat().st_size > 1000
    assert (tmp_path / "ov" / "pick_place_miss.png").stat().st_size > 1000
    rec = read_jsonl(tmp_path / "r.jsonl")[0]
    assert rec["overlay"].endswith("pick_place_miss.mp4") and "output_error" not in rec


def test_format_frames() -> None:
    assert format_frames([5, 1, 2, 3, 9]) == "1–3, 5, 9"
    assert format_frames(range(0, 20, 2), limit=3) == "0, 2, 4, …"
    assert format_frames([]) == ""


def test_resume_state_keys_by_resolved_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps({"video": "clips/a.mp4", "error": None}) + "\n")
    monkeypatch.chdir(tmp_path)
    assert list(resume_state(p)) == [str((tmp_path / "clips" / "a.mp4").resolve())]
