"""Scoring many videos: input expansion, a resumable JSONL log, a process pool, masks and overlays on disk.

- Inputs are files, directories (their *.mp4 *.avi *.mov *.mkv *.webm, sorted, not recursive) or glob
  patterns (`**` allowed); duplicates (same resolved path) are scored once.
- `out` (results.jsonl) gets one JSON object per video (schema in ltlreward.result), appended and flushed
  as each video finishes, so a killed run loses at most the video in flight. A truncated last line left by
  a kill is cut off before appending. With `resume`, videos whose resolved path already has a record are
  skipped (so no duplicates); `retry_failed` also removes failed records and scores those videos again.
- `workers > 1` uses a spawn-context process pool (safe with decoders and torch); each worker builds its
  RewardModel once. A video that fails (corrupt file, bad sidecar, …) is a record with `error` set; the
  others go on; even a worker process that dies is traced to its video ("WorkerCrash: …"). The exit code
  is 1 when any requested video has a failed record, else 0.
- `masks_dir`: `<stem>.npz` violation masks (ltlreward.masks); `overlay_dir`: `<stem>.mp4` overlay video and
  `<stem>.png` robustness timeline (ltlreward.viz). Their paths are added to the record ("masks_file",
  "overlay", "timeline"); a failure to write them is recorded as "output_error" (the score stands).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _key(video: str) -> str:
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
    return {_key(str(r["video"])): r for r in records if isinstance(r.get("video"), str)}


# ------------------------------------------------------------------------------------------ scoring
class VideoScorer:
    """Scores one video at a time with a RewardModel built once, writing masks / overlays when asked."""

    def __init__(self, model_kwargs: dict[str, Any], masks_dir: str | None = None,
                 overlay_dir: str | None = None) -> None:
        from .reward import RewardModel

        kwargs = dict(model_kwargs)
        kwargs.setdefault("masks", masks_dir is not None)
        self.model = RewardModel(**kwargs)
        self.masks_dir = masks_dir
        self.overlay_dir = overlay_dir

    def __call__(self, video: str) -> dict[str, Any]:
        """The JSON record of `video` (never raises for a bad video: the error is in the record)."""
        try:
            analysis = self.model.analyze(video)
        except Exception as e:  # defensive: analyze records pipeline errors itself
            from .result import RewardResult

            return RewardResult.failed(str(Path(video).resolve()), e).to_json()
        result = analysis.result
        record = result.to_json()
        if not result.ok:
            return record
        stem = Path(video).stem
        try:
            if self.masks_dir is not None and result.masks is not None:
                from .masks import save_masks

                path = save_masks(self.masks_dir, stem, result.masks, frame_indices=result.frame_indices)
                record["masks_file"] = str(path)
            if self.overlay_dir is not None:
                mp4, png = write_overlay(analysis, self.overlay_dir, stem, title=self.model.spec.task)
                record["overlay"], record["timeline"] = str(mp4), str(png)
        except Exception as e:  # the score stands; say what could not be written
            record["output_error"] = f"{type(e).__name__}: {e}"
        return record


def write_overlay(
    analysis: Any, directory: str | os.PathLike[str], stem: str, *, title: str = ""
) -> tuple[Path, Path]:
    """`<dir>/<stem>.mp4` overlay (entity masks, atom states, constraint timeline) and `<dir>/<stem>.png`."""
    import numpy as np

    from .viz import ConstraintTrace, render_overlay

    res, obs, video = analysis.result, analysis.observations, analysis.video
    traces = [
        ConstraintTrace(
            c.name, c.trace, c.satisfied, c.weight,
            witness_frames=np.asarray(c.witness.frames if c.witness else (), np.int64),
            entities=tuple(c.witness.entities) if c.witness else (),
        )
        for c in res.constraints
    ]
    masks = boxes = None
    if obs.masks is not None:
        masks = {e: obs.masks[i] for i, e in enumerate(obs.entities)}
    else:
        boxes = {e: obs.boxes[i] for i, e in enumerate(obs.entities)}
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    mp4, png = d / f"{stem}.mp4", d / f"{stem}.png"
    head = f"{stem}: {title}" if title else stem
    render_overlay(video.frames, traces=traces, reward=res.reward, out_video=mp4, out_png=png,
                   entity_masks=masks, entity_boxes=boxes, atom_signals=analysis.signals.values,
                   title=head, fps=video.fps)
    return mp4, png


_WORKER: VideoScorer | None = None


def _init_worker(model_kwargs: dict[str, Any], masks_dir: str | None, overlay_dir: str | None) -> None:
    global _WORKER
    _WORKER = VideoScorer(model_kwargs, masks_dir, overlay_dir)


def _score_in_worker(video: str) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(video)


def _run_pool(todo: list[str], model_kwargs: dict[str, Any], mdir: str | None, odir: str | None, workers: int,
              finish: Callable[[dict[str, Any]], None]) -> None:
    """Score `todo` in a spawn process pool. A worker that dies (e.g. a decoder segfault) breaks the pool;
    the unfinished videos then go through a one-worker pool in order, where the first unfinished video at
    the next crash is the culprit: it is recorded as failed and the rest go back to a full pool. So one
    poisonous file cannot take the others down with it."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    from .result import RewardResult

    ctx = multiprocessing.get_context("spawn")
    pending, isolate = list(todo), False
    while pending:
        broken: set[str] = set()
        n = 1 if isolate else min(workers, len(pending))
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker,
                                 initargs=(model_kwargs, mdir, odir)) as pool:
            futures = {pool.submit(_score_in_worker, s): s for s in pending}
            try:
                for fut in as_completed(futures):
                    s = futures[fut]
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        broken.add(s)
                        continue
                    except Exception as e:  # an error raised in the worker outside the recorded pipeline
                        rec = RewardResult.failed(_key(s), e).to_json()
                    finish(rec)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        left = [s for s in pending if s in broken]
        if left and isolate:  # one worker, in order: the first unfinished video crashed it
            msg = "WorkerCrash: the worker process died while scoring this video"
            finish(RewardResult.failed(_key(left[0]), msg).to_json())
            left = left[1:]
        pending, isolate = left, bool(left) and not isolate


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
    on_result: Callable[[dict[str, Any], bool], None] | None = None,
    scorer: VideoScorer | None = None,
) -> BatchSummary:
    """Score `videos` with `RewardModel(**model_kwargs)`; see the module docstring.

    `on_result(record, skipped)` is called in the main process for every video as it finishes (or is
    skipped by resume). `scorer` reuses an already built in-process scorer (workers <= 1).
    """
    if resume and out is None:
        raise ValueError("resume needs an output file (out=results.jsonl)")
    mdir = None if masks_dir is None else os.fspath(masks_dir)
    odir = None if overlay_dir is None else os.fspath(overlay_dir)
    done = resume_state(out, retry_failed=retry_failed) if resume and out is not None else {}
    summary = BatchSummary()
    todo: list[str] = []
    for v in videos:
        s = os.fspath(v)
        rec = done.get(_key(s))
        if rec is not None:
            summary.skipped.append(rec)
            if on_result:
                on_result(rec, True)
        else:
            todo.append(s)
    writer = JsonlWriter(out) if out is not None and todo else None
    try:
        def finish(rec: dict[str, Any]) -> None:
            if writer is not None:
                writer.write(rec)
            summary.scored.append(rec)
            if on_result:
                on_result(rec, False)

        if workers <= 1 or len(todo) <= 1:
            local = scorer or VideoScorer(model_kwargs, mdir, odir)
            for s in todo:
                finish(local(s))
        else:
            _run_pool(todo, model_kwargs, mdir, odir, workers, finish)
    finally:
        if writer is not None:
            writer.close()
    return summary


__all__ = [
    "VIDEO_EXTENSIONS",
    "BatchSummary",
    "JsonlWriter",
    "VideoScorer",
    "expand_inputs",
    "read_jsonl",
    "resume_state",
    "score_videos",
    "write_overlay",
]
