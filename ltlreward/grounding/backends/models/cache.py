"""On-disk cache of model Observations, keyed by video content, backend, model and prompts, so rescoring a
video with a changed spec (same entity prompts / questions) costs no model time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...observations import Observations, load_observations, save_observations

if TYPE_CHECKING:
    from ....video import Video


def video_key(video: Video) -> str:
    """Content hash of the frames a grounder sees: the source file's bytes + the sampled indices + the frame
    shape when the video came from a file (cheap), else the decoded frames themselves."""
    from ....video import video_content_hash

    path = getattr(video, "path", None)
    if path and Path(path).is_file():
        h = hashlib.sha256(video_content_hash(path).encode())
        h.update(str(tuple(video.frames.shape)).encode())
        h.update(video.frame_indices.astype("<i8").tobytes())
        return h.hexdigest()
    return video_content_hash(video)


def cache_key(video_hash: str, backend: str, model: Any, prompts: Any) -> str:
    """sha256 of the canonical JSON of (video hash, backend, model identity + settings, prompts)."""
    blob = json.dumps({"video": video_hash, "backend": backend, "model": model, "prompts": prompts},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ObservationsCache:
    """`<dir>/<backend>/<key[:2]>/<key>.json|.npz`; a disabled cache (dir None/"") never hits or writes."""

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory).expanduser() if directory else None
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def _stem(self, backend: str, key: str) -> Path:
        assert self.dir is not None
        return self.dir / backend / key[:2] / key

    def get(self, backend: str, key: str) -> Observations | None:
        """Cached observations for `key`, or None (unreadable entries count as misses and are rewritten)."""
        if self.dir is None:
            return None
        stem = self._stem(backend, key)
        if not stem.with_name(stem.name + ".json").is_file():
            self.misses += 1
            return None
        try:
            obs = load_observations(stem)
        except Exception:
            self.misses += 1
            return None
        self.hits += 1
        return obs

    def put(self, backend: str, key: str, obs: Observations) -> None:
        """Store `obs` under `key` (written to temporary names first, so readers never see half a file)."""
        if self.dir is None:
            return
        stem = self._stem(backend, key)
        tmp = stem.with_name(stem.name + ".tmp")
        json_tmp, npz_tmp = save_observations(obs, tmp)
        npz_tmp.replace(stem.with_name(stem.name + ".npz"))
        json_tmp.replace(stem.with_name(stem.name + ".json"))
