"""The Ray Data engine in local mode: the same records as the local engine field by field (timings excepted),
resume skips videos already in the results file, a corrupt file fails alone, a worker that dies on one video
costs only that video, and the Parquet copy of the results."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (pip install 'ray[data]')")
pytest.importorskip("ray.data", reason="the Ray engine needs ray[data] (pip install 'ray[data]')")

from ltlreward.batch import read_jsonl, score_videos  # noqa: E402
from ltlreward.ray_engine import CRASH_ERROR, RayOptions, is_model_backend, score_with_ray, write_parquet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HANDOVER = ("handover_success", "handover_drop", "handover_no_release", "handover_wrong_order")
PICK = ("pick_place_success", "pick_place_miss", "pick_place_drop")
OPTS = RayOptions(ground_batch_size=2, monitor_batch_size=3)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not all((EXAMPLES / f"{n}.mp4").is_file() for n in (*HANDOVER, *PICK)), reason="shipped examples not present"
)]


@pytest.fixture(scope="module")
def ray_local() -> Any:
    """One local Ray for the module (starting one takes seconds); score_with_ray reuses it."""
    if ray.is_initialized():
        ray.shutdown()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def _copy(dest: Path, names: tuple[str, ...]) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        shutil.copy(EXAMPLES / f"{n}.mp4", dest / f"{n}.mp4")
        shutil.copy(EXAMPLES / f"{n}.sidecar.json", dest / f"{n}.sidecar.json")
        out.append(dest / f"{n}.mp4")
    return out


def _corrupt(dest: Path) -> Path:
    p = dest / "broken.mp4"
    p.write_bytes((EXAMPLES / "pick_place_success.mp4").read_bytes()[:3000])  # header only: no frames
    return p


def _by_video(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["video"]: {k: v for k, v in r.items() if k != "timings"} for r in records}


@pytest.mark.parametrize(("spec", "names", "grounder"), [
    ("pick_place.ltl", PICK, "auto"),  # sidecars → state backend; plus a corrupt file
    ("handover.ltl", HANDOVER, "color"),  # pixels through the actor pool
])
def test_same_records_as_local_engine(ray_local: Any, tmp_path: Path, spec: str, names: tuple[str, ...],
                                      grounder: str) -> None:
    videos = _copy(tmp_path / "v", names)
    if grounder == "auto":
        videos.insert(1, _corrupt(tmp_path / "v"))
    kw = {"spec": str(ROOT / "specs" / spec), "grounder": grounder}
    masks_local, masks_ray = tmp_path / "ml", tmp_path / "mr"
    local = score_videos(videos, kw, out=tmp_path / "local.jsonl", masks_dir=masks_local)
    seen: list[tuple[str, bool]] = []
    remote = score_with_ray(videos, kw, out=tmp_path / "ray.jsonl", masks_dir=masks_ray, options=OPTS,
                            on_result=lambda r, skipped: seen.append((r["video"], skipped)))
    a, b = _by_video(read_jsonl(tmp_path / "local.jsonl")), _by_video(read_jsonl(tmp_path / "ray.jsonl"))
    assert len(a) == len(videos) == len(b)
    assert sorted(seen) == sorted((str(v.resolve()), False) for v in videos)
    for video, rec in a.items():
        other = dict(b[video])
        if "masks_file" in rec:  # same file name, in the other engine's directory
            assert Path(other.pop("masks_file")).name == Path(rec.pop("masks_file")).name
        assert other.keys() == rec.keys(), video
        for field in rec:
            assert other[field] == rec[field], (video, field)
    assert {r["video"] for r in remote.failed} == {r["video"] for r in local.failed}
    assert remote.exit_code == local.exit_code
    failed = [r for r in b.values() if r["error"]]
    if grounder == "auto":
        assert len(failed) == 1 and failed[0]["video"].endswith("broken.mp4")
        assert failed[0]["error"].startswith("VideoError") and failed[0]["reward"] is None
        good = [r for r in b.values() if not r["error"]]
        assert sorted(r["reward"] for r in good) == [0.4, 0.8, 1.0]
        assert {p.name for p in masks_ray.iterdir()} == {p.name for p in masks_local.iterdir()}
    else:
        assert not failed and sorted(r["reward"] for r in b.values()) == [0.2, 0.6, 0.8, 1.0]
        assert {r["grounder"] for r in b.values()} == {"color"}


def test_resume_skips_videos_already_scored(ray_local: Any, tmp_path: Path) -> None:
    videos = _copy(tmp_path / "v", PICK)
    out = tmp_path / "r.jsonl"
    kw = {"spec": str(ROOT / "specs" / "pick_place.ltl")}
    first = score_with_ray(videos[:2], kw, out=out, options=OPTS, parquet=None)
    assert len(first.scored) == 2 and not first.skipped
    # mark the stored records: a resumed run must hand them back, not score those videos again
    recs = read_jsonl(out)
    for r in recs:
        r["reward"] = -1.0
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    again = score_with_ray([*videos, videos[0]], kw, out=out, resume=True, options=OPTS, parquet=None)
    assert [r["video"] for r in again.scored] == [str(videos[2].resolve())]
    assert sorted(r["video"] for r in again.skipped) == sorted(str(v.resolve()) for v in [*videos[:2], videos[0]])
    assert all(r["reward"] == -1.0 for r in again.skipped)
    final = read_jsonl(out)
    assert len(final) == 3 and len({r["video"] for r in final}) == 3
    # nothing left to do: no Ray work at all, every video skipped
    done = score_with_ray(videos, kw, out=out, resume=True, options=OPTS, parquet=None)
    assert not done.scored and len(done.skipped) == 3 and len(read_jsonl(out)) == 3
    with pytest.raises(ValueError, match="resume needs an output file"):
        score_with_ray(videos, kw, resume=True)


def test_grounder_that_cannot_be_built_fails_each_video(ray_local: Any, tmp_path: Path) -> None:
    videos = _copy(tmp_path / "v", PICK[:2])
    kw = {"spec": str(ROOT / "specs" / "pick_place.ltl"), "grounder": "color", "grounder_options": {"bogus": 1}}
    res = score_with_ray(videos, kw, options=OPTS, parquet=None)
    assert len(res.scored) == 2 and res.exit_code == 1
    for r in res.scored:
        assert r["error"].startswith("GroundingError: bad options for grounder 'color'") and r["grounder"] == "color"


def test_parquet_copy_of_results(ray_local: Any, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    videos = _copy(tmp_path / "v", PICK[:2])
    out = tmp_path / "r.jsonl"
    score_with_ray(videos, {"spec": str(ROOT / "specs" / "pick_place.ltl")}, out=out, options=OPTS)
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    recs = _by_video(read_jsonl(out))
    assert len(table) == 2
    for row in table:
        rec = recs[row["video"]]
        assert row["reward"] == rec["reward"] and row["satisfied"] == rec["satisfied"]
        for c in rec["constraints"]:
            assert row[f"sat:{c['name']}"] == c["satisfied"] and row[f"rob:{c['name']}"] == c["robustness"]
        assert {k: v for k, v in json.loads(row["record"]).items() if k != "timings"} == rec


def test_write_parquet_failed_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    recs = [{"video": "/a.mp4", "reward": None, "satisfied": False, "constraints": [], "error": "VideoError: x"},
            {"video": "/b.mp4", "reward": 0.5, "satisfied": False, "error": None,
             "constraints": [{"name": "c1", "satisfied": False, "robustness": -0.25}]}]
    rows = pq.read_table(write_parquet(recs, tmp_path / "x.parquet", ["c0"])).to_pylist()
    assert [r["reward"] for r in rows] == [None, 0.5]
    assert [r["sat:c1"] for r in rows] == [None, False] and [r["rob:c1"] for r in rows] == [None, -0.25]
    assert [r["sat:c0"] for r in rows] == [None, None] and rows[0]["error"] == "VideoError: x"


def test_model_backend_detection() -> None:
    assert not any(is_model_backend(g) for g in ("auto", "state", "color", "colour", "sim"))
    assert all(is_model_backend(g) for g in ("gdino-sam2", "sam3", "vlm", "gdino-sam2+vlm", "owlv2+vlm"))
    assert not is_model_backend(_CrashingGrounder())


class _CrashingGrounder:
    """The state backend, except that the worker process dies (as on a decoder segfault) on 'poison' videos."""

    name = "crashing"
    provides = frozenset()

    def ground(self, video: Any, entities: Any, *, quoted: Any = (), sidecar: Any = None) -> Any:
        from ltlreward.grounding import get_grounder

        if "poison" in Path(str(video.path)).name:
            os._exit(3)
        return get_grounder("state").ground(video, entities, quoted=quoted, sidecar=sidecar)


def test_dying_worker_costs_only_its_video(ray_local: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    videos = _copy(tmp_path / "v", PICK)
    poison = tmp_path / "v" / "poison.mp4"
    shutil.copy(videos[0], poison)
    shutil.copy(tmp_path / "v" / "pick_place_success.sidecar.json", tmp_path / "v" / "poison.sidecar.json")
    kw = {"spec": str(ROOT / "specs" / "pick_place.ltl"), "grounder": _CrashingGrounder()}
    out = tmp_path / "r.jsonl"
    res = score_with_ray([videos[0], poison, *videos[1:]], kw, out=out, options=RayOptions(ground_batch_size=4))
    recs = _by_video(read_jsonl(out))
    assert len(recs) == 4
    assert recs[str(poison.resolve())]["error"] == CRASH_ERROR
    assert sorted(recs[str(v.resolve())]["reward"] for v in videos) == [0.4, 0.8, 1.0]
    assert res.exit_code == 1 and len(res.failed) == 1
    assert capfd.readouterr().out == ""  # Ray's "worker died" messages go to stderr: --json stdout stays clean


def test_grounding_plan_from_cluster_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltlreward import ray_engine

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 2.0})
    plan = ray_engine._plan({"grounder": "gdino-sam2"}, RayOptions(ground_batch_size=3))
    assert plan == {"actors": 2, "num_gpus": 1.0, "num_cpus": 1.0, "batch": 3}
    plan = ray_engine._plan({"grounder": "sam3"}, RayOptions(actors_per_gpu=2))
    assert (plan["actors"], plan["num_gpus"]) == (4, 0.5)
    assert ray_engine._plan({"grounder": "color"}, RayOptions())["num_gpus"] == 0.0
    assert ray_engine._plan({"grounder": "color"}, RayOptions())["actors"] == 4
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})  # no GPU: model backends on CPU actors
    assert ray_engine._plan({"grounder": "vlm"}, RayOptions(ground_actors=3)) == {
        "actors": 3, "num_gpus": 0.0, "num_cpus": 0.0, "batch": 4}
