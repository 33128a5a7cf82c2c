"""Open-vocabulary detectors on batches of frames: Grounding DINO and OWLv2 through transformers' own model
classes, with image pre-processing done here in torch (batched, no torchvision, no PIL round trips)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import GroundingError
from .loading import (
    ModelStats,
    load_model,
    load_tokenizer,
    read_preprocessor_config,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Detections:
    """Top-k detections of every prompt in every frame, best first."""

    boxes: np.ndarray  # (N, P, K, 4) float32 x0, y0, x1, y1 in frame pixels
    scores: np.ndarray  # (N, P, K) float32 in [0, 1]


def frames_to_tensor(frames: np.ndarray, device: Any, dtype: Any, size: tuple[int, int], mean: Sequence[float],
                     std: Sequence[float], pad_square: float | None = None) -> Any:
    """uint8 (N, H, W, 3) → normalised float (N, 3, h, w) at `size`; `pad_square` pads bottom/right to a square
    with that grey value (in [0, 1]) before resizing (OWLv2's convention)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if pad_square is not None:
        h, w = x.shape[-2:]
        s = max(h, w)
        if (h, w) != (s, s):
            x = F.pad(x, (0, s - w, 0, s - h), value=pad_square)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)


def _topk(scores: np.ndarray, boxes: np.ndarray, k: int) -> Detections:
    """scores (N, Q, P), boxes (N, Q, 4) → the k best queries per prompt."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k, :]  # (N, k, P)
    top = np.take_along_axis(scores, order, axis=1).transpose(0, 2, 1)  # (N, P, k)
    idx = order.transpose(0, 2, 1)  # (N, P, k)
    b = np.take_along_axis(boxes[:, None, :, :], idx[..., None], axis=2)  # (N, P, k, 4)
    return Detections(b.astype(np.float32), top.astype(np.float32))


def _cxcywh_to_xyxy(b: np.ndarray, sx: float, sy: float, w: int, h: int) -> np.ndarray:
    """Normalised centre boxes → pixel corner boxes clipped to the frame."""
    cx, cy, bw, bh = b[..., 0] * sx, b[..., 1] * sy, b[..., 2] * sx, b[..., 3] * sy
    out = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)
    out[..., 0::2] = out[..., 0::2].clip(0, w)
    out[..., 1::2] = out[..., 1::2].clip(0, h)
    return out


class _Detector:
    """Shared loading and batching; subclasses implement `_detect_batch`."""

    role = ""
    class_name = ""
    model_types: tuple[str, ...] = ()

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", allow_download: bool = False,
                 batch: int = 8, top_k: int = 5, cpu_threads: int = 0, stats: ModelStats | None = None) -> None:
        self.model, self.model_dir, self.device_note = load_model(
            self.role, source, self.class_name, self.model_types, device=device, dtype=dtype,
            allow_download=allow_download, cpu_threads=cpu_threads)
        self.tokenizer = load_tokenizer(self.role, self.model_dir)
        self.pre = read_preprocessor_config(self.model_dir)
        self.batch = batch
        self.top_k = top_k
        self.stats = stats if stats is not None else ModelStats()
        p = next(self.model.parameters())
        self.device, self.dtype = p.device, p.dtype

    def identity(self) -> dict:
        """What makes this detector's outputs what they are (for cache keys)."""
        return {"class": self.class_name, "dir": str(Path(self.model_dir).resolve()), "dtype": str(self.dtype)}

    def detect(self, frames: np.ndarray, prompts: Sequence[str]) -> Detections:
        """Top-k boxes and scores of each prompt in each frame (N, H, W, 3) uint8, `batch` frames per call."""
        if not prompts:
            raise GroundingError(f"{self.role}: no prompts to detect")
        text = self._encode_text(list(prompts))
        parts = [self._detect_batch(frames[i:i + self.batch], text) for i in range(0, len(frames), self.batch)]
        return Detections(np.concatenate([d.boxes for d in parts]), np.concatenate([d.scores for d in parts]))

    def _encode_text(self, prompts: list[str]) -> Any:
        raise NotImplementedError

    def _detect_batch(self, frames: np.ndarray, text: Any) -> Detections:
        raise NotImplementedError


class GroundingDinoDetector(_Detector):
    """Grounding DINO: all prompts in one caption ("a. b. c."); a prompt's score per query is the max sigmoid
    logit over its caption tokens."""

    role = "grounding_dino"
    class_name = "GroundingDinoForObjectDetection"
    model_types = ("grounding-dino",)

    def _encode_text(self, prompts: list[str]) -> Any:
        import torch

        caption, spans = "", []
        for p in prompts:
            p = " ".join(p.lower().split()).rstrip(".")
            spans.append((len(caption), len(caption) + len(p)))
            caption += p + ". "
        caption = caption.strip()
        max_len = int(getattr(self.model.config, "max_text_len", 256))
        enc = self.tokenizer(caption, return_offsets_mapping=True, truncation=True, max_length=max_len)
        offsets = np.asarray(enc["offset_mapping"], np.int64).reshape(-1, 2)
        L = len(enc["input_ids"])
        member = np.zeros((len(prompts), L), bool)  # token → prompt
        for i, (s, e) in enumerate(spans):
            member[i] = (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] >= s) & (offsets[:, 1] <= e)
        lost = [prompts[i] for i in np.flatnonzero(~member.any(axis=1))]
        if lost:
            raise GroundingError(f"grounding_dino: prompt(s) {lost} fall outside the model's {max_len}-token "
                                 "caption; use fewer or shorter entity prompts")
        ids = torch.tensor([enc["input_ids"]], device=self.device)
        return ids, torch.ones_like(ids), member

    def _size(self, h: int, w: int) -> tuple[int, int]:
        size = self.pre.get("size") or {}
        short, long = int(size.get("shortest_edge", 800)), int(size.get("longest_edge", 1333))
        scale = min(short / min(h, w), long / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _detect_batch(self, frames: np.ndarray, text: Any) -> Detections:
        import torch

        ids, mask, member = text
        n, h, w = frames.shape[:3]
        x = frames_to_tensor(frames, self.device, self.dtype, self._size(h, w),
                             self.pre.get("image_mean", IMAGENET_MEAN), self.pre.get("image_std", IMAGENET_STD))
        with torch.inference_mode():
            out = self.stats.timed(self.role, self.model, pixel_values=x, input_ids=ids.expand(n, -1),
                                   attention_mask=mask.expand(n, -1),
                                   pixel_mask=torch.ones((n, *x.shape[-2:]), dtype=torch.long, device=self.device))
        L = member.shape[1]
        logits = out.logits[..., :L].float().sigmoid().cpu().numpy()  # (n, Q, L)
        # per prompt: max over its tokens → (n, Q, P)
        scores = np.where(member[None, None], logits[:, :, None, :], 0.0).max(axis=-1)
        boxes = _cxcywh_to_xyxy(out.pred_boxes.float().cpu().numpy(), w, h, w, h)
        return _topk(scores, boxes, self.top_k)


class Owlv2Detector(_Detector):
    """OWLv2: one text query per prompt; boxes are relative to the frame padded to a square."""

    role = "owlv2"
    class_name = "Owlv2ForObjectDetection"
    model_types = ("owlv2",)

    def _encode_text(self, prompts: list[str]) -> Any:
        import torch

        max_len = int(self.model.config.text_config.max_position_embeddings)
        enc = self.tokenizer(prompts, padding="max_length",
                             truncation=True, max_length=max_len)
        ids = torch.tensor(enc["input_ids"], device=self.device)
        return ids, torch.tensor(enc["attention_mask"], device=self.device)

    def _detect_batch(self, frames: np.ndarray, text: Any) -> Detections:
        import torch

        ids, mask = text
        n, h, w = frames.shape[:3]
        s = int(self.model.config.vision_config.image_size)
        x = frames_to_tensor(frames, self.device, self.dtype, (s, s), self.pre.get("image_mean", CLIP_MEAN),
                             self.pre.get("image_std", CLIP_STD), pad_square=0.5)
        with torch.inference_mode():
            out = self.stats.timed(self.role, self.model, pixel_values=x, input_ids=ids.repeat(n, 1),
                                   attention_mask=mask.repeat(n, 1))
        scores = out.logits.float().sigmoid().cpu().numpy()  # (n, patches, P)
        side = max(h, w)
        boxes = _cxcywh_to_xyxy(out.pred_boxes.float().cpu().numpy(), side, side, w, h)
        return _topk(scores, boxes, self.top_k)


DETECTORS: dict[str, type[_Detector]] = {"grounding_dino": GroundingDinoDetector, "owlv2": Owlv2Detector}
