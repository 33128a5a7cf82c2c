"""Offscreen MuJoCo rendering for the benchmark: a fixed free camera, no shadows / reflections / multisampling.

Rendering uses whatever `MUJOCO_GL` says; the generator sets `egl` when unset (CPU Mesa works with it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .common import VIDEO_SIZE, gl_camera_to_sidecar


def ensure_gl() -> None:
    """Default MUJOCO_GL to egl before mujoco is imported (headless CPU rendering)."""
    os.environ.setdefault("MUJOCO_GL", "egl")


def rendering_available() -> tuple[bool, str]:
    """(True, "") when MuJoCo can render a 16×16 offscreen frame here, else (False, reason)."""
    ensure_gl()
    try:
        import mujoco

        m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
        r = mujoco.Renderer(m, 16, 16)
        d = mujoco.MjData(m)
        r.update_scene(d)
        img = r.render()
        r.close()
        return img.shape == (16, 16, 3), ""
    except Exception as e:  # missing libs, no EGL device, …
        return False, f"{type(e).__name__}: {e}"


class FixedCamera:
    """Renders a MuJoCo model from one fixed free camera at VIDEO_SIZE², fast settings, right side up."""

    def __init__(self, model: Any, lookat: Sequence[float], distance: float, azimuth: float,
                 elevation: float, size: int = VIDEO_SIZE) -> None:
        import mujoco

        self._mj = mujoco
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
        self.size = size
        self.renderer = mujoco.Renderer(model, size, size)
        self.cam = mujoco.MjvCamera()
        self.cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.cam.lookat[:] = lookat
        self.cam.distance, self.cam.azimuth, self.cam.elevation = distance, azimuth, elevation
        self.opt = mujoco.MjvOption()
        self.sidecar_camera: dict[str, Any] | None = None

    def render(self, data: Any) -> np.ndarray:
        """One (size, size, 3) uint8 frame of `data`; the first call also fixes `sidecar_camera`."""
        return self._render(data, segmentation=False)[0]

    def render_segmented(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """The frame of `data` and its instance segmentation: (size, size, 3) uint8 and (size, size, 2) int32
        (MuJoCo object id, object type; −1 for background) from the same scene."""
        rgb, seg = self._render(data, segmentation=True)
        assert seg is not None
        return rgb, seg

    def _render(self, data: Any, segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        flags = self._mj.mjtRndFlag
        self.renderer.update_scene(data, camera=self.cam, scene_option=self.opt)
        sc = self.renderer.scene
        sc.flags[flags.mjRND_SHADOW] = 0
        sc.flags[flags.mjRND_REFLECTION] = 0
        sc.flags[flags.mjRND_SKYBOX] = 0
        if self.sidecar_camera is None:  # a mono render uses the average of the two eye cameras (ipd apart)
            gl = self._mj.mjv_averageCamera(sc.camera[0], sc.camera[1])
            self.sidecar_camera = gl_camera_to_sidecar(
                np.array(gl.pos), np.array(gl.forward), np.array(gl.up), float(gl.frustum_near),
                float(gl.frustum_top), self.size, self.size)
        rgb = self.renderer.render().copy()
        if not segmentation:
            return rgb, None
        self.renderer.enable_segmentation_rendering()
        try:
            seg = self.renderer.render().copy()
        finally:
            self.renderer.disable_segmentation_rendering()
        return rgb, seg

    def close(self) -> None:
        self.renderer.close()
