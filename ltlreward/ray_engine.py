"""`ltlreward score … --engine ray`: the batch scorer as a Ray Data pipeline, for video sets beyond one machine.

    read paths ─▶ decode (CPU tasks) ─▶ ground (actor pool; GPU actors for model backends)
               ─▶ predicates (CPU tasks) ─▶ monitor + masks/overlays (CPU tasks, batched)
               ─▶ driver: JSONL (+ Parquet)

Each stage runs the same RewardModel code as the local engine (`ltlreward.batch`), so every record is the same
RewardResult JSON field by field (only `timings` differ). A video travels between stages as one pickled
`Work` (decoded frames are dropped after grounding unless overlays are wanted). The driver appends each
record to `out` as it arrives (flushed, like the local engine), so a killed run resumes with `resume=True`:
videos whose resolved path already has a record are skipped. A video whose stage raises is a failed record
(the others go on); a video lost to a dying worker process (e.g. a decoder segfault) is retried once on its
own, then recorded as "WorkerCrash: …". After the run the whole results file is also written as Parquet
(`<out>.parquet`, one row per video with `sat:<constraint>` / `rob:<constraint>` columns) when pyarrow is
installed.

Cluster: `ray_address` (or $RAY_ADDRESS) connects to a running cluster — every node needs ltlreward installed
(same image / venv) or `RayOptions.runtime_env={"py_modules": [...]}`, and the videos, sidecars and masks /
overlay directories must be on storage all nodes see. Without one, a local Ray is started with the machine's
CPUs and a small object store, and shut down at the end.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batch import BatchSummary, JsonlWriter, read_jsonl, resume_state

CPU_GROUNDERS = frozenset({"auto", "state", "sim", "color", "colour"})  # backends without a model to load
CRASH_ERROR = "WorkerCrash: a Ray worker process died while scoring this video (also when retried on its own)"


@dataclass
class RayOptions:
    """Knobs of the Ray engine; None means "choose from the cluster".

    `num_cpus` / `object_store_mb`: the local Ray started when no cluster is given. `ground_actors`: size of
    the grounding actor pool (default: `actors_per_gpu` per GPU for model backends on a cluster with GPUs,
    else CPUs / 2, or CPUs / 4 for a model on CPU). `ground_batch_size`: videos per grounding actor call
    (frames per model forward come from the model config, `[runtime] detector_batch` / `vlm_batch`).
    `monitor_batch_size`: videos per monitor call (default: one block). `videos_per_block`: videos per input
    block (default: about four blocks per CPU, 1 to 16 videos each: fewer, larger blocks cut Ray's per-task
    cost). `runtime_env`: passed to `ray.init` (e.g. `{"py_modules": [...]}` to ship the code to a cluster).
    """

    num_cpus: int | None = None
    object_store_mb: int = 512  # at 256 MB Ray Data's backpressure made the colour pipeline 5× slower here
    ground_actors: int | None = None
    actors_per_gpu: int = 1
    ground_batch_size: int = 4
    monitor_batch_size: int | None = None
    videos_per_block: int | None = None
    runtime_env: dict[str, Any] | None = None
    progress_bars: bool = False


# ------------------------------------------------------------------------------------------ stage helpers
class _NoGrounder:
    """Stands in for the grounder in CPU stages so no model is loaded there; grounding runs in the actors."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.provides: frozenset[str] = frozenset()

    def ground(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("grounding runs in the Ray actor pool, not in CPU stages")


@dataclass
class _VideoMeta:
    """What the monitor and mask stages read of a Video once its frames are no longer needed."""

    n_frames: int
    height: int
    width: int
    fps: float
    frame_indices: np.ndarray
    path: str | None = None


_MODELS: dict[tuple[str, str], Any] = {}  # per worker process: (run token, role) → RewardModel


def _model(token: str, role: str, model_kwargs: dict[str, Any]) -> Any:
    """The RewardModel of this run in this worker process, built once (CPU roles get no real grounder)."""
    key = (token, role)
    if key not in _MODELS:
        from .reward import RewardModel

        if len(_MODELS) > 8:  # models of earlier runs in a long-lived worker
            _MODELS.clear()
        kwargs = dict(model_kwargs)
        if role == "cpu":
            g = kwargs.get("grounder", "auto")
            kwargs["grounder"] = _NoGrounder(g if isinstance(g, str) else getattr(g, "name", "custom"))
        _MODELS[key] = RewardModel(**kwargs)
    return _MODELS[key]


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _load(blob: Any) -> Any:
    return pickle.loads(bytes(blob))


def _dump(work: Any) -> bytes:
    return pickle.dumps(work, protocol=5)


def _decode_row(row: dict[str, Any], *, token: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """CPU task: decode (sample, resize) one video into a `Work`; a decoding error is kept in it."""
    import time

    from .reward import STAGES, Work

    m = _model(token, "cpu", model_kwargs)
    path, vid = str(row["path"]), str(row["video"])
    w = Work(vid, None, {s: 0.0 for s in STAGES})
    t0 = time.perf_counter()
    try:  # a relative path that this worker's cwd does not see: use the resolved one
        w.video = m.stage_decode(path if os.path.exists(path) or not os.path.exists(vid) else vid)
    except Exception as e:
        w.error = _error_text(e)
    w.timings["decode"] = time.perf_counter() - t0
    return {"video": vid, "state": _dump(w)}


class _GroundActor:
    """Actor: holds the real grounder (a model backend loads its weights once per actor) and grounds a batch."""

    def __init__(self, token: str, model_kwargs: dict[str, Any], keep_frames: bool) -> None:
        self.model, self.init_error = None, None
        try:  # a grounder that cannot be built (missing weights, bad option) fails every video, not the run
            self.model = _model(token, "ground", model_kwargs)
        except Exception as e:
            self.init_error = _error_text(e)
        self.keep_frames = keep_frames

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m, states = self.model, []
        for blob in batch["state"]:
            w = _load(blob)
            if w.error is None and m is None:
                w.error = self.init_error
            elif w.error is None:
                try:
                    m.stage_ground(w)
                except Exception as e:
                    w.error = _error_text(e)
            if w.video is not None and not self.keep_frames:
                v = w.video
                w.video = _VideoMeta(v.n_frames, v.height, v.width, float(v.fps), np.asarray(v.frame_indices),
                                     v.path)
            states.append(_dump(w))
        return {"video": np.asarray(batch["video"]), "state": _object_array(states)}


def _object_array(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _predicates_row(row: dict[str, Any], *, token: str, model_kwargs: dict[str, Any],
                    keep_obs: bool) -> dict[str, Any]:
    """CPU task: predicate signals of one grounded video. The observations (entity masks: as large as the
    frames) travel on only when violation masks or overlays need them."""
    m = _model(token, "cpu", model_kwargs)
    w = _load(row["state"])
    if w.error is None:
        try:
            m.stage_predicates(w)
        except Exception as e:
            w.error = _error_text(e)
    if not keep_obs:
        w.obs = None
    return {"video": row["video"], "state": _dump(w)}


def _monitor_batch(batch: dict[str, np.ndarray], *, token: str, model_kwargs: dict[str, Any],
                   masks_dir: str | None, overlay_dir: str | None) -> dict[str, np.ndarray]:
    """CPU task: monitor a batch (one vectorised call per frame rate), then masks / overlays and JSON records."""
    from .result import RewardResult
    from .reward import Analysis

    m = _model(token, "cpu", model_kwargs)
    works = [_load(b) for b in batch["state"]]
    groups: dict[float, list[Any]] = {}
    for w in works:
        if w.error is None:
            groups.setdefault(round(float(w.video.fps), 6), []).append(w)
    for fps, group in groups.items():
        try:
            m.stage_monitor(group, fps)
        except Exception:  # as the local engine (one video per call): find which videos fail on their own
            for w in group:
                try:
                    m.stage_monitor([w], fps)
                except Exception as e:
                    w.error, w.result = _error_text(e), None
    records = []
    for w in works:
        if w.result is None:
            w.result = RewardResult.failed(w.vid, w.error or "unknown error", grounder=w.grounder or m.grounder_name,
                                           reward_mode=m.spec.reward, timings=w.timings)
        records.append(json.dumps(_record(Analysis(w.result, w.video, w.obs, w.signals), m, masks_dir,
                                          overlay_dir), ensure_ascii=False))
    return {"video": np.asarray(batch["video"]), "record": _object_array(records)}


def _record(analysis: Any, model: Any, masks_dir: str | None, overlay_dir: str | None) -> dict[str, Any]:
    """The JSON record of one video plus its mask / overlay files (as `batch.VideoScorer` writes them)."""
    from .batch import write_overlay

    result = analysis.result
    record = result.to_json()
    if not result.ok:
        return record
    stem = Path(result.video).stem
    try:
        if masks_dir is not None and result.masks is not None:
            from .masks import save_masks

            path = save_masks(masks_dir, stem, result.masks, frame_indices=result.frame_indices)
            record["masks_file"] = str(path)
        if overlay_dir is not None:
            mp4, png = write_overlay(analysis, overlay_dir, stem, title=model.spec.task)
            record["overlay"], record["timeline"] = str(mp4), str(png)
    except Exception as e:
        record["output_error"] = f"{type(e).__name__}: {e}"
    return record


# ------------------------------------------------------------------------------------------ cluster
def is_model_backend(grounder: Any) -> bool:
    """True when the grounder runs a neural model (it then gets GPU actors when the cluster has GPUs)."""
    if isinstance(grounder, str):
        return grounder.split("+")[0] not in CPU_GROUNDERS
    return "backends.models" in type(grounder).__module__ or getattr(grounder, "device", None) is not None


def _route_ray_messages_to_stderr() -> None:
    """Ray prints cluster messages (e.g. "a worker died") on the driver's stdout; send them to stderr so the
    stdout of `ltlreward score --json` stays one JSON object per line."""
    import ray._private.worker as rw

    original = getattr(rw, "print_to_stdstream", None)
    if original is None or getattr(original, "_ltlreward", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr._ltlreward = True  # type: ignore[attr-defined]
    rw.print_to_stdstream = to_stderr


def connect(ray_address: str | None = None, options: RayOptions | None = None) -> bool:
    """Connect to `ray_address` / $RAY_ADDRESS, or start a local Ray; True when this call started it."""
    import ray

    _route_ray_messages_to_stderr()
    if ray.is_initialized():
        return False
    opts = options or RayOptions()
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": True}
    if opts.runtime_env:
        common["runtime_env"] = opts.runtime_env
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(address="local", num_cpus=opts.num_cpus or os.cpu_count() or 1,
                 object_store_memory=max(80, opts.object_store_mb) * 1024 * 1024, **common)
    return True


def _plan(model_kwargs: dict[str, Any], opts: RayOptions) -> dict[str, Any]:
    """Actor count, resources per actor and batch sizes for the grounding stage on the current cluster."""
    import ray

    res = ray.cluster_resources()
    cpus, gpus = max(1, int(res.get("CPU", 1))), int(res.get("GPU", 0))
    if is_model_backend(model_kwargs.get("grounder", "auto")) and gpus > 0:
        per = max(1, opts.actors_per_gpu)
        return {"actors": opts.ground_actors or gpus * per, "num_gpus": 1.0 / per, "num_cpus": 1.0,
                "batch": max(1, opts.ground_batch_size)}
    # CPU backends: the pool size bounds their CPU use, so they reserve none (a reservation would starve the
    # decode tasks, or deadlock a 1-CPU cluster; a different request also keeps Ray Data from fusing decode
    # into the actors)
    per = 4 if is_model_backend(model_kwargs.get("grounder", "auto")) else 2  # a model on CPU runs many threads
    return {"actors": opts.ground_actors or max(1, cpus // per), "num_gpus": 0.0, "num_cpus": 0.0,
            "batch": max(1, opts.ground_batch_size)}


def _videos_per_block(n: int, opts: RayOptions) -> int:
    """Videos per input block: the option, else enough blocks for ~4 per CPU, 1–16 videos each (measured
    here: 48 videos on 2 CPUs took 5.1 s at 1 per block, 3.7 s at 4)."""
    import ray

    if opts.videos_per_block is not None:
        return max(1, opts.videos_per_block)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return int(min(16, max(1, n // (4 * cpus))))


def _run_pipeline(items: list[dict[str, str]], model_kwargs: dict[str, Any], *, masks_dir: str | None,
                  overlay_dir: str | None, opts: RayOptions, isolate: bool,
                  finish: Callable[[dict[str, Any]], None]) -> set[str]:
    """Build and stream one Ray Data pipeline over `items`; call `finish` per record; return the keys seen."""
    import ray.data

    token = uuid.uuid4().hex
    plan = _plan(model_kwargs, opts)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.max_errored_blocks, ctx.enable_progress_bars, ctx.execution_options.preserve_order)
    ctx.max_errored_blocks = -1  # a block whose worker died is dropped (its videos are retried / recorded)
    ctx.enable_progress_bars = opts.progress_bars
    ctx.execution_options.preserve_order = False
    seen: set[str] = set()
    try:
        ground_batch = 1 if isolate else plan["batch"]
        # monitor one block per call by default: a batch size above the block size makes Ray Data wait to
        # bundle rows across blocks, which stalled the pipeline here (48 colour videos: 45 s vs 7.4 s)
        monitor_batch = 1 if isolate else (None if opts.monitor_batch_size is None else max(1, opts.monitor_batch_size))
        kw = {"token": token, "model_kwargs": model_kwargs}
        per_block = 1 if isolate else _videos_per_block(len(items), opts)
        ds = ray.data.from_items(items, override_num_blocks=-(-len(items) // per_block))
        with warnings.catch_warnings():  # retry limits have no named parameter yet (ray_remote_args, Ray < 2.64)
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map(_decode_row, fn_kwargs=kw, num_cpus=1, **_TASK_RETRIES)
            ds = ds.map_batches(_GroundActor, fn_constructor_kwargs={**kw, "keep_frames": overlay_dir is not None},
                                batch_size=ground_batch, batch_format="numpy",
                                compute=_actor_pool(plan["actors"], isolate), num_cpus=plan["num_cpus"],
                                num_gpus=plan["num_gpus"] or None, **_ACTOR_RETRIES)
            keep_obs = bool(model_kwargs.get("masks", True)) or overlay_dir is not None
            ds = ds.map(_predicates_row, fn_kwargs={**kw, "keep_obs": keep_obs}, num_cpus=1, **_TASK_RETRIES)
            ds = ds.map_batches(_monitor_batch, fn_kwargs={**kw, "masks_dir": masks_dir, "overlay_dir": overlay_dir},
                                batch_size=monitor_batch, batch_format="numpy", num_cpus=1, **_TASK_RETRIES)
        for row in ds.iter_rows():
            rec = json.loads(row["record"])
            seen.add(str(row["video"]))
            finish(rec)
    finally:
        ctx.max_errored_blocks, ctx.enable_progress_bars, ctx.execution_options.preserve_order = saved
    return seen


# One retry per task (a lost node); a video that kills its worker twice is dropped with its block and then
# retried alone. Ray Data's default for actors is to retry forever, which a deterministic crash turns into a hang.
_TASK_RETRIES: dict[str, Any] = {"max_retries": 1, "retry_exceptions": False}
_ACTOR_RETRIES: dict[str, Any] = {"max_restarts": -1, "max_task_retries": 1}


def _actor_pool(n: int, isolate: bool) -> Any:
    """The grounding actor pool; when isolating crashes, actors take one video at a time, so an actor that
    dies takes only the video it was working on with it."""
    import ray.data

    if isolate:
        return ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, n), max_tasks_in_flight_per_actor=1)
    return ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, n))


# ------------------------------------------------------------------------------------------ results
def write_parquet(records: Sequence[dict[str, Any]], path: str | os.PathLike[str],
                  constraint_names: Sequence[str] = ()) -> Path:
    """One Parquet row per record: the scalar fields, `sat:<c>` / `rob:<c>` per constraint and the full JSON."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(dict.fromkeys([*constraint_names, *(c["name"] for r in records for c in r.get("constraints", []))]))
    cols: dict[str, list[Any]] = {k: [] for k in ("video", "reward", "satisfied", "reward_mode", "n_frames", "fps",
                                                  "height", "width", "grounder", "error", "schema_version")}
    for n in names:
        cols[f"sat:{n}"], cols[f"rob:{n}"] = [], []
    cols["record"] = []
    for r in records:
        for k in ("video", "reward", "satisfied", "reward_mode", "n_frames", "fps", "height", "width", "grounder",
                  "error", "schema_version"):
            cols[k].append(r.get(k))
        by = {c["name"]: c for c in r.get("constraints", [])}
        for n in names:
            c = by.get(n)
            cols[f"sat:{n}"].append(None if c is None else bool(c["satisfied"]))
            cols[f"rob:{n}"].append(None if c is None else float(c["robustness"]))
        cols["record"].append(json.dumps(r, ensure_ascii=False))
    types = {"video": pa.string(), "reward": pa.float64(), "satisfied": pa.bool_(), "reward_mode": pa.string(),
             "n_frames": pa.int64(), "fps": pa.float64(), "height": pa.int64(), "width": pa.int64(),
             "grounder": pa.string(), "error": pa.string(), "schema_version": pa.int64(), "record": pa.string()}
    table = pa.table({k: pa.array(v, type=types.get(k, pa.bool_() if k.startswith("sat:") else pa.float64()))
                      for k, v in cols.items()})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, p)
    return p


def _parquet_path(out: str | os.PathLike[str] | None, parquet: str | os.PathLike[str] | None) -> Path | None:
    if parquet is None or (out is None and parquet == "auto"):
        return None
    if parquet != "auto":
        return Path(parquet)
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return None
    return Path(os.fspath(out)).with_suffix(".parquet")


def _key(video: str) -> str:
    return video if video.startswith("<") else str(Path(video).resolve())


# ------------------------------------------------------------------------------------------ entry point
def score_with_ray(
    videos: Sequence[str | os.PathLike[str]],
    model_kwargs: dict[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    masks_dir: str | os.PathLike[str] | None = None,
    overlay_dir: str | os.PathLike[str] | None = None,
    on_result: Callable[[dict[str, Any], bool], None] | None = None,
    ray_address: str | None = None,
    options: RayOptions | None = None,
    parquet: str | os.PathLike[str] | None = "auto",
) -> BatchSummary:
    """Score `videos` with `RewardModel(**model_kwargs)` on Ray; same arguments and result as
    `batch.score_videos` (see the module docstring), plus the cluster address, `RayOptions` and the Parquet
    path ("auto": `<out>.parquet` when pyarrow is installed; None: none)."""
    try:
        import ray.data
    except ImportError as e:
        raise ImportError(f"the ray engine needs Ray Data: pip install 'ray[data]' ({e})") from None
    if resume and out is None:
        raise ValueError("resume needs an output file (out=results.jsonl)")
    opts = options or RayOptions()
    mdir = None if masks_dir is None else os.fspath(masks_dir)
    odir = None if overlay_dir is None else os.fspath(overlay_dir)
    kwargs = dict(model_kwargs)
    kwargs.setdefault("masks", mdir is not None)
    done = resume_state(out, retry_failed=retry_failed) if resume and out is not None else {}
    summary = BatchSummary()
    todo: dict[str, str] = {}  # resolved key → path as given
    for v in videos:
        s = os.fspath(v)
        k = _key(s)
        if k in done:
            summary.skipped.append(done[k])
            if on_result:
                on_result(done[k], True)
        elif k not in todo:
            todo[k] = s
    writer = JsonlWriter(out) if out is not None and todo else None
    started = False
    try:
        def finish(rec: dict[str, Any]) -> None:
            if writer is not None:
                writer.write(rec)
            summary.scored.append(rec)
            if on_result:
                on_result(rec, False)

        if todo:
            started = connect(ray_address, opts)
            items = [{"video": k, "path": s} for k, s in todo.items()]
            seen = _run_pipeline(items, kwargs, masks_dir=mdir, overlay_dir=odir, opts=opts, isolate=False,
                                 finish=finish)
            lost = [it for it in items if it["video"] not in seen]
            if lost:  # blocks dropped with a dead worker: once more, one video per block and batch
                seen |= _run_pipeline(lost, kwargs, masks_dir=mdir, overlay_dir=odir, opts=opts, isolate=True,
                                      finish=finish)
            reward_mode = _reward_mode(kwargs)
            from .result import RewardResult

            for it in items:
                if it["video"] not in seen:
                    finish(RewardResult.failed(it["video"], CRASH_ERROR, grounder=_grounder_name(kwargs),
                                               reward_mode=reward_mode).to_json())
    finally:
        if writer is not None:
            writer.close()
        if started:
            import ray

            ray.shutdown()
    pq_path = _parquet_path(out, parquet)
    if pq_path is not None and out is not None:
        recs = list({_key(str(r["video"])): r for r in read_jsonl(out) if isinstance(r.get("video"), str)}.values())
        write_parquet(recs, pq_path, _constraint_names(kwargs))
    return summary


def _grounder_name(model_kwargs: dict[str, Any]) -> str:
    g = model_kwargs.get("grounder", "auto")
    return g if isinstance(g, str) else getattr(g, "name", "custom")


def _reward_mode(model_kwargs: dict[str, Any]) -> str:
    from .reward import load_task_spec

    try:
        return load_task_spec(model_kwargs["spec"]).reward
    except Exception:
        return "weighted_mean"


def _constraint_names(model_kwargs: dict[str, Any]) -> list[str]:
    from .reward import load_task_spec

    try:
        return [c.name for c in load_task_spec(model_kwargs["spec"]).constraints]
    except Exception:
        return []


def ray_available() -> bool:
    """Whether Ray Data can be imported here (the engine's optional dependency)."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["CRASH_ERROR", "RayOptions", "connect", "is_model_backend", "ray_available", "score_with_ray",
           "write_parquet"]
