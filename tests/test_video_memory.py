"""Decoding follows the output size (#18 item 8): a 1080p clip read with `size=224` is decoded, sampled and
resized frame by frame (peak memory measured in a subprocess), the state grounder reads only the container
(frame count, size, rate) instead of decoding, and an image renamed .mp4 is a VideoError."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltlreward.errors import VideoError
from ltlreward.video import VideoWriter, read_video

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HD_FRAMES = 60  # 60 full 1080p RGB frames are 373 MB: a decoder that holds them all cannot pass
PEAK_BUDGET_MB = 160


@pytest.fixture(scope="module")
def hd_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hd") / "hd.mp4"
    yy, xx = np.mgrid[0:1080, 0:1920]
    with VideoWriter(path, 30.0) as w:  # one frame at a time: the test process never holds the clip
        for t in range(HD_FRAMES):
            f = np.zeros((1080, 1920, 3), np.uint8)
            f[..., 0] = (xx + 7 * t) % 256
            f[..., 1] = (yy + 3 * t) % 256
            w.write(f)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak RSS is read from /proc (Linux)")
def test_peak_memory_follows_the_output_size(hd_clip: Path) -> None:
    code = f"""
import json
import numpy as np, cv2, av, decord  # imports counted in the baseline
from ltlreward.video import read_video

def hwm_kb():  # peak RSS of this process (VmHWM is reset by exec; ru_maxrss would carry pytest's)
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1])

base = hwm_kb()
v = read_video({str(hd_clip)!r}, size=224)
print(json.dumps({{"shape": list(v.frames.shape), "delta_mb": (hwm_kb() - base) / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}).stdout
    got = json.loads(out)
    assert got["shape"] == [HD_FRAMES, 224, 398, 3]
    assert got["delta_mb"] < PEAK_BUDGET_MB, got


def test_frame_by_frame_decoding_equals_the_batched_one(hd_clip: Path) -> None:
    import ltlreward.video as video

    small = read_video(hd_clip, size=224, stride=3)
    assert small.meta["backend"] == "av" and small.meta["streamed"] is True
    batched = video.resize_frames(read_video(hd_clip, backend="decord", stride=3).frames, 224)
    np.testing.assert_array_equal(small.frames, batched)
    np.testing.assert_array_equal(small.frame_indices, np.arange(0, HD_FRAMES, 3))


def test_state_scoring_reads_the_container_instead_of_decoding(tmp_path: Path) -> None:
    from ltlreward import RewardModel

    video = tmp_path / "clip.mp4"
    shutil.copy(EXAMPLES / "pick_place_miss.mp4", video)
    shutil.copy(EXAMPLES / "pick_place_miss.sidecar.json", tmp_path / "clip.sidecar.json")
    spec = ROOT / "specs" / "pick_place.ltl"
    for grounder in ("state", "auto"):
        fast = RewardModel(spec, grounder=grounder).analyze(video)
        assert fast.video.meta["pixels"] is False and fast.video.meta["backend"] == "container"
        full = RewardModel(spec, grounder=grounder, pixels="always").analyze(video)
        assert full.video.meta.get("pixels", True) is True
        a, b = fast.result.to_json(), full.result.to_json()
        a.pop("timings"), b.pop("timings")
        assert a == b
        np.testing.assert_array_equal(fast.result.masks, full.result.masks)
    colour = RewardModel(spec, grounder="color").analyze(video)  # the colour grounder needs the pixels
    assert colour.video.meta.get("pixels", True) is True


def test_a_truncated_container_fails_without_decoding(tmp_path: Path) -> None:
    from ltlreward import RewardModel

    data = (EXAMPLES / "pick_place_miss.mp4").read_bytes()
    video = tmp_path / "cut.mp4"
    video.write_bytes(data[: len(data) * 2 // 3])
    shutil.copy(EXAMPLES / "pick_place_miss.sidecar.json", tmp_path / "cut.sidecar.json")
    res = RewardModel(ROOT / "specs" / "pick_place.ltl", grounder="state").score(video)
    assert res.error is not None and res.error.startswith("VideoError: ") and "cut.mp4" in res.error


@pytest.mark.parametrize("backend", ["auto", "decord", "av"])
def test_an_image_renamed_mp4_is_not_a_video(tmp_path: Path, backend: str) -> None:
    import cv2

    p = tmp_path / "photo.mp4"
    ok, png = cv2.imencode(".png", np.full((32, 48, 3), 90, np.uint8))
    assert ok
    p.write_bytes(png.tobytes())
    with pytest.raises(VideoError, match=r"photo\.mp4: a still image \(png\), not a video"):
        read_video(p, backend=backend)
