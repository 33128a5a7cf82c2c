"""The batch driver: input expansion, a resumable JSONL log shared safely between runs, the run summary;
engines do the scoring.

    run_batch(videos, engine, out=…, resume=…)   # resume → engine.run(todo, finish) → JSONL + summary
    score_videos(videos, model_kwargs, …)        # run_batch with the local engine (ltlreward.local_engine)
    score_with_ray(videos, model_kwargs, …)      # run_batch with the Ray engine (ltlreward.ray_engine)

`run_batch` alone owns resume, the results file and the summary; an engine (`Engine`) only maps the videos
left to do to records, calling `finish(record)` as each ends, and never touches the file.

- Inputs are files, directories (their *.mp4 *.avi *.mov *.mkv *.webm, sorted, not recursive) or glob
  patterns (`**` allowed); duplicates (same resolved path) are scored once.
- `out` (results.jsonl) gets one JSON object per video (schema in ltlreward.result), appended and flushed
  as each video finishes, so a killed run loses at most the videos in flight. A truncated last line left by
  a kill is cut off before appending.
- Fingerprints: every record carries `fingerprint` (`fingerprint(model_kwargs)`: a hash of the spec's
  content, the grounder and its options, the sampling options and the ltlreward version). With `resume`,
  a video is skipped only when the file has a record for its resolved path with this run's fingerprint;
  videos whose records were made otherwise are scored again (`BatchSummary.rescored` counts them) and the
  summary holds only this fingerprint's records. `retry_failed` also removes this fingerprint's failed
  records and scores those videos again.
- Several runs may share one file (`ResultsFile`): every append and the `retry_failed` rewrite happen under
  one lock (`filelock`, `<out>.lock` beside the file), a writer notices a rewrite by another run and reopens
  the file, and a run does not append a record for a video that another run recorded with the same
  fingerprint while it ran (both may have scored it; the file keeps one).
- A video that fails (corrupt file, bad sidecar, a worker that died, …) is a record with `error` set; the
  others go on. The exit code (`BatchSummary.exit_code`) is 1 when any requested video has a failed record.
- `masks_dir` / `overlay_dir`: per-video files (ltlreward.outputs); their paths are added to the record
  ("masks_file", "overlay", "timeline"); a failure to write them is recorded as "output_error".
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def _parse_lines(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects of JSONL bytes, skipping blank and unparsable lines (e.g. a truncated tail)."""
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
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


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a results file, skipping blank and unparsable lines (e.g. a truncated tail)."""
    p = Path(path)
    return _parse_lines(p.read_bytes()) if p.is_file() else []


def record_key(video: str) -> str:
    """The key a record is resumed by: the resolved path of its video ("<memory:i>" ids as they are)."""
    return video if video.startswith("<") else str(Path(video).resolve())


def _ident(record: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(resume key, fingerprint) of a record; None for a line that is not a video record."""
    video = record.get("video")
    return (record_key(video), record.get("fingerprint")) if isinstance(video, str) else None


def _lines(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


class ResultsFile:
    """The JSONL results file as shared by every run writing it: each append and each rewrite runs under one
    file lock (`<path>.lock`). A writer re-reads what other runs appended since its last write (or the whole
    file, after another run rewrote it, which it detects by the inode) and does not append a record for a
    video that another run recorded with the same fingerprint while this one ran."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from filelock import FileLock

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.path.with_name(self.path.name + ".lock")))
        self._fh: Any = None
        self._ino = -1
        self._offset = 0
        self.counts: Counter[tuple[str, str | None]] = Counter()  # records in the file per (video, fingerprint)
        self._base: Counter[tuple[str, str | None]] = Counter()  # … of those, the ones not from concurrent runs
        with self.lock:
            self._catch_up()

    def records(self) -> list[dict[str, Any]]:
        """Every record in the file now (under the lock)."""
        with self.lock:
            _repair_tail(self.path)
            return read_jsonl(self.path)

    def drop_failed(self, fingerprint: str | None) -> int:
        """Rewrite the file without the failed records of `fingerprint` (atomically: a temporary file, fsync,
        rename; other writers reopen it); returns how many were removed."""
        with self.lock:
            self._catch_up()
            records = read_jsonl(self.path)
            keep = [r for r in records if not (r.get("error") and r.get("fingerprint") == fingerprint)]
            if len(keep) == len(records):
                return 0
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(_lines(keep))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._catch_up()
            return len(records) - len(keep)

    def write(self, record: dict[str, Any]) -> bool:
        """Append `record` as one line and flush it, unless another run recorded the same video with the same
        fingerprint since this one opened the file (then False)."""
        ident = _ident(record)
        with self.lock:
            self._catch_up()
            if ident is not None and self.counts[ident] > self._base[ident]:
                return False
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._fh.flush()
            self._offset = self._fh.tell()
            if ident is not None:
                self.counts[ident] += 1
                self._base[ident] += 1
        return True

    def _catch_up(self) -> None:
        """Count the records other runs wrote since the last look (the lock is held): the new tail, or the whole
        file when it was replaced or shrank (a rewrite); `_base` keeps only what remains of this run's view."""
        _repair_tail(self.path)
        if not self.path.exists():
            self.path.touch()
        st = os.stat(self.path)
        if st.st_ino != self._ino or st.st_size < self._offset:
            new = Counter(i for i in map(_ident, read_jsonl(self.path)) if i is not None)
            self._base = Counter({k: min(v, new[k]) for k, v in self._base.items()}) if self._ino >= 0 else +new
            self.counts = new
            if self._fh is not None:
                self._fh.close()
            self._fh = self.path.open("a", encoding="utf-8")
            self._ino, self._offset = st.st_ino, st.st_size
        elif st.st_size > self._offset:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                self.counts.update(i for i in map(_ident, _parse_lines(fh.read(st.st_size - self._offset)))
                                   if i is not None)
            self._offset = st.st_size

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


JsonlWriter = ResultsFile  # the name before results files were shared between runs


@dataclass(frozen=True)
class ResumeState:
    """What a results file holds for a run: the records matching its fingerprint by video (last one wins),
    and the videos that have records made with another fingerprint only."""

    done: dict[str, dict[str, Any]]
    stale: frozenset[str]


def _resume(records: list[dict[str, Any]], fingerprint: str | None) -> ResumeState:
    done: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for r in records:
        ident = _ident(r)
        if ident is None:
            continue
        seen.add(ident[0])
        if ident[1] == fingerprint:
            done[ident[0]] = r
    return ResumeState(done, frozenset(seen - set(done)))


def resume_state(path: str | os.PathLike[str], *, retry_failed: bool = False,
                 fingerprint: str | None = None) -> dict[str, dict[str, Any]]:
    """Records already in `path` with `fingerprint`, keyed by resolved video path (last record wins). With
    `retry_failed` those that failed are removed from the file (atomically rewritten) and not returned."""
    with ResultsFile(path) as results:
        if retry_failed:
            results.drop_failed(fingerprint)
        return _resume(results.records(), fingerprint).done


def fingerprint(model_kwargs: Mapping[str, Any]) -> str:
    """What a record was made with, as 16 hex digits of a SHA-256: the spec's content (printed canonically,
    so comments and layout do not count), the grounder and its options (but not the observations cache or
    download permission, which change no result), sidecar, frame sampling, predicate options and the
    ltlreward version."""
    from . import __version__
    from .pipeline import grounder_label
    from .reward import load_task_spec
    from .spec import format_spec

    spec = load_task_spec(model_kwargs["spec"])
    options = {k: v for k, v in dict(model_kwargs.get("grounder_options") or {}).items()
               if k not in ("cache_dir", "allow_download")}
    parts = {
        "spec": hashlib.sha256(format_spec(spec).encode()).hexdigest(),
        "grounder": grounder_label(model_kwargs.get("grounder", "auto")), "grounder_options": options,
        "sampling": [model_kwargs.get(k) for k in ("stride", "target_fps", "max_frames", "size", "fps")],
        "sidecar": model_kwargs.get("sidecar"), "predicate_options": model_kwargs.get("predicate_options"),
        "ltlreward": __version__,
    }
    if parts["sampling"][0] == 1:
        parts["sampling"][0] = None  # stride 1 is the default
    blob = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ the driver
@dataclass
class BatchSummary:
    """What a batch run did: records written this run, records skipped by resume (all with this run's
    fingerprint), failures; `rescored` videos had records made with another fingerprint only, `elsewhere`
    records were not appended because another run recorded the same video meanwhile."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str | None = None
    rescored: int = 0
    elsewhere: int = 0

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Failed records among the requested videos (this run and skipped ones)."""
        return [r for r in (*self.scored, *self.skipped) if r.get("error")]

    @property
    def exit_code(self) -> int:
        """1 when any requested video has a failed record, else 0."""
        return 1 if self.failed else 0


OnResult = Callable[[dict[str, Any], bool], None]


def _todo(videos: Sequence[str | os.PathLike[str]], state: ResumeState, summary: BatchSummary,
          on_result: OnResult | None) -> list[Job]:
    """The videos without a record in `state.done`, each once; the others are reported as skipped."""
    todo: dict[str, Job] = {}
    for v in videos:
        s = os.fspath(v)
        k = record_key(s)
        if k in state.done:
            summary.skipped.append(state.done[k])
            if on_result:
                on_result(state.done[k], True)
        elif k not in todo:
            todo[k] = Job(k, s)
            summary.rescored += k in state.stale
    return list(todo.values())


def _finisher(results: ResultsFile | None, summary: BatchSummary, on_result: OnResult | None) -> Callable:
    """The engine's `finish(record)`: stamp the fingerprint, append to the file, report."""
    def finish(rec: dict[str, Any]) -> None:
        if summary.fingerprint is not None:
            rec["fingerprint"] = summary.fingerprint
        if results is not None and not results.write(rec):
            summary.elsewhere += 1
        summary.scored.append(rec)
        if on_result:
            on_result(rec, False)

    return finish


def run_batch(
    videos: Sequence[str | os.PathLike[str]],
    engine: Engine,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    on_result: OnResult | None = None,
    fingerprint: str | None = None,
) -> BatchSummary:
    """Score `videos` with `engine`: skip those `out` already has with `fingerprint` (`resume`), append each
    new record (stamped with `fingerprint`) to `out` as it arrives, and call `on_result(record, skipped)` for
    every video; see the module docstring."""
    if resume and out is None:
        raise ValueError("resume needs an output file (out=results.jsonl)")
    results = ResultsFile(out) if out is not None else None
    summary = BatchSummary(fingerprint=fingerprint)
    try:
        state = ResumeState({}, frozenset())
        if resume and results is not None:
            if retry_failed:
                results.drop_failed(fingerprint)
            state = _resume(results.records(), fingerprint)
        todo = _todo(videos, state, summary, on_result)
        if todo:
            engine.run(todo, _finisher(results, summary, on_result))
    finally:
        if results is not None:
            results.close()
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
    return run_batch(videos, engine, out=out, resume=resume, retry_failed=retry_failed, on_result=on_result,
                     fingerprint=fingerprint(model_kwargs))


__all__ = [
    "VIDEO_EXTENSIONS",
    "BatchSummary",
    "JsonlWriter",
    "ResultsFile",
    "ResumeState",
    "VideoScorer",
    "expand_inputs",
    "fingerprint",
    "read_jsonl",
    "record_key",
    "resume_state",
    "run_batch",
    "score_videos",
]
