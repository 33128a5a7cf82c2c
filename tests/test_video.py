"""Video I/O: round trips through write_video/read_video on both backends, sampling, resizing, in-memory
inputs (arrays, torch tensors), hashing, and the VideoError cases (missing, non-video, empty, truncated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ltlreward.errors import VideoError
from ltlreward.video import (
    Video,
    as_video,
    as_videos,
    read_video,
    sample_indices,
    video_content_hash,
    write_video,
)

T, H, W, FPS = 20, 48, 64, 10.0
LEVEL = 12  # grey level per frame index in the index block: survives H.264 at crf 23 (error << 6)


def make_frames(n: int = T, h: int = H, w: int = W) -> np.ndarray:
    """Frames whose left 32 columns are a flat grey block = index*LEVEL and with a red square moving right."""
    f = np.zeros((n, h, w, 3), np.uint8)
    f[:, :, :32] = (np.arange(n, dtype=np.uint8) * LEVEL)[:, None, None, None]
    f[:, :, 32:] = (0, 0, 200)
    for t in range(n):
        x = 32 + (t % 3) * 8
        f[t, 16:32, x : x + 16] = (220, 30, 30)
    return f


def decoded_index(frames: np.ndarray) -> np.ndarray:
    """Frame index read back from the grey block (median of its inner region)."""
    block = frames[:, 8:-8, 4:28].reshape(len(frames), -1).astype(np.float64)
    return np.rint(np.median(block, axis=1) / LEVEL).astype(np.int64)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vid") / "clip.mp4"
    write_video(path, make_frames(), FPS)
    return path


@pytest.mark.parametrize("backend", ["auto", "decord", "av"])
def test_round_trip_each_backend(clip: Path, backend: str) -> None:
    v = read_video(clip, backend=backend)
    assert v.frames.shape == (T, H, W, 3) and v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(FPS) and v.source_fps == pytest.approx(FPS)
    assert v.n_source_frames == T and v.path == str(clip)
    np.testing.assert_array_equal(v.frame_indices, np.arange(T))
    np.testing.assert_array_equal(decoded_index(v.frames), np.arange(T))
    # the red square is where it was drawn (RGB order, not BGR)
    assert np.abs(v.frames[4, 24, 32 + 8 + 8].astype(int) - (220, 30, 30)).max() < 30
    assert v.meta["backend"] == ("decord" if backend == "auto" else backend)
    assert (v.n_frames, v.height, v.width) == (T, H, W)


@pytest.mark.parametrize("backend", ["decord", "av"])
def test_stride_and_max_frames(clip: Path, backend: str) -> None:
    v = read_video(clip, stride=3, max_frames=5, backend=backend)
    np.testing.assert_array_equal(v.frame_indices, [0, 3, 6, 9, 12])
    np.testing.assert_array_equal(decoded_index(v.frames), [0, 3, 6, 9, 12])
    assert v.fps == pytest.approx(FPS / 3) and v.n_source_frames == T


@pytest.mark.parametrize("backend", ["decord", "av"])
def test_target_fps(clip: Path, backend: str) -> None:
    v = read_video(clip, target_fps=4.0, backend=backend)  # step 2.5 source frames
    np.testing.assert_array_equal(v.frame_indices, [0, 2, 5, 7, 10, 12, 15, 17])
    np.testing.assert_array_equal(decoded_index(v.frames), v.frame_indices)
    assert v.fps == pytest.approx(4.0)
    np.testing.assert_allclose(v.timestamps, v.frame_indices / FPS)
    up = read_video(clip, target_fps=30.0, backend=backend)  # never upsampled
    assert up.n_frames == T and up.fps == pytest.approx(FPS)


def test_av_decodes_past_an_underestimated_frame_count(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers that do not declare a frame count (estimate 3 here) are still decoded to the end."""
    import ltlreward.video as vid

    monkeypatch.setattr(vid, "_probe", lambda p: vid._Probe(n_frames=3, fps=FPS, exact=False))
    v = read_video(clip, stride=3, backend="av")
    np.testing.assert_array_equal(v.frame_indices, np.arange(0, T, 3))
    np.testing.assert_array_equal(decoded_index(v.frames), np.arange(0, T, 3))
    assert v.n_source_frames == T and v.meta["truncated"] is False
    v = read_video(clip, target_fps=4.0, max_frames=3, backend="av")
    np.testing.assert_array_equal(v.frame_indices, [0, 2, 5])


def test_sample_indices_rules() -> None:
    idx, fps = sample_indices(10, 30.0, target_fps=10.0, max_frames=3)
    assert idx.tolist() == [0, 3, 6] and fps == pytest.approx(10.0)
    with pytest.raises(ValueError, match="either stride or target_fps"):
        sample_indices(10, 30.0, stride=2, target_fps=10.0)
    with pytest.raises(ValueError, match="stride"):
        sample_indices(10, 30.0, stride=0)


def test_resize_shortest_side_and_exact(clip: Path) -> None:
    v = read_video(clip, size=24)
    assert v.frames.shape == (T, 24, 32, 3)
    np.testing.assert_array_equal(decoded_index(np.repeat(np.repeat(v.frames, 2, 1), 2, 2)), np.arange(T))
    v2 = read_video(clip, size=(30, 40), max_frames=2)
    assert v2.frames.shape == (2, 30, 40, 3)


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    frames = make_frames(6, 47, 63)
    path = write_video(tmp_path / "odd.mp4", frames, 8.0)
    v = read_video(path)
    assert v.frames.shape == (6, 48, 64, 3)
    np.testing.assert_array_equal(decoded_index(v.frames), np.arange(6))


def test_float_array_and_video_passthrough() -> None:
    frames = make_frames(5)
    v = as_video(frames.astype(np.float32) / 255.0, fps=12.0)
    np.testing.assert_array_equal(v.frames, frames)
    assert v.fps == 12.0 and v.path is None and v.frame_indices.tolist() == [0, 1, 2, 3, 4]
    assert as_video(v) is v
    chw = np.moveaxis(frames, -1, 1)  # (T,3,H,W)
    np.testing.assert_array_equal(as_video(chw).frames, frames)
    with pytest.raises(ValueError, match="colour channel"):
        as_video(np.zeros((2, 5, 5, 5), np.uint8))
    with pytest.raises(TypeError):
        as_video(42)


def test_as_video_path(clip: Path) -> None:
    assert as_video(str(clip)).n_frames == T
    assert [v.n_frames for v in as_videos([clip, make_frames(3)])] == [T, 3]


def test_uint8_batch_array() -> None:
    batch = np.stack([make_frames(4), make_frames(4)[::-1]])
    vids = as_videos(batch, fps=5.0)
    assert len(vids) == 2 and vids[1].fps == 5.0
    np.testing.assert_array_equal(vids[1].frames, batch[1])


def test_torch_batch_bt_chw_float() -> None:
    torch = pytest.importorskip("torch")
    frames = np.stack([make_frames(4), make_frames(4)[:, ::-1]])  # (B,T,H,W,3)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 1, 4, 2, 3).float() / 255.0  # (B,T,C,H,W)
    vids = as_videos(x)
    assert len(vids) == 2
    for v, f in zip(vids, frames, strict=True):
        assert v.frames.dtype == np.uint8
        np.testing.assert_array_equal(v.frames, f)
    # single tensors, channel-first float and channel-last uint8
    np.testing.assert_array_equal(as_video(x[0]).frames, frames[0])
    np.testing.assert_array_equal(as_video(torch.from_numpy(frames[1].copy())).frames, frames[1])
    # out-of-range floats are clipped, not wrapped
    assert as_video(torch.full((1, 3, 2, 2), 1.7)).frames.max() == 255


def test_write_torch_and_hash(tmp_path: Path) -> None:
    frames = make_frames(4)
    p1 = write_video(tmp_path / "a.mp4", frames, 8.0)
    p2 = tmp_path / "b.mp4"
    p2.write_bytes(p1.read_bytes())
    assert video_content_hash(p1) == video_content_hash(str(p2))
    assert len(video_content_hash(p1)) == 64
    h = video_content_hash(frames)
    assert h == video_content_hash(as_video(frames))
    assert h != video_content_hash(frames.reshape(4, W, H, 3))  # same bytes, other shape
    changed = frames.copy()
    changed[0, 0, 0, 0] ^= 1
    assert h != video_content_hash(changed)


def test_mp4v_fallback_without_libx264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import av

    from ltlreward.video import VideoWriter

    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"libx264"})
    w = VideoWriter(tmp_path / "fallback.mp4", FPS)
    w.write(make_frames(6))
    w.close()
    assert w.codec == "mp4v" and w.n_written == 6
    v = read_video(tmp_path / "fallback.mp4")
    assert v.n_frames == 6
    np.testing.assert_array_equal(decoded_index(v.frames), np.arange(6))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"nothere\.mp4: no such file"):
        read_video(tmp_path / "nothere.mp4")


@pytest.mark.parametrize("backend", ["auto", "decord", "av"])
def test_text_file_named_mp4(tmp_path: Path, backend: str) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a readable video"):
        read_video(p, backend=backend)


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.touch()
    with pytest.raises(VideoError, match=r"empty\.mp4: empty file"):
        read_video(p)


def test_truncated_to_30_percent_header_lost(tmp_path: Path, clip: Path) -> None:
    """A small clip cut to 30% loses part of its index: nothing decodes, VideoError names the file."""
    p = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    p.write_bytes(data[: int(len(data) * 0.3)])
    for backend in ("auto", "decord", "av"):
        with pytest.raises(VideoError, match=r"cut\.mp4"):
            read_video(p, backend=backend, allow_truncated=True)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames of noise (large packets, so the header survives a cut) with the index block."""
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (40, H, W, 3), dtype=np.uint8)
    f[:, :, :32] = make_frames(40)[:, :, :32] // 2  # LEVEL/2 steps: indices 0..39 fit in 0..234
    path = tmp_path_factory.mktemp("vid") / "noisy.mp4"
    write_video(path, f, FPS)
    return path


@pytest.mark.parametrize("backend", ["auto", "av"])
def test_truncated_raises_by_default_and_keeps_prefix_when_allowed(
    tmp_path: Path, noisy: Path, backend: str
) -> None:
    p = tmp_path / "half.mp4"
    data = noisy.read_bytes()
    p.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(VideoError, match=r"half\.mp4: truncated or corrupt: only \d+ of 40 frames decode"):
        read_video(p, backend=backend)
    v = read_video(p, backend=backend, allow_truncated=True)
    assert v.meta["truncated"] is True and v.meta["declared_frames"] == 40
    assert 1 <= v.n_frames < 40 and v.n_source_frames == v.n_frames
    np.testing.assert_array_equal(v.frame_indices, np.arange(v.n_frames))
    idx = np.rint(np.median(v.frames[:, 8:-8, 4:28].reshape(v.n_frames, -1), axis=1) / (LEVEL / 2))
    np.testing.assert_array_equal(idx, np.arange(v.n_frames))


def test_full_noisy_clip_is_not_truncated(noisy: Path) -> None:
    v = read_video(noisy, backend="av")
    assert v.n_frames == 40 and v.meta["truncated"] is False


def test_video_dataclass_validates() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Video(frames=np.zeros((2, 4, 4, 3), np.float32), fps=8.0)
    v = Video(frames=np.zeros((2, 4, 4, 3), np.uint8), fps=8.0)
    assert v.source_fps == 8.0 and v.n_source_frames == 2 and v.duration == pytest.approx(0.25)


def test_unknown_backend(clip: Path) -> None:
    with pytest.raises(ValueError, match="available: auto, decord, av"):
        read_video(clip, backend="ffmpeg")
