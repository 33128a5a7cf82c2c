"""Video I/O: decode files (decord, PyAV fallback) with frame sampling and resizing, accept the in-memory
arrays/tensors trainers pass, write H.264 mp4s, and hash video content for caching.

Every decoding failure (missing, unreadable, corrupt, truncated, zero-frame, non-video, a still image under a
video name) is a `VideoError` naming the file and the cause. With `allow_truncated=True` a truncated file
whose first frames still decode returns those frames instead, with `meta["truncated"] = True`.

Memory follows the output: a clip whose sampled frames would take more than `BATCH_BYTES` at full size is
decoded, sampled and resized one frame at a time (PyAV, `meta["streamed"]`); small clips go through decord's
faster batched call. `pixels=False` reads only the container (frame count from its packets, size, rate) and
returns a Video whose frames are a zero-stride placeholder (`meta["pixels"] = False`): for grounders that read
no pixels (the state grounder), it skips decoding altogether. FFmpeg's own log lines are silenced (the
errors are ours, with the file name).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VideoError

__all__ = [
    "Video",
    "VideoWriter",
    "as_video",
    "as_videos",
    "read_video",
    "sample_indices",
    "video_content_hash",
    "write_video",
]

BACKENDS = ("auto", "decord", "av")
DEFAULT_FPS = 8.0  # frame rate assumed for in-memory frames and for files that declare none
BATCH_BYTES = 64 << 20  # full-size sampled frames up to this size are decoded in one batched call (decord)


@dataclass
class Video:
    """Decoded RGB frames plus where they came from (source frame indices and rates)."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float  # frame rate of `frames` (after sampling)
    path: str | None = None  # source file, None for in-memory frames
    frame_indices: np.ndarray | None = None  # (T,) int64 indices into the source's frames; default arange(T)
    source_fps: float | None = None  # frame rate of the source; default fps
    n_source_frames: int | None = None  # frames in the source (decoded count if truncated); default T
    meta: dict[str, Any] = field(default_factory=dict)  # backend, truncated, fallback_reason, …

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3):
            got = f"{getattr(f, 'dtype', type(f).__name__)} {getattr(f, 'shape', '')}"
            raise ValueError(f"Video.frames must be a uint8 (T,H,W,3) array, got {got}")
        if self.frame_indices is None:
            self.frame_indices = np.arange(len(f), dtype=np.int64)
        else:
            self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
            if self.frame_indices.shape != (len(f),):
                raise ValueError(
                    f"frame_indices has shape {self.frame_indices.shape}, expected ({len(f)},)"
                )
        if self.source_fps is None:
            self.source_fps = float(self.fps)
        if self.n_source_frames is None:
            self.n_source_frames = len(f)

    @property
    def n_frames(self) -> int:
        """Number of (sampled) frames T."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Frame height H in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Frame width W in pixels."""
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Seconds covered by the sampled frames (T / fps)."""
        return self.n_frames / self.fps if self.fps > 0 else 0.0

    @property
    def name(self) -> str:
        """File name (or '<memory>') for messages and output names."""
        return Path(self.path).name if self.path else "<memory>"

    @property
    def timestamps(self) -> np.ndarray:
        """(T,) float64 seconds of each frame in the source video."""
        return self.frame_indices / float(self.source_fps or self.fps)


# ---------------------------------------------------------------------------------------------- sampling


def sample_indices(
    n: int,
    source_fps: float,
    *,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Source frame indices to keep and the resulting fps: every `stride`-th frame, or frames spaced so the
    rate is ≈ `target_fps` (never above the source rate), then the first `max_frames` of them."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if target_fps is not None and stride != 1:
        raise ValueError("give either stride or target_fps, not both")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if target_fps is not None:
        if target_fps <= 0:
            raise ValueError(f"target_fps must be > 0, got {target_fps}")
        step = max(1.0, source_fps / target_fps)
        count = math.ceil(n / step - 1e-9)
        idx = np.floor(np.arange(count) * step + 1e-6).astype(np.int64)
        fps = source_fps / step
    else:
        idx = np.arange(0, n, stride, dtype=np.int64)
        fps = source_fps / stride
    idx = idx[idx < n]
    if max_frames is not None:
        idx = idx[:max_frames]
    return idx, float(fps)


def _target_size(h: int, w: int, size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """(H, W) to resize to: `size` as (H, W), or an int for the shortest side keeping the aspect ratio."""
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        scale = size / min(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))
    th, tw = (int(s) for s in size)
    if th < 1 or tw < 1:
        raise ValueError(f"size must be positive, got {size}")
    return th, tw


def resize_frames(frames: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """Resize (T,H,W,3) uint8 frames to (H,W) or shortest side `size` with area interpolation (cv2)."""
    t, h, w = frames.shape[:3]
    hw = _target_size(h, w, size)
    if hw is None or hw == (h, w):
        return frames
    import cv2

    interp = cv2.INTER_AREA if hw[0] * hw[1] <= h * w else cv2.INTER_LINEAR
    out = np.empty((t, hw[0], hw[1], 3), dtype=np.uint8)
    for i in range(t):  # cv2.resize is per image; one call per frame is the vectorised unit
        cv2.resize(frames[i], (hw[1], hw[0]), dst=out[i], interpolation=interp)
    return out


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class _Probe:
    """What PyAV says about a file before any frame is decoded."""

    n_frames: int  # declared frame count, else estimated from the duration (0 when unknown)
    fps: float
    exact: bool  # n_frames was declared by the container (not estimated)
    height: int = 0
    width: int = 0


def _check_file(path: Path) -> None:
    """Raise VideoError for a missing, non-regular or empty file."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: permission denied")


def _still_image(container: Any) -> str | None:
    """The codec of a file FFmpeg reads as a still image (a PNG/JPEG/… under any name), else None."""
    fmt = str(getattr(container.format, "name", "") or "")
    if fmt == "image2" or fmt.endswith("_pipe"):
        return str(container.streams.video[0].codec_context.name)
    return None


def _probe(path: Path) -> _Probe:
    """Open the container with PyAV (cheap, header only) so broken files and images never reach decord."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream in the file")
            if (codec := _still_image(container)) is not None:
                raise VideoError(f"{path}: a still image ({codec}), not a video")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else DEFAULT_FPS
            n = int(stream.frames or 0)
            exact = n > 0
            if n == 0 and stream.duration and stream.time_base and rate:
                n = round(float(stream.duration * stream.time_base) * fps)
            ctx = stream.codec_context
            return _Probe(n_frames=n, fps=fps, exact=exact, height=int(ctx.height or 0), width=int(ctx.width or 0))
    except VideoError:
        raise
    except Exception as e:  # av raises many types (InvalidDataError, EOFError, OSError…)
        raise VideoError(f"{path}: not a readable video ({_describe(e)})") from e


def _describe(e: BaseException) -> str:
    """Short one-line cause for an error message."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg[:160]}" if msg else type(e).__name__


_DECORD_QUIET = False


def _read_decord(path: Path, stride: int, target_fps: float | None, max_frames: int | None) -> Video:
    """Decode the sampled frames with decord (random access, one batched call)."""
    global _DECORD_QUIET
    import decord

    if not _DECORD_QUIET:  # its bundled FFmpeg logs to stderr; our VideoError says what went wrong
        decord.logging.set_level(decord.logging.QUIET)
        _DECORD_QUIET = True
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    n = len(vr)
    if n == 0:
        raise VideoError(f"{path}: video has zero frames")
    src_fps = float(vr.get_avg_fps() or 0.0) or DEFAULT_FPS
    idx, fps = sample_indices(n, src_fps, stride=stride, target_fps=target_fps, max_frames=max_frames)
    frames = vr.get_batch(idx.tolist()).asnumpy()
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != len(idx):
        raise VideoError(f"{path}: decord returned {frames.dtype} {frames.shape} for {len(idx)} frames")
    return Video(
        frames=np.ascontiguousarray(frames),
        fps=fps,
        path=str(path),
        frame_indices=idx,
        source_fps=src_fps,
        n_source_frames=n,
        meta={"backend": "decord", "truncated": False},
    )


class _FrameBuffer:
    """Frames appended one at a time into one preallocated (N, H, W, 3) array, doubled when it fills."""

    def __init__(self, expected: int, resize: int | tuple[int, int] | None) -> None:
        self.expected, self.size = max(1, expected), resize
        self.buf: np.ndarray | None = None
        self.n = 0

    def add(self, rgb: np.ndarray) -> None:
        """Resize one (H, W, 3) frame (as `resize_frames` would) and store it."""
        h, w = rgb.shape[:2]
        hw = _target_size(h, w, self.size) or (h, w)
        if self.buf is None:
            self.buf = np.empty((self.expected, *hw, 3), np.uint8)
        elif self.n == len(self.buf):
            self.buf = np.concatenate([self.buf, np.empty_like(self.buf)])
        if hw == (h, w):
            self.buf[self.n] = rgb
        else:
            import cv2

            interp = cv2.INTER_AREA if hw[0] * hw[1] <= h * w else cv2.INTER_LINEAR
            cv2.resize(rgb, (hw[1], hw[0]), dst=self.buf[self.n], interpolation=interp)
        self.n += 1

    def array(self) -> np.ndarray:
        """(n, H', W', 3) uint8: the frames stored so far (a copy only when the buffer is larger)."""
        assert self.buf is not None
        return self.buf if self.n == len(self.buf) else self.buf[: self.n].copy()


class _AvSampler:
    """Which source frames sequential PyAV decoding keeps: the sampling pattern over source indices (extended
    when a file runs longer than its header says), and the kept frames, resized one at a time."""

    def __init__(self, probe: _Probe, stride: int, target_fps: float | None, max_frames: int | None,
                 size: int | tuple[int, int] | None = None) -> None:
        self.src_fps, self.stride, self.target_fps, self.max_frames = probe.fps, stride, target_fps, max_frames
        self.n_declared = probe.n_frames
        self.limited = max_frames is not None and probe.exact  # the wanted indices are known in full up front
        self.wanted = self.pattern(probe.n_frames if self.limited else max(probe.n_frames, 1) * 2 + 64)
        expected = sample_indices(max(probe.n_frames, 1), probe.fps, stride=stride, target_fps=target_fps,
                                  max_frames=max_frames)[0].size
        self.kept = _FrameBuffer(expected, size)
        self.kept_idx: list[int] = []
        self.i = 0  # source frames seen so far

    def pattern(self, bound: int) -> np.ndarray:
        """(bound,) bool: which of the first `bound` source frames the sampling keeps (prefix-stable)."""
        sel, _ = sample_indices(bound, self.src_fps, stride=self.stride, target_fps=self.target_fps)
        if self.limited:
            sel = sel[sel < self.n_declared][: self.max_frames]
        out = np.zeros(bound, dtype=bool)
        out[sel] = True
        return out

    def take(self, frame: Any) -> bool:
        """Keep source frame `i` if sampled; False once nothing more is wanted (so decoding can stop early)."""
        if self.i >= len(self.wanted) and not self.limited:  # longer than declared/estimated: extend the pattern
            self.wanted = self.pattern(2 * len(self.wanted))
        if self.i < len(self.wanted) and self.wanted[self.i]:
            self.kept.add(frame.to_ndarray(format="rgb24"))
            self.kept_idx.append(self.i)
        self.i += 1
        if self.max_frames is not None and len(self.kept_idx) >= self.max_frames:
            return False
        return not (self.limited and self.i >= len(self.wanted))


def _demux(container: Any, sampler: _AvSampler) -> tuple[BaseException | None, bool]:
    """Decode the first video stream into `sampler` until it wants no more frames. Returns the error that
    stopped decoding (a short/garbled packet; the frames decoded before it are kept) or None, and whether
    decoding ran to the end of the stream (False when the sampler stopped it early)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if not sampler.take(frame):
                    return None, False
    except Exception as e:  # keep what decoded so far
        try:  # drain frames the decoder still holds
            for frame in stream.codec_context.decode(None):
                if not sampler.take(frame):
                    break
        except Exception:
            pass
        return e, True
    return None, True


def _truncation(probe: _Probe, n_read: int, error: BaseException | None, reached_end: bool) -> dict[str, Any]:
    """The truncation meta of a read that saw `n_read` source frames (decoded, or packets)."""
    truncated = error is not None or (reached_end and probe.exact and n_read < probe.n_frames)
    meta: dict[str, Any] = {"truncated": bool(truncated)}
    if truncated:
        meta["declared_frames"], meta["decoded_frames"] = probe.n_frames, n_read
        if error is not None:
            meta["decode_error"] = _describe(error)
    return meta


def _read_av(
    path: Path, probe: _Probe, stride: int, target_fps: float | None, max_frames: int | None,
    size: int | tuple[int, int] | None = None,
) -> Video:
    """Decode sequentially with PyAV, keeping (and resizing) sampled frames one at a time; stops cleanly at a
    truncation."""
    import av

    _, fps = sample_indices(1, probe.fps, stride=stride, target_fps=target_fps)
    sampler = _AvSampler(probe, stride, target_fps, max_frames, size)
    try:
        container = av.open(str(path))
    except Exception as e:
        raise VideoError(f"{path}: not a readable video ({_describe(e)})") from e
    with container:
        error, reached_end = _demux(container, sampler)
    n_decoded = sampler.i
    if not sampler.kept_idx:
        cause = _describe(error) if error else "no frame could be decoded"
        raise VideoError(f"{path}: video has zero decodable frames ({cause})")
    n_source = n_decoded if (reached_end or error is not None) else max(probe.n_frames, n_decoded)
    meta = {"backend": "av", "streamed": True, **_truncation(probe, n_decoded, error, reached_end)}
    return Video(frames=sampler.kept.array(), fps=fps, path=str(path),
                 frame_indices=np.asarray(sampler.kept_idx, dtype=np.int64), source_fps=probe.fps,
                 n_source_frames=n_source, meta=meta)


def _count_packets(path: Path) -> tuple[int, BaseException | None]:
    """Video packets in the container (one per frame), read without decoding; the error that stopped it."""
    import av

    n = 0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video[0]):
                n += packet.size > 0  # the final flush packet is empty
    except Exception as e:
        return n, e
    return n, None


def _read_container(path: Path, probe: _Probe, stride: int, target_fps: float | None, max_frames: int | None,
                    size: int | tuple[int, int] | None) -> Video:
    """A Video without pixels: frame count (the container's packets), size and rate, no decoding."""
    n, error = _count_packets(path)
    if n == 0 or not probe.height or not probe.width:
        cause = f" ({_describe(error)})" if error else ""
        raise VideoError(f"{path}: video has zero frames{cause}")
    idx, fps = sample_indices(n, probe.fps, stride=stride, target_fps=target_fps, max_frames=max_frames)
    h, w = _target_size(probe.height, probe.width, size) or (probe.height, probe.width)
    frames = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (len(idx), h, w, 3))  # no memory: no pixels
    meta = {"backend": "container", "pixels": False, **_truncation(probe, n, error, True)}
    return Video(frames=frames, fps=fps, path=str(path), frame_indices=idx, source_fps=probe.fps,
                 n_source_frames=n, meta=meta)


def _batched_bytes(probe: _Probe, stride: int, target_fps: float | None, max_frames: int | None) -> float:
    """Bytes of the sampled frames at full size (what one batched decord call holds); inf when unknown."""
    if probe.n_frames <= 0 or not probe.height or not probe.width:
        return math.inf
    idx, _ = sample_indices(probe.n_frames, probe.fps, stride=stride, target_fps=target_fps, max_frames=max_frames)
    return float(len(idx)) * probe.height * probe.width * 3


def _decode(p: Path, probe: _Probe, backend: str, stride: int, target_fps: float | None, max_frames: int | None,
            size: int | tuple[int, int] | None) -> Video:
    """Decode with the backend asked for; "auto": decord for small clips (PyAV after a decord failure), PyAV
    frame by frame for clips whose full-size sampled frames exceed `BATCH_BYTES`."""
    if backend == "av" or (backend == "auto" and _batched_bytes(probe, stride, target_fps, max_frames) > BATCH_BYTES):
        return _read_av(p, probe, stride, target_fps, max_frames, size)
    try:
        video = _read_decord(p, stride, target_fps, max_frames)
    except Exception as e:  # decord raises RuntimeError/DECORDError/… on broken files: never let it out
        if backend == "decord":
            if isinstance(e, VideoError):
                raise
            raise VideoError(f"{p}: decord could not decode the video ({_describe(e)})") from e
        video = _read_av(p, probe, stride, target_fps, max_frames, size)
        video.meta["fallback_reason"] = _describe(e)
        return video
    if size is not None:
        video.frames = resize_frames(video.frames, size)
    return video


def read_video(
    path: str | os.PathLike[str],
    *,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    size: int | tuple[int, int] | None = None,
    backend: str = "auto",
    allow_truncated: bool = False,
    pixels: bool = True,
) -> Video:
    """Decode a video file to uint8 RGB frames, sampled by stride / target fps / max frames and resized.

    `backend`: "auto" (decord for small clips, falling back to PyAV on any decord failure; PyAV frame by frame
    for large ones), "decord" or "av". `pixels=False`: read the container only (see the module docstring).
    Raises VideoError naming the file for missing, unreadable, corrupt, truncated, zero-frame or non-video
    files; `allow_truncated=True` returns the decodable prefix of a truncated file (meta["truncated"]).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; available: {', '.join(BACKENDS)}")
    p = Path(path)
    _check_file(p)
    sample_indices(1, 1.0, stride=stride, target_fps=target_fps, max_frames=max_frames)  # validate early
    _target_size(1, 1, size)
    probe = _probe(p)
    if pixels:
        video = _decode(p, probe, backend, stride, target_fps, max_frames, size)
    else:
        video = _read_container(p, probe, stride, target_fps, max_frames, size)
    m = video.meta
    if m.get("truncated") and not allow_truncated:
        cause = f"; {m['decode_error']}" if "decode_error" in m else ""
        raise VideoError(
            f"{p}: truncated or corrupt: only {m['decoded_frames']} of {m['declared_frames']} frames "
            f"decode{cause} (allow_truncated=True keeps them)"
        )
    return video


# ---------------------------------------------------------------------------------------------- in memory


def is_torch(x: object) -> bool:
    """True for a torch tensor, without importing torch."""
    return type(x).__module__.split(".")[0] == "torch"


def _channels_last_axis(shape: tuple[int, ...], channel_axis_first: int) -> bool:
    """True when frames are channel-last (…,H,W,3); False for channel-first (…,3,H,W); error otherwise."""
    if shape[-1] in (1, 3):
        return True
    if shape[channel_axis_first] in (1, 3):
        return False
    raise ValueError(f"cannot find the colour channel (size 3) in frames of shape {shape}")


def _to_uint8_frames(x: Any, ndim: int) -> np.ndarray:
    """Convert a uint8/float array or torch tensor of `ndim` dims (…,T,H,W,C or …,T,C,H,W) to uint8
    channel-last RGB in one vectorised operation for the whole batch."""
    if x.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D frame array, got shape {tuple(x.shape)}")
    last = _channels_last_axis(tuple(x.shape), ndim - 3)
    if is_torch(x):
        import torch

        t = x.detach()
        if t.dtype != torch.uint8:
            if t.is_floating_point():
                t = (t.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
            else:
                raise ValueError(f"tensor frames must be uint8 or float in [0,1], got {t.dtype}")
        if not last:
            t = t.movedim(ndim - 3, -1)
        arr = t.cpu().contiguous().numpy()
    else:
        arr = np.asarray(x)
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
            elif arr.dtype == np.bool_:
                arr = arr.astype(np.uint8) * 255
            else:
                raise ValueError(f"frames must be uint8 or float in [0,1], got {arr.dtype}")
        if not last:
            arr = np.moveaxis(arr, ndim - 3, -1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def as_video(x: Any, fps: float = DEFAULT_FPS) -> Video:
    """A Video from a path, a Video, a (T,H,W,3)/(T,3,H,W) uint8 or [0,1] float array, or a torch tensor
    (T,C,H,W)/(T,H,W,C) uint8 or float in [0,1]."""
    if isinstance(x, Video):
        return x
    if isinstance(x, str | os.PathLike):
        return read_video(x)
    if isinstance(x, np.ndarray) or is_torch(x):
        frames = _to_uint8_frames(x, 4)
        if frames.shape[0] == 0:
            raise VideoError("<memory>: video has zero frames")
        return Video(frames=frames, fps=float(fps), meta={"backend": "memory"})
    raise TypeError(f"cannot make a video from {type(x).__name__}; pass a path, array, tensor or Video")


def as_videos(batch: Any, fps: float = DEFAULT_FPS) -> list[Video]:
    """Videos from a batch: a list of anything `as_video` takes, a uint8/float array (B,T,H,W,3), or a torch
    tensor (B,T,C,H,W) in [0,1] (the Flow-GRPO convention); a single path or 4-D video is a batch of one."""
    if isinstance(batch, str | os.PathLike | Video):
        return [as_video(batch, fps)]
    if isinstance(batch, np.ndarray) or is_torch(batch):
        if batch.ndim == 4:
            return [as_video(batch, fps)]
        frames = _to_uint8_frames(batch, 5)  # one conversion for the whole batch
        if frames.shape[1] == 0:
            raise VideoError("<memory>: videos have zero frames")
        return [Video(frames=f, fps=float(fps), meta={"backend": "memory"}) for f in frames]
    if isinstance(batch, Sequence):
        return [as_video(x, fps) for x in batch]
    raise TypeError(f"cannot make videos from {type(batch).__name__}")


# ---------------------------------------------------------------------------------------------- writing


def _even_pad(frames: np.ndarray) -> np.ndarray:
    """Pad (…,H,W,3) frames by edge replication to even H and W (yuv420p needs even dimensions)."""
    h, w = frames.shape[-3:-1]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frames
    pad = [(0, 0)] * (frames.ndim - 3) + [(0, ph), (0, pw), (0, 0)]
    return np.pad(frames, pad, mode="edge")


class VideoWriter:
    """Streaming H.264 (yuv420p) mp4 writer through PyAV, falling back to OpenCV 'mp4v' if libx264 is
    missing. Frames are uint8 RGB (H,W,3) or batches (N,H,W,3); odd sizes are padded to even."""

    def __init__(self, path: str | os.PathLike[str], fps: float, *, crf: int = 23) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.n_written = 0
        self.codec: str | None = None
        self._container: Any = None
        self._stream: Any = None
        self._cv: Any = None
        self._size: tuple[int, int] | None = None
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")

    def _open(self, h: int, w: int) -> None:
        """Open the encoder for (even) size h×w on the first frame."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = (h, w)
        try:
            import av

            if "libx264" not in av.codecs_available:
                raise ImportError("libx264 not available in PyAV")
            self._container = av.open(str(self.path), "w", options={"movflags": "+faststart"})
            rate = Fraction(self.fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
            self._stream = stream
            self.codec = "h264"
        except ImportError:
            import cv2

            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._cv.isOpened():
                raise VideoError(f"{self.path}: no libx264 in PyAV and cv2 'mp4v' failed to open") from None
            self.codec = "mp4v"

    def write(self, frames: np.ndarray) -> None:
        """Append one frame (H,W,3) or a batch (N,H,W,3) of uint8 RGB frames."""
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (N,H,W,3), got {arr.dtype} {arr.shape}")
        arr = _even_pad(arr)
        if self._size is None:
            self._open(arr.shape[1], arr.shape[2])
        if arr.shape[1:3] != self._size:
            raise ValueError(f"frame size {arr.shape[1:3]} differs from the first frame's {self._size}")
        if self._stream is not None:
            import av

            for f in arr:
                for packet in self._stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    self._container.mux(packet)
        else:
            for f in arr[..., ::-1]:  # cv2 wants BGR
                self._cv.write(np.ascontiguousarray(f))
        self.n_written += len(arr)

    def close(self) -> Path:
        """Flush the encoder and close the file; returns its path."""
        if self._size is None:
            raise VideoError(f"{self.path}: no frames were written")
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._stream = None
        elif self._cv is not None:
            self._cv.release()
            self._cv = None
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._size is not None and (self._stream is not None or self._cv is not None):
            self.close()


def write_video(path: str | os.PathLike[str], frames: Any, fps: float, *, crf: int = 23) -> Path:
    """Write frames (anything `as_video` accepts in memory: uint8/float (T,H,W,3), tensors, a Video) to an
    H.264 yuv420p mp4 (odd sizes padded to even); returns the path."""
    arr = frames.frames if isinstance(frames, Video) else _to_uint8_frames(frames, 4)
    if len(arr) == 0:
        raise VideoError(f"{path}: no frames to write")
    writer = VideoWriter(path, fps, crf=crf)
    writer.write(arr)
    return writer.close()


# ---------------------------------------------------------------------------------------------- hashing


def video_content_hash(x: Any, *, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a video's content, for caching: file bytes (read in chunks) for a path; dtype,
    shape and bytes of the frames for arrays, tensors and Videos."""
    h = hashlib.sha256()
    if isinstance(x, str | os.PathLike):
        p = Path(x)
        _check_file(p)
        with p.open("rb") as f:
            while chunk := f.read(chunk_size):
                h.update(chunk)
        return h.hexdigest()
    if isinstance(x, Video):
        arr = x.frames
    elif is_torch(x):
        arr = x.detach().cpu().contiguous().numpy()
    else:
        arr = np.ascontiguousarray(x)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()
