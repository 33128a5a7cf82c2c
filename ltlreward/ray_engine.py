"""`ltlreward score … --engine ray`: the Ray engine of the batch driver, for video sets beyond one machine.

    read paths ─▶ decode (CPU tasks) ─▶ ground (actor pool; GPU actors for model backends)
               ─▶ predicates (CPU tasks) ─▶ monitor + masks/overlays (CPU tasks, batched)
               ─▶ driver (ltlreward.batch): JSONL (+ Parquet)

`RayEngine` runs the stage steps of `ltlreward.pipeline` (`decode_step`, `ground_step`, `predicates_step`,
`monitor_all`) as a Ray Data pipeline and writes files through `ltlreward.outputs`, the same functions the
local engine calls, so every record is the same field by field (only `timings` differ). A video travels
between stages as one pickled pipeline value (`Decoded`, `Grounded`, `Observed` or `Failure`); decoded
frames are dropped after grounding unless overlays are wanted, observations after the predicates unless
masks or overlays are. Like every engine it only maps videos to records: resume, the JSONL log and the
summary are the driver's (`score_with_ray` = `batch.run_batch` with this engine), so a killed run resumes
with `resume=True`. A video whose stage raises is a failed record (the others go on); a video lost to a
dying worker process (e.g. a decoder segfault) is retried once on its own, then recorded as
"WorkerCrash: …". After the run the whole results file is also written as Parquet (`<out>.parquet`, one row
per video with `sat:<constraint>` / `rob:<constraint>` columns) when pyarrow is installed.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .batch import BatchSummary, OnResult, fingerprint, read_jsonl, record_key, run_batch
from .engine import Finish, Job
from .outputs import Outputs
from .pipeline import (
    Decoded,
    Failure,
    Grounded,
    Observed,
    Pipeline,
    VideoInfo,
    decode_step,
    error_text,
    ground_step,
    grounder_label,
    monitor_all,
    predicates_step,
)
from .reward import lost_record

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




# ------------------------------------------------------------------------------------------ stage tasks
class _NoGrounder:
    """Stands in for the grounder in CPU stages so no model is loaded there; grounding runs in the actors."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.provides: frozenset[str] = frozenset()

    def ground(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("grounding runs in the Ray actor pool, not in CPU stages")


_PIPELINES: dict[tuple[str, str], Pipeline] = {}  # per worker process: (run token, role) → Pipeline


def _pipeline(token: str, role: str, model_kwargs: dict[str, Any]) -> Pipeline:
    """The Pipeline of this run in this worker process, built once (CPU roles get no real grounder)."""
    key = (token, role)
    if key not in _PIPELINES:
        from .reward import RewardModel

        if len(_PIPELINES) > 8:  # pipelines of earlier runs in a long-lived worker
            _PIPELINES.clear()
        kwargs = dict(model_kwargs)
        if role == "cpu":
            kwargs["grounder"] = _NoGrounder(grounder_label(kwargs.get("grounder", "auto")))
        _PIPELINES[key] = RewardModel(**kwargs).pipeline
    return _PIPELINES[key]


def _load(blob: Any) -> Any:
    return pickle.loads(bytes(blob))


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=5)


def _object_array(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _decode_row(row: dict[str, Any], *, token: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """CPU task: stage 1 on one video."""
    pipe = _pipeline(token, "cpu", model_kwargs)
    path, vid = str(row["path"]), str(row["video"])
    # a relative path that this worker's cwd does not see: use the resolved one
    item = path if os.path.exists(path) or not os.path.exists(vid) else vid
    return {"video": vid, "state": _dump(decode_step(pipe, vid, item))}


class _GroundActor:
    """Actor: holds the real grounder (a model backend loads its weights once per actor) and grounds a batch."""

    def __init__(self, token: str, model_kwargs: dict[str, Any], keep_frames: bool) -> None:
        self.pipe, self.init_error = None, ""
        try:  # a grounder that cannot be built (missing weights, bad option) fails every video, not the run
            self.pipe = _pipeline(token, "ground", model_kwargs)
        except Exception as e:
            self.init_error = error_text(e)
        self.keep_frames = keep_frames

    def ground(self, d: Decoded | Failure) -> Grounded | Failure:
        """Stage 2 on one video; the frames are dropped afterwards unless overlays need them."""
        if self.pipe is None and isinstance(d, Decoded):
            return Failure(d.vid, self.init_error, "", d.timings)
        g = d if self.pipe is None else ground_step(self.pipe, d)
        if isinstance(g, Grounded) and not self.keep_frames:
            g = replace(g, video=VideoInfo.of(g.video))
        return g

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        states = [_dump(self.ground(_load(blob))) for blob in batch["state"]]
        return {"video": np.asarray(batch["video"]), "state": _object_array(states)}


def _predicates_row(row: dict[str, Any], *, token: str, model_kwargs: dict[str, Any],
                    keep_obs: bool) -> dict[str, Any]:
    """CPU task: stage 3 on one grounded video. The observations (entity masks: as large as the frames)
    travel on only when violation masks or overlays need them."""
    o = predicates_step(_pipeline(token, "cpu", model_kwargs), _load(row["state"]))
    if isinstance(o, Observed) and not keep_obs:
        o = replace(o, observations=None)
    return {"video": row["video"], "state": _dump(o)}


def _monitor_batch(batch: dict[str, np.ndarray], *, token: str, model_kwargs: dict[str, Any],
                   outputs: Outputs) -> dict[str, np.ndarray]:
    """CPU task: stage 4 on a batch (one vectorised call per frame rate), then masks / overlays and records."""
    pipe = _pipeline(token, "cpu", model_kwargs)
    analyses = monitor_all(pipe, [_load(b) for b in batch["state"]])
    records = [json.dumps(outputs.record(a, title=pipe.spec.task), ensure_ascii=False) for a in analyses]
    return {"video": np.asarray(batch["video"]), "record": _object_array(records)}


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


# ------------------------------------------------------------------------------------------ the engine
@dataclass
class RayEngine:
    """Scores videos as Ray Data pipelines on the cluster at `address` (see the module docstring)."""

    model_kwargs: dict[str, Any]  # RewardModel kwargs, `masks` set (Outputs.model_kwargs)
    outputs: Outputs = field(default_factory=Outputs)
    options: RayOptions = field(default_factory=RayOptions)
    address: str | None = None

    def run(self, todo: Sequence[Job], finish: Finish) -> None:
        """Score every job; a video whose blocks died twice (the second time alone) is a WorkerCrash record."""
        started = connect(self.address, self.options)
        try:
            items = [{"video": j.key, "path": j.path} for j in todo]
            seen = self._stream(items, isolate=False, finish=finish)
            lost = [it for it in items if it["video"] not in seen]
            if lost:  # blocks dropped with a dead worker: once more, one video per block and batch
                seen |= self._stream(lost, isolate=True, finish=finish)
            for it in items:
                if it["video"] not in seen:
                    finish(lost_record(self.model_kwargs, it["video"], CRASH_ERROR))
        finally:
            if started:
                import ray

                ray.shutdown()

    def _stream(self, items: list[dict[str, str]], *, isolate: bool, finish: Finish) -> set[str]:
        """Build and stream one Ray Data pipeline over `items`; call `finish` per record; return the keys seen."""
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        saved = (ctx.max_errored_blocks, ctx.enable_progress_bars, ctx.execution_options.preserve_order)
        ctx.max_errored_blocks = -1  # a block whose worker died is dropped (its videos are retried / recorded)
        ctx.enable_progress_bars = self.options.progress_bars
        ctx.execution_options.preserve_order = False
        seen: set[str] = set()
        try:
            for row in self._dataset(items, isolate).iter_rows():
                rec = json.loads(row["record"])
                seen.add(str(row["video"]))
                finish(rec)
        finally:
            ctx.max_errored_blocks, ctx.enable_progress_bars, ctx.execution_options.preserve_order = saved
        return seen

    def _dataset(self, items: list[dict[str, str]], isolate: bool) -> Any:
        """The four stages over `items` as one lazy Ray Dataset of {"video", "record"} rows."""
        import ray.data

        opts, plan = self.options, _plan(self.model_kwargs, self.options)
        ground_batch = 1 if isolate else plan["batch"]
        # monitor one block per call by default: a batch size above the block size makes Ray Data wait to
        # bundle rows across blocks, which stalled the pipeline here (48 colour videos: 45 s vs 7.4 s)
        monitor_batch = 1 if isolate else (None if opts.monitor_batch_size is None else max(1, opts.monitor_batch_size))
        kw = {"token": uuid.uuid4().hex, "model_kwargs": self.model_kwargs}
        overlays = self.outputs.overlay_dir is not None
        keep_obs = bool(self.model_kwargs.get("masks", True)) or overlays
        per_block = 1 if isolate else _videos_per_block(len(items), opts)
        ds = ray.data.from_items(items, override_num_blocks=-(-len(items) // per_block))
        with warnings.catch_warnings():  # retry limits have no named parameter yet (ray_remote_args, Ray < 2.64)
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map(_decode_row, fn_kwargs=kw, num_cpus=1, **_TASK_RETRIES)
            ds = ds.map_batches(_GroundActor, fn_constructor_kwargs={**kw, "keep_frames": overlays},
                                batch_size=ground_batch, batch_format="numpy",
                                compute=_actor_pool(plan["actors"], isolate), num_cpus=plan["num_cpus"],
                                num_gpus=plan["num_gpus"] or None, **_ACTOR_RETRIES)
            ds = ds.map(_predicates_row, fn_kwargs={**kw, "keep_obs": keep_obs}, num_cpus=1, **_TASK_RETRIES)
            ds = ds.map_batches(_monitor_batch, fn_kwargs={**kw, "outputs": self.outputs}, batch_size=monitor_batch,
                                batch_format="numpy", num_cpus=1, **_TASK_RETRIES)
        return ds


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
    on_result: OnResult | None = None,
    ray_address: str | None = None,
    options: RayOptions | None = None,
    parquet: str | os.PathLike[str] | None = "auto",
) -> BatchSummary:
    """Score `videos` with `RewardModel(**model_kwargs)` on Ray; same arguments and result as
    `batch.score_videos` (the driver `batch.run_batch` with a `RayEngine`), plus the cluster address,
    `RayOptions` and the Parquet path ("auto": `<out>.parquet` when pyarrow is installed; None: none)."""
    try:
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ImportError(f"the ray engine needs Ray Data: pip install 'ray[data]' ({e})") from None
    outputs = Outputs.of(masks_dir, overlay_dir)
    engine = RayEngine(outputs.model_kwargs(model_kwargs), outputs, options or RayOptions(), ray_address)
    fp = fingerprint(model_kwargs)
    summary = run_batch(videos, engine, out=out, resume=resume, retry_failed=retry_failed, on_result=on_result,
                        fingerprint=fp)
    pq_path = _parquet_path(out, parquet)
    if pq_path is not None and out is not None:  # this fingerprint's latest record of each video
        latest = {record_key(str(r["video"])): r for r in read_jsonl(out)
                  if isinstance(r.get("video"), str) and r.get("fingerprint") == fp}
        write_parquet(list(latest.values()), pq_path, _constraint_names(engine.model_kwargs))
    return summary


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


__all__ = ["CRASH_ERROR", "RayEngine", "RayOptions", "connect", "is_model_backend", "ray_available", "score_with_ray",
           "write_parquet"]
