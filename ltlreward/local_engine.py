"""The local engine of the batch driver: videos scored in this process, or in a spawn process pool.

An engine only maps videos to records (`run(todo, finish)`); resume, the JSONL log and the summary belong to
the driver (ltlreward.batch). Each process builds its RewardModel once (`VideoScorer`) and scores one video
per call: stages 1–4 of ltlreward.pipeline, then the files of ltlreward.outputs. A video that fails is a
record with `error` set and the others go on; a worker process that dies (a decoder segfault) is traced to
its video ("WorkerCrash: …", see `LocalEngine`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from .engine import Finish, Job
from .outputs import Outputs
from .pipeline import Failure, error_text, video_id
from .reward import lost_record

CRASH_ERROR = "WorkerCrash: the worker process died while scoring this video"


class VideoScorer:
    """Scores one video at a time with a RewardModel built once, writing masks / overlays when asked."""

    def __init__(self, model_kwargs: dict[str, Any], masks_dir: str | None = None,
                 overlay_dir: str | None = None) -> None:
        from .reward import RewardModel

        self.outputs = Outputs.of(masks_dir, overlay_dir)
        self.model = RewardModel(**self.outputs.model_kwargs(model_kwargs))

    def __call__(self, video: str) -> dict[str, Any]:
        """The JSON record of `video` (never raises for a bad video: the error is in the record)."""
        try:
            analysis = self.model.analyze(video)
        except Exception as e:  # defensive: the stages record their own errors
            analysis = self.model.pipeline.failed(Failure(video_id(video, 0), error_text(e)))
        return self.outputs.record(analysis, title=self.model.spec.task)


@dataclass
class LocalEngine:
    """Scores in this process (`workers` <= 1, or one video), else in a spawn-context pool of `workers`
    processes (safe with decoders and torch). `scorer` reuses an already built in-process scorer."""

    model_kwargs: dict[str, Any]
    outputs: Outputs
    workers: int = 1
    scorer: VideoScorer | None = None

    def run(self, todo: Sequence[Job], finish: Finish) -> None:
        """Score every job, calling `finish(record)` in this process as each video ends."""
        if self.workers <= 1 or len(todo) <= 1:
            local = self.scorer or VideoScorer(self.model_kwargs, self.outputs.masks_dir, self.outputs.overlay_dir)
            for job in todo:
                finish(local(job.path))
            return
        self._pool(list(todo), finish)

    def _pool(self, todo: list[Job], finish: Finish) -> None:
        """A worker that dies breaks the pool; the unfinished videos then go through a one-worker pool in
        order, where the first unfinished video at the next crash is the culprit: it is recorded as failed
        and the rest go back to a full pool. So one poisonous file cannot take the others down with it."""
        pending, isolate = todo, False
        while pending:
            broken = self._pool_round(pending, 1 if isolate else min(self.workers, len(pending)), finish)
            left = [j for j in pending if j.key in broken]
            if left and isolate:  # one worker, in order: the first unfinished video crashed it
                finish(lost_record(self.model_kwargs, left[0].key, CRASH_ERROR))
                left = left[1:]
            pending, isolate = left, bool(left) and not isolate

    def _pool_round(self, jobs: list[Job], n: int, finish: Finish) -> set[str]:
        """One pool of `n` processes over `jobs`; the keys of the videos lost to a broken pool."""
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        broken: set[str] = set()
        initargs = (self.model_kwargs, self.outputs.masks_dir, self.outputs.overlay_dir)
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                 initargs=initargs) as pool:
            futures = {pool.submit(_score_in_worker, j.path): j for j in jobs}
            try:
                for fut in as_completed(futures):
                    job = futures[fut]
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        broken.add(job.key)
                        continue
                    except Exception as e:  # an error raised in the worker outside the recorded pipeline
                        rec = lost_record(self.model_kwargs, job.key, e)
                    finish(rec)
            except BaseException:  # an interrupt: the videos in flight are given up, not waited for
                _kill_workers(pool)
                raise
        return broken


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: kill the worker processes (SIGKILL) and cancel what has not started."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle on them; shutdown drops it
    for proc in procs:
        with contextlib.suppress(OSError, ValueError):  # already gone
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    # let the pool's manager thread finish closing its wake-up pipe now: CPython 3.11's exit hook otherwise
    # races it and prints "Bad file descriptor" from threading._shutdown after our clean interrupt message
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=1.0)


_WORKER: VideoScorer | None = None
_PARENT_POLL_S = 0.2


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as its parent is gone (it is re-parented, so its parent pid changes)."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _die_with_parent() -> None:
    """Make this worker process end with its parent: see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="ltlreward-parent-watch", daemon=True).start()


def _init_worker(model_kwargs: dict[str, Any], masks_dir: str | None, overlay_dir: str | None) -> None:
    global _WORKER
    _die_with_parent()
    _WORKER = VideoScorer(model_kwargs, masks_dir, overlay_dir)


def _score_in_worker(video: str) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(video)


__all__ = ["CRASH_ERROR", "LocalEngine", "VideoScorer"]
