"""`Camera`: a calibrated pinhole camera (OpenCV conventions) — projection of world points into pixels and the
inverse, pixel rays into the world, which the 2.5-D predicate semantics intersect with the support plane.

Conventions: intrinsics K (3×3, focal lengths fx, fy > 0 in pixels, principal point cx, cy); world→camera
extrinsics E (4×4, [R | t]), camera axes x right, y down, z forward; world z up, metres. Pixel coordinates
are continuous with the origin at the top-left corner of the image (pixel (x, y) covers [x, x+1) × [y, y+1),
as in ltlreward.raster). `check_camera` is the one validation of a camera's numbers (sidecars, prompts files
and saved observations all use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_DEPTH = 1e-9  # metres in front of the camera below which a point does not project


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: K (3,3), world→camera extrinsics (4,4, OpenCV axes) and the image size it describes."""

    K: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    @property
    def R(self) -> np.ndarray:
        """(3, 3) world→camera rotation."""
        return self.extrinsics[:3, :3]

    @property
    def t(self) -> np.ndarray:
        """(3,) world→camera translation."""
        return self.extrinsics[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """(3,) the camera centre in world coordinates."""
        return -self.R.T @ self.t

    @property
    def focal(self) -> float:
        """Mean focal length in pixels, (fx + fy) / 2."""
        return float(self.K[0, 0] + self.K[1, 1]) / 2.0

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in camera coordinates (..., 3)."""
        return np.asarray(points, dtype=np.float64) @ self.R.T + self.t

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame depth z (...,) of world points (..., 3); ≤ 0 behind the camera."""
        return self.to_camera(points)[..., 2]

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixel coordinates (..., 2); NaN for points at or behind the camera."""
        cam = self.to_camera(points)  # (..., 3)
        img = cam @ self.K.T  # (..., 3) homogeneous pixels
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = img[..., :2] / img[..., 2:3]
        uv[cam[..., 2] <= MIN_DEPTH] = np.nan
        return uv

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) → world directions (..., 3) of their viewing rays, scaled so that a point
        at depth Z along the ray is `center + Z * ray` (the camera-frame z component of each ray is 1)."""
        uv = np.asarray(uv, dtype=np.float64)
        ones = np.ones((*uv.shape[:-1], 1))
        cam = np.concatenate([uv, ones], axis=-1) @ np.linalg.inv(self.K).T  # (..., 3), z = 1
        return cam @ self.R  # camera → world rotation (R^T applied on the right of row vectors)

    def at_depth(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """World points (..., 3) at camera-frame depth `depth` (...,) along the rays of pixels `uv` (..., 2)."""
        return self.center + self.rays(uv) * np.asarray(depth, dtype=np.float64)[..., None]

    def on_plane(self, uv: np.ndarray, z: float | np.ndarray) -> np.ndarray:
        """Where the rays of pixels `uv` (..., 2) meet the horizontal plane world-z = `z` (..., 3); NaN where
        the ray is parallel to it or meets it behind the camera."""
        d = self.rays(uv)  # (..., 3)
        c = self.center
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (np.asarray(z, dtype=np.float64) - c[2]) / d[..., 2]  # camera-frame depth of the hit
        s = np.where(np.isfinite(s) & (s > MIN_DEPTH), s, np.nan)
        return c + d * s[..., None]

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera describing an image resized to `width` × `height` (K scaled per axis)."""
        if (width, height) == (self.width, self.height):
            return self
        S = np.diag([width / self.width, height / self.height, 1.0])
        return Camera(S @ self.K, self.extrinsics, int(width), int(height))

    def to_json(self) -> dict[str, Any]:
        """The camera in the sidecar schema (`camera` section)."""
        return {"intrinsics": self.K.tolist(), "extrinsics": self.extrinsics.tolist(), "width": int(self.width),
                "height": int(self.height)}


def check_camera(K: np.ndarray, extrinsics: np.ndarray) -> tuple[str, str] | None:
    """The first problem of a camera's matrices as (json path, message), or None: K's last row is 0 0 1, its
    focal lengths are positive, E's last row is 0 0 0 1 and its rotation is orthonormal with determinant 1."""
    if not np.allclose(K[2], [0, 0, 1]):
        return "intrinsics[2]", f"expected [0, 0, 1], got {K[2].tolist()}"
    for i, name in ((0, "fx"), (1, "fy")):
        if not K[i, i] > 0:
            return f"intrinsics[{i}][{i}]", f"the focal length {name} must be > 0 pixels, got {K[i, i]:g}"
    if not np.allclose(extrinsics[3], [0, 0, 0, 1]):
        return "extrinsics[3]", f"expected [0, 0, 0, 1], got {extrinsics[3].tolist()}"
    R = extrinsics[:3, :3]
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0):
        return "extrinsics", "the rotation part [:3, :3] must be orthonormal with determinant +1"
    return None


def image_size_problem(camera: Camera, width: int, height: int) -> str | None:
    """Why `camera` does not describe a `width` × `height` image (None when it does): the sizes must be equal
    or differ by a resize that keeps the aspect ratio (to within one pixel of rounding)."""
    if (camera.width, camera.height) == (width, height):
        return None
    if abs(camera.width * height - camera.height * width) <= max(camera.width, camera.height, width, height):
        return None
    return (f"the camera describes a {camera.width}×{camera.height} image but the video is {width}×{height} "
            "(not a resize of it: the aspect ratios differ)")


__all__ = ["MIN_DEPTH", "Camera", "check_camera", "image_size_problem"]
