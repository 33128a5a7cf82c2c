"""`sam3` backend: text-prompted video segmentation and tracking in one model (transformers' Sam3VideoModel).
Every entity prompt is a text prompt of one inference session; SAM3 detects and tracks all instances of each
prompt. An entity follows one SAM3 object id while that object stays visible; when it disappears (or is
suppressed) the entity takes the best-scoring free object of its prompt, so entities sharing a prompt get
distinct objects.

With entity prompts (a prompts file: where each entity is on one frame) an entity takes, whenever it needs an
object, the one of its text prompt that overlaps its last known box most (at first its prompt box), so
prompts decide which instance is which; static entities keep their prompt region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ....raster import mask_boxes
from ...observations import Observations
from ...prompts import Prompts, require_prompted
from ...registry import registered_provides
from .gdino_sam2 import (
    DetectTrackGrounder,
    _LazyFrames,
    iou,
    tracks_from_low_res,
)
from .loading import (
    ModelStats,
    load_model,
    load_tokenizer,
    read_preprocessor_config,
    resolve_model_dir,
)

if TYPE_CHECKING:
    from ....video import Video

SAM3_MEAN = (0.5, 0.5, 0.5)
SAM3_STD = (0.5, 0.5, 0.5)


class Sam3Model:
    """Sam3VideoModel + its tokenizer, with hand-made inputs (its processors need torchvision)."""

    role = "sam3"
    class_name = "Sam3VideoModel"
    model_types = ("sam3_video", "sam3")

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", allow_download: bool = False,
                 cpu_threads: int = 0, stats: ModelStats | None = None) -> None:
        self.model, self.model_dir, self.device_note = load_model(
            self.role, source, self.class_name, self.model_types, device=device, dtype=dtype,
            allow_download=allow_download, cpu_threads=cpu_threads)
        self.tokenizer = load_tokenizer(self.role, self.model_dir)
        pre = read_preprocessor_config(self.model_dir)
        self.mean, self.std = pre.get("image_mean", SAM3_MEAN), pre.get("image_std", SAM3_STD)
        size = self.model.config.image_size
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        p = next(self.model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.stats = stats if stats is not None else ModelStats()

    def session(self, frames: np.ndarray, prompts: list[str]) -> tuple[Any, _LazyFrames]:
        """An inference session over `frames` with one text prompt per distinct prompt."""
        import torch
        from transformers.models.sam3_video.modeling_sam3_video import Sam3VideoInferenceSession

        H, W = frames.shape[1:3]
        lazy = _LazyFrames(frames, self.device, self.dtype, self.size, self.mean, self.std)
        s = Sam3VideoInferenceSession(video=None, video_height=H, video_width=W, inference_device=self.device,
                                      inference_state_device=self.device, video_storage_device=self.device,
                                      dtype=self.dtype)
        s.processed_frames = lazy
        for text in prompts:
            pid = s.add_prompt(text)
            if pid not in s.prompt_input_ids:
                enc = self.tokenizer(text, padding="max_length", max_length=32, truncation=True)
                s.prompt_input_ids[pid] = torch.tensor([enc["input_ids"]], device=self.device)
                s.prompt_attention_masks[pid] = torch.tensor([enc["attention_mask"]], device=self.device)
        return s, lazy


class Sam3Grounder(DetectTrackGrounder):
    """SAM3 text-prompted tracking of every entity prompt; masks, boxes, centres, visibility (= SAM3's score)."""

    name = "sam3"
    provides = registered_provides("sam3")

    @property
    def sam3(self) -> Sam3Model:
        if self._tracker is None:
            self._tracker = Sam3Model(self.cfg.model("sam3"), device=self.cfg.device, dtype=self.cfg.dtype,
                                      allow_download=self.cfg.allow_download, cpu_threads=self.cfg.cpu_threads,
                                      stats=self.stats)
        return self._tracker

    def identity(self) -> dict:
        """SAM3 weights + settings (cache key); resolves the weights, loads nothing."""
        d = resolve_model_dir("sam3", self.cfg.model("sam3"), allow_download=self.cfg.allow_download)
        return {"sam3": str(d.resolve()), "dtype": self.cfg.dtype, "device": self.cfg.device, "masks": self.masks}

    def _ground_prompted(self, video: Video, names: tuple[str, ...], texts: list[str], pr: Prompts) -> Observations:
        """Text-prompted tracking with the instances chosen by the entity prompts (see the module docstring)."""
        H, W = video.frames.shape[1:3]
        regions = pr.regions(names, H, W)
        require_prompted(pr, names, regions)
        last = np.stack([regions[n].box for n in names]).astype(np.float32)  # (E, 4)
        obs = self._ground(video, names, texts, last=last)
        for i, n in enumerate(names):
            if regions[n].static:
                obs.boxes[i], obs.visibility[i] = regions[n].box, 1.0
                obs.centers[i] = (regions[n].box[:2] + regions[n].box[2:]) / 2
                if obs.masks is not None:
                    obs.masks[i] = regions[n].mask
        obs.meta.update(entity_prompts=pr.path, static=sorted(n for n in names if regions[n].static))
        return obs

    def _ground(self, video: Video, names: tuple[str, ...], prompts: list[str], last: np.ndarray | None = None
                ) -> Observations:
        """SAM3 over the clip; `last` (E, 4): boxes the entities start from (entity prompts), else None."""
        import torch

        frames = video.frames
        T, H, W = (int(x) for x in frames.shape[:3])
        E = len(names)
        m = self.sam3
        session, lazy = m.session(frames, list(dict.fromkeys(prompts)))
        prompt_id = {session.prompts[k]: k for k in session.prompts}
        want = np.array([prompt_id[p] for p in prompts])  # (E,) each entity's prompt id
        low: np.ndarray | None = None  # (T, E, h, w) mask logits
        score = np.full((T, E), -np.inf, np.float32)
        cur = np.full(E, -1, np.int64)  # SAM3 object id each entity follows
        switches: dict[str, list[int]] = {n: [] for n in names}
        followed = np.full((T, E), -1, np.int64)  # object id shown in each entity's row, -1 = none
        it = m.model.propagate_in_video_iterator(session, start_frame_idx=0)
        for t in range(T):
            with torch.inference_mode():
                out = self.stats.timed(m.role, next, it)
            hidden = set(out.suppressed_obj_ids or ()) | set(getattr(session, "hotstart_removed_obj_ids", ()) or ())
            ids = [o for o in sorted(out.obj_id_to_mask) if o not in hidden]
            if not ids:
                continue
            lows = torch.cat([out.obj_id_to_mask[o] for o in ids]).float().cpu().numpy()  # (n, h, w)
            sc = np.array([float(out.obj_id_to_score.get(o, 0.0)) for o in ids], np.float32)  # (n,)
            pid = np.array([session.obj_id_to_prompt_id.get(o, -1) for o in ids])  # (n,)
            if low is None:
                low = np.full((T, E, *lows.shape[-2:]), -1e4, np.float32)
            present = lows.reshape(len(ids), -1).max(axis=1) > 0  # (n,) non-empty mask
            near = None
            if last is not None:
                cand = mask_boxes(lows > 0, (W / lows.shape[-1], H / lows.shape[-2]))  # (n, 4)
                near = iou(last[:, None], cand[None])  # (E, n)
            keep, switched = _follow(cur, ids, present, sc, pid, want, near)
            for e in switched:
                switches[names[e]].append(t)
            for e, i in keep:
                low[t, e], followed[t, e] = lows[i], cur[e]
                if near is not None and present[i]:
                    last[e] = cand[i]
                p = float(np.clip(sc[i], 1e-6, 1 - 1e-6))
                score[t, e] = np.log(p / (1 - p))  # tracks_from_low_res applies the sigmoid back
        self.stats.seconds -= lazy.seconds
        masks, boxes, centers, vis = tracks_from_low_res(low, score, H, W)
        meta = {"provides": sorted(self.provides if self.masks else self.provides - {"masks"}),
                "prompts": dict(zip(names, prompts, strict=True)), "object_switches": switches,
                "object_ids": {n: followed[:, i].tolist() for i, n in enumerate(names)},
                "models": {"sam3": str(m.model_dir)}}
        if m.device_note:
            meta["device_note"] = m.device_note
        return Observations(entities=names, n_frames=T, height=H, width=W, fps=float(video.fps), boxes=boxes,
                            centers=centers, visibility=vis, masks=masks if self.masks else None,
                            source=self.name, meta=meta)


def _follow(cur: np.ndarray, ids: list[int], present: np.ndarray, scores: np.ndarray, prompt: np.ndarray,
            want: np.ndarray, near: np.ndarray | None = None) -> tuple[list[tuple[int, int]], list[int]]:
    """Which object each entity shows in this frame. An entity keeps the object it follows (`cur`, updated in
    place) while that object's mask is non-empty; otherwise it takes the present object of its prompt that no
    other entity holds with the best score — or, given `near` (E, n) overlaps with the entities' last boxes,
    the one overlapping its last box most. Returns [(entity, row in ids)] in assignment order and the entities
    that switched objects."""
    row = {o: i for i, o in enumerate(ids)}
    keep = [e for e in range(len(cur)) if cur[e] in row and present[row[cur[e]]]]
    taken = {int(cur[e]) for e in keep}
    switched = []
    for e in range(len(cur)):
        if e in keep:
            continue
        order = np.argsort(-scores) if near is None else np.lexsort((-scores, -near[e]))
        cand = [i for i in order if present[i] and prompt[i] == want[e] and ids[i] not in taken]
        if cand:
            cur[e] = ids[cand[0]]
            taken.add(int(cur[e]))
            switched.append(e)
            keep.append(e)
    return [(e, row[int(cur[e])]) for e in keep], switched
