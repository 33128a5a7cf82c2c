"""The batch driver: input expansion, a resumable JSONL log, the run summary; engines do the scoring.

    run_batch(videos, engine, out=…, resume=…)   # resume → engine.run(todo, finish) → JSONL + summary
    score_videos(videos, model_kwargs, …)        # run_batch with the local engine (ltlreward.local_engine)
    score_with_ray(videos, model_kwargs, …)      # run_batch with the Ray engine (ltlreward.ray_engine)

`run_batch` alone owns resume, the results file and the summary; an engine (`Engine`) only maps the videos
left to do to records, calling `finish(record)` as each ends, and never touches the file.

- Inputs are files, directories (their *.mp4 *.avi *.mov *.mkv *.webm, sorted, not recursive) or glob
  patterns (`**` allowed); duplicates (same resolved path) are scored once.
- `out` (results.jsonl) gets one JSON object per video (schema in ltlreward.result), appended and flushed
  as each video finishes, so a killed run loses at most the videos in flight. A truncated last line left by
  a kill is cut off before appending. With `resume`, videos whose resolved path already has a record are
  skipped (so no duplicates); `retry_failed` also removes failed records and scores those videos again.
- A video that fails (corrupt file, bad sidecar, a worker that died, …) is a record with `error` set; the
  others go on. The exit code (`BatchSummary.exit_code`) is 1 when any requested video has a failed record.
- `masks_dir` / `overlay_dir`: per-video files (ltlreward.outputs); their paths are added to the record
  ("masks_file", "overlay", "timeline"); a failure to write them is recorded as "output_error".
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Engine, Job
from .local_engine import LocalEngine, VideoScorer  # VideoScorer re-exported: agree scores single videos with it
from .outputs import Outputs

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_GLOB_CHARS = set("*?[")


# ------------------------------------------------------------------------------------------ inputs
def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Video paths from files, directories and glob patterns, in input order, each resolved path once.

    A pattern or directory that yields no video raises ValueError (a usage error); a plain path that does
    not exist is kept, so it is recorded as a failed video like any other unreadable file.
    """
    out: list[Path] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in inputs:
        s = os.fspath(item)
        p = Path(s)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise ValueError(f"{s}: directory has no videos ({' '.join(VIDEO_EXTENSIONS)})")
            for q in found:
                add(q)
        elif not p.exists() and _GLOB_CHARS & set(s):
            found = sorted(Path(m) for m in glob.glob(s, recursive=True) if Path(m).is_file())
            if not found:
                raise ValueError(f"{s}: no file matches this pattern")
            for q in found:
                add(q)
        else:
            add(p)
    return out


# ------------------------------------------------------------------------------------------ JSONL log
def _repair_tail(path: Path) -> None:
    """Cut a partial last line (a run killed mid-write) so the next append starts on a fresh line."""
    if not path.is_file():
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        back = min(size, 1 << 20)
        while True:  # find the last newline, reading backwards in growing blocks
            fh.seek(size - back)
            block = fh.read(back)
            nl = block.rfind(b"\n")
            if nl >= 0 or back == size:
                break
            back = min(size, back * 2)
        start = size - back + nl + 1 if nl >= 0 else 0
        fh.seek(start)
        tail = fh.read()
        try:
            json.loads(tail)
        except ValueError:
            fh.truncate(start)
        else:  # a complete record without its newline: keep it
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a results file, skipping blank and unparsable lines (e.g. a truncated tail)."""
    p = Path(path)
    if not p.is_file():
        return []
    records = []
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                records.append(obj)
    return records


def record_key(video: str) -> str:
    """The key a record is resumed by: the resolved path of its video ("<memory:i>" ids as they are)."""
    return video if video.startswith("<") else str(Path(video).resolve())


class JsonlWriter:
    """Appends one JSON object per line and flushes each, after repairing a truncated tail."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(self.path)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` as one line and flush it to the OS."""
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resume_state(path: str | os.PathLike[str], *, retry_failed: bool = False) -> dict[str, dict[str, Any]]:
    """Records already in `path`, keyed by resolved video path (last record wins). With `retry_failed`
    the failed records are removed from the file (atomically rewritten) and not returned."""
    p = Path(path)
    _repair_tail(p)
    records = read_jsonl(p)
    if retry_failed and any(r.get("error") for r in records):
        keep = [r for r in records if not r.get("error")]
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
        os.replace(tmp, p)
        records = keep
    return {record_key(str(r["video"])): r for r in records if isinstance(r.get("video"), str)}


# ------------------------------------------------------------------------------------------ the driver
@dataclass
class BatchSummary:
    """What a batch run did: records written this run, records skipped by resume, failures."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Failed records among the requested videos (this run and skipped ones)."""
        return [r for r in (*self.scored, *self.skipped) if r.get("error")]

    @property
    def exit_code(self) -> int:
        """1 when any requested video has a failed record, else 0."""
        return 1 if self.failed else 0


OnResult = Callable[[dict[str, Any], bool], None]


def _todo(videos: Sequence[str | os.PathLike[str]], done: dict[str, dict[str, Any]], summary: BatchSummary,
          on_result: OnResult | None) -> list[Job]:
    """The videos without a record in `done`, each once; the others are reported as skipped."""
    todo: dict[str, Job] = {}
    for v in videos:
        s = os.fspath(v)
        k = record_key(s)
        if k in done:
            summary.skipped.append(done[k])
            if on_result:
                on_result(done[k], True)
        elif k not in todo:
            todo[k] = Job(k, s)
    return list(todo.values())


def run_batch(
    videos: Sequence[str | os.PathLike[str]],
    engine: Engine,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    on_result: OnResult | None = None,
) -> BatchSummary:
    """Score `videos` with `engine`: skip those `out` already has (`resume`), append each new record to `out`
    as it arrives, and call `on_result(record, skipped)` for every video; see the module docstring."""
    if resume and out is None:
        raise ValueError("resume needs an output file (out=results.jsonl)")
    done = resume_state(out, retry_failed=retry_failed) if resume and out is not None else {}
    summary = BatchSummary()
    todo = _todo(videos, done, summary, on_result)
    if not todo:
        return summary
    writer = JsonlWriter(out) if out is not None else None
    try:
        def finish(rec: dict[str, Any]) -> None:
            if writer is not None:
                writer.write(rec)
            summary.scored.append(rec)
            if on_result:
                on_result(rec, False)

        engine.run(todo, finish)
    finally:
        if writer is not None:
            writer.close()
    return summary


def score_videos(
    videos: Sequence[str | os.PathLike[str]],
    model_kwargs: dict[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    masks_dir: str | os.PathLike[str] | None = None,
    overlay_dir: str | os.PathLike[str] | None = None,
    workers: int = 1,
    on_result: OnResult | None = None,
    scorer: VideoScorer | None = None,
) -> BatchSummary:
    """Score `videos` with `RewardModel(**model_kwargs)` on the local engine (`workers` processes; `scorer`
    reuses an already built in-process scorer); see `run_batch` and the module docstring."""
    engine = LocalEngine(model_kwargs, Outputs.of(masks_dir, overlay_dir), workers, scorer)
    return run_batch(videos, engine, out=out, resume=resume, retry_failed=retry_failed, on_result=on_result)


__all__ = [
    "VIDEO_EXTENSIONS",
    "BatchSummary",
    "JsonlWriter",
    "VideoScorer",
    "expand_inputs",
    "read_jsonl",
    "resume_state",
    "run_batch",
    "score_videos",
]
