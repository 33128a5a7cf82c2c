"""`vlm` backend: per-frame yes/no questions to a vision-language model (AutoModelForImageTextToText) for
quoted atoms and for predicates configured to be asked (e.g. `gripper_closed`). p(yes) = softmax over the
yes/no token logits of the answer's first token; frames are sub-sampled (`stride`) and interpolated, pairs
of (frame, question) are batched, raw answers are cached per question, and an optional calibration map
(`ltlreward calibrate`) is applied afterwards. The predicate layer turns p into robustness 2p − 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ....errors import GroundingError
from ...observations import Observations
from ...registry import registered_provides
from .cache import ObservationsCache, cache_key, video_key
from .calibrate import Calibration, apply_maps
from .config import ModelsConfig
from .gdino_sam2 import entity_prompt, make_config
from .loading import (
    ModelStats,
    load_model,
    load_tokenizer,
    resolve_model_dir,
)

if TYPE_CHECKING:
    from ....spec.ast import Entity
    from ....video import Video

ATOM_TEMPLATE = 'Is the following true in this image: "{text}"? Answer yes or no.'
QWEN_FAMILY = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# predicate → (Observations field it fills, whether p(yes) is the value or its complement)
# (`visible` is not askable: the predicate layer reads visibility together with centres, which a VLM lacks.)
ASKABLE = {"gripper_closed": ("gripper_opening", True), "gripper_open": ("gripper_opening", False)}


def _single_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Ids of the variants of a word that the tokenizer encodes as one known token."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = []
    for w in words:
        enc = tokenizer.encode(w, add_special_tokens=False)
        if len(enc) == 1 and enc[0] != unk and enc[0] not in ids:
            ids.append(enc[0])
    return ids


class _QwenVLPrompter:
    """Inputs for the Qwen2-VL / Qwen2.5-VL / Qwen3-VL family built by hand (their processors pull in a
    torchvision video processor): the image processor for pixels, the chat format for text."""

    def __init__(self, model_dir: Path, tokenizer: Any, config: Any) -> None:
        from transformers import AutoImageProcessor

        try:
            self.image_processor = AutoImageProcessor.from_pretrained(model_dir, local_files_only=True)
        except Exception as e:
            raise GroundingError(f"model 'vlm': no usable image processor in {model_dir}: {e}") from None
        self.tok = tokenizer
        self.image_token_id = int(config.image_token_id)
        self.image_token = tokenizer.convert_ids_to_tokens(self.image_token_id)
        self.merge = int(getattr(self.image_processor, "merge_size", 2))
        self.template = getattr(tokenizer, "chat_template", None)
        self._ids: dict[tuple[str, int], list[int]] = {}

    def text(self, question: str, n_tokens: int) -> str:
        pads = self.image_token * n_tokens
        if self.template:
            msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            s = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            return s.replace(self.image_token, pads, 1)
        return (f"<|im_start|>user\n<|vision_start|>{pads}<|vision_end|>{question}<|im_end|>\n"
                f"<|im_start|>assistant\n")

    def images(self, frames: np.ndarray, device: Any = "cpu") -> tuple[Any, Any]:
        """Pixel rows per image (n, rows, D) and grid (n, 3) for same-sized frames, computed like the image
        processor (smart resize to multiples of patch × merge, rescale, normalise, patchify) but batched in torch
        on `device`."""
        import torch
        import torch.nn.functional as F
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        ip = self.image_processor
        ps, ms, tps = int(ip.patch_size), int(ip.merge_size), int(ip.temporal_patch_size)
        size = ip.size
        lo = getattr(size, "shortest_edge", None) or size.get("shortest_edge")
        hi = getattr(size, "longest_edge", None) or size.get("longest_edge")
        n, h, w = frames.shape[:3]
        rh, rw = smart_resize(h, w, factor=ps * ms, min_pixels=lo, max_pixels=hi)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
        if (rh, rw) != (h, w):
            x = F.interpolate(x, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)
        x = x.mul_(float(getattr(ip, "rescale_factor", 1 / 255)))
        mean = torch.tensor(ip.image_mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(ip.image_std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        x = (x - mean) / std
        gh, gw = rh // ps, rw // ps
        x = x.reshape(n, 3, gh // ms, ms, ps, gw // ms, ms, ps).permute(0, 2, 5, 3, 6, 1, 4, 7)
        x = x[:, :, :, :, :, :, None].expand(*x.shape[:6], tps, ps, ps)  # (n, gh', gw', mh, mw, C, t, ph, pw)
        pix = x.reshape(n, gh * gw, 3 * tps * ps * ps)
        grid = torch.tensor([[1, gh, gw]] * n, dtype=torch.long, device=device)
        return pix, grid

    def batch(self, pix: Any, grid: Any, img_idx: np.ndarray, questions: list[str], device: Any,
              dtype: Any) -> dict:
        import torch

        n_tok = int(grid[0].prod()) // (self.merge ** 2)
        seqs = []
        for q in questions:  # each distinct prompt is tokenised once per clip size
            key = (q, n_tok)
            if key not in self._ids:
                self._ids[key] = self.tok(self.text(q, n_tok), add_special_tokens=False)["input_ids"]
            seqs.append(self._ids[key])
        L = max(len(x) for x in seqs)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        ids = torch.full((len(seqs), L), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for i, x in enumerate(seqs):  # left padding: the answer's logits are at the last position
            ids[i, L - len(x):] = torch.tensor(x)
            mask[i, L - len(x):] = 1
        idx = torch.as_tensor(img_idx, device=pix.device)
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device),
                "pixel_values": pix[idx].reshape(-1, pix.shape[-1]).to(device, dtype),
                "image_grid_thw": grid[idx].to(device),
                "mm_token_type_ids": (ids == self.image_token_id).long().to(device)}


class _ProcessorPrompter:
    """Any other image-text-to-text family through its own AutoProcessor and chat template (needs whatever
    that processor needs, e.g. torchvision for some)."""

    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoProcessor

        try:
            self.proc = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        except Exception as e:
            raise GroundingError(f"model 'vlm': cannot load its processor from {model_dir} ({e}); the Qwen2-VL, "
                                 "Qwen2.5-VL and Qwen3-VL families work without torchvision") from None
        self.tok = self.proc.tokenizer

    def images(self, frames: np.ndarray, device: Any = "cpu") -> tuple[Any, Any]:
        return frames, None

    def batch(self, frames: Any, grid: Any, img_idx: np.ndarray, questions: list[str], device: Any,
              dtype: Any) -> dict:
        msgs = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}] for q in questions]
        texts = [self.proc.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
        self.tok.padding_side = "left"
        enc = self.proc(text=texts, images=[[frames[i]] for i in img_idx], return_tensors="pt", padding=True)
        return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in enc.items()}


class VLMGrounder:
    """Yes/no VLM answers per frame → atoms (quoted text) and gripper_opening (asked gripper predicates)."""

    name = "vlm"
    provides = registered_provides("vlm")

    def __init__(self, config: str | Path | ModelsConfig | None = None, *, models: dict[str, str] | None = None,
                 device: str | None = None, dtype: str | None = None, cpu_threads: int | None = None,
                 cache_dir: str | None = None,
                 allow_download: bool | None = None, vlm_batch: int | None = None, vlm_stride: int | None = None,
                 vlm_calibration: str | None = None, questions: dict[str, str] | None = None,
                 atom_template: str = ATOM_TEMPLATE) -> None:
        self.cfg = make_config(config, models=models, device=device, dtype=dtype, cpu_threads=cpu_threads,
                               cache_dir=cache_dir,
                               allow_download=allow_download, vlm_batch=vlm_batch, vlm_stride=vlm_stride,
                               vlm_calibration=vlm_calibration, questions=questions)
        unknown = sorted(set(self.cfg.questions) - set(ASKABLE))
        if unknown:
            raise GroundingError(f"vlm: cannot ask predicate(s) {', '.join(unknown)}; askable: "
                                 f"{', '.join(sorted(ASKABLE))} (other questions: use a quoted atom)")
        self.atom_template = atom_template
        self.stats = ModelStats()
        self.cache = ObservationsCache(self.cfg.cache_dir)
        self.calibration = Calibration.load(self.cfg.vlm_calibration) if self.cfg.vlm_calibration else None
        self._model = None

    # ------------------------------------------------------------------------------------------ model
    def _load(self) -> None:
        if self._model is not None:
            return
        model, model_dir, note = load_model("vlm", self.cfg.model("vlm"), "AutoModelForImageTextToText", (),
                                            device=self.cfg.device, dtype=self.cfg.dtype,
                                            allow_download=self.cfg.allow_download, cpu_threads=self.cfg.cpu_threads)
        mtype = getattr(model.config, "model_type", "")
        if mtype in QWEN_FAMILY:
            tok = load_tokenizer("vlm", model_dir)
            self.prompter: Any = _QwenVLPrompter(model_dir, tok, model.config)
        else:
            self.prompter = _ProcessorPrompter(model_dir)
            tok = self.prompter.tok
        self.yes_ids = _single_token_ids(tok, ["yes", "Yes", " yes", " Yes", "YES"])
        self.no_ids = _single_token_ids(tok, ["no", "No", " no", " No", "NO"])
        if not self.yes_ids or not self.no_ids:
            raise GroundingError(f"model 'vlm' at {model_dir}: its tokenizer has no single-token 'yes'/'no'; "
                                 "pick a chat VLM (e.g. Qwen2.5-VL)")
        p = next(model.parameters())
        self.device, self.dtype, self.device_note, self.model_dir = p.device, p.dtype, note, model_dir
        self._model = model

    def model_identity(self) -> str:
        """Resolved directory of the VLM weights (cache keys, calibration files)."""
        return str(resolve_model_dir("vlm", self.cfg.model("vlm"), allow_download=self.cfg.allow_download).resolve())

    def question_for(self, atom: str | None, predicate: str | None = None, entity: str | None = None
                     ) -> tuple[str, str]:
        """(calibration key, question text) of a quoted atom, or of predicate `predicate` on an entity prompt."""
        if atom is not None:
            return atom, self.atom_template.format(text=atom)
        if predicate not in self.cfg.questions:
            raise GroundingError(f"vlm: no question configured for predicate {predicate!r}; configured: "
                                 f"{', '.join(sorted(self.cfg.questions)) or 'none'}")
        t = self.cfg.questions[predicate]
        return predicate, t.format(g=entity, a=entity, entity=entity) + " Answer yes or no."

    def ask(self, frames: np.ndarray, frame_idx: np.ndarray, questions: Sequence[str]) -> np.ndarray:
        """Raw p(yes) (n,) of question i about frame frame_idx[i], `vlm_batch` pairs per model call."""
        import torch

        self._load()
        frame_idx = np.asarray(frame_idx, np.int64)
        uniq, inv = np.unique(frame_idx, return_inverse=True)
        pix, grid = self.prompter.images(frames[uniq], self.device)
        out = np.empty(len(frame_idx), np.float32)
        yes, no = torch.tensor(self.yes_ids), torch.tensor(self.no_ids)
        bs = self.cfg.vlm_batch
        for i in range(0, len(frame_idx), bs):
            inputs = self.prompter.batch(pix, grid, inv[i:i + bs], list(questions[i:i + bs]), self.device,
                                         self.dtype)
            with torch.inference_mode():
                res = self.stats.timed("vlm", self._model, **inputs, logits_to_keep=1)
            last = res.logits[:, -1, :].float().cpu()
            ly, ln = torch.logsumexp(last[:, yes], dim=1), torch.logsumexp(last[:, no], dim=1)
            out[i:i + bs] = torch.sigmoid(ly - ln).numpy()
        return out

    # ------------------------------------------------------------------------------------------ public
    def _questions(self, entities: Sequence[Entity], quoted: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(field, target, calibration key, question) for every quoted atom and asked predicate."""
        qs = [("atoms", q, *self.question_for(q)) for q in dict.fromkeys(quoted)]
        for pred, (fld, _) in ASKABLE.items():
            if pred not in self.cfg.questions:
                continue
            for e in entities:
                if fld == "gripper_opening" and getattr(e, "kind", "") != "gripper":
                    continue
                qs.append((fld + ":" + pred, e.name, *self.question_for(None, pred, entity_prompt(e))))
        return qs

    def ground(self, video: Video, entities: Sequence[Entity], *, quoted: Sequence[str] = (),
               sidecar: str | Path | None = None) -> Observations:
        """Answer every question on every `stride`-th frame (and the last), interpolate between them."""
        T, H, W = (int(x) for x in video.frames.shape[:3])
        E = len(entities)
        names = tuple(getattr(e, "name", str(e)) for e in entities)
        qs = self._questions(entities, quoted)
        asked = np.unique(np.concatenate([np.arange(0, T, self.cfg.vlm_stride), [T - 1]]))
        raw, hits = self._answers(video, asked, [q for *_, q in qs])
        atoms: dict[str, np.ndarray] = {}
        opening: dict[str, np.ndarray] = {}
        for fld, target, ckey, q in qs:
            p = apply_maps(self.calibration, ckey, raw[q])
            if fld == "atoms":
                atoms[target] = p
            elif fld.startswith("gripper_opening"):
                closed = ASKABLE[fld.split(":")[1]][1]
                opening[target] = (1.0 - p if closed else p).astype(np.float32)
        provides = ({"atoms"} if atoms else set()) | ({"gripper_opening"} if opening else set())
        meta = {"provides": sorted(provides), "asked_frames": asked.tolist(),
                "questions": {f"{q[0]}:{q[1]}": q[3] for q in qs}, "cache_hits": hits,
                "calibrated": self.calibration is not None}
        if self._model is not None:
            meta["model"] = str(self.model_dir)
            if self.device_note:
                meta["device_note"] = self.device_note
        return Observations(entities=names, n_frames=T, height=H, width=W, fps=float(video.fps),
                            boxes=np.full((E, T, 4), np.nan, np.float32),
                            centers=np.full((E, T, 2), np.nan, np.float32), visibility=np.zeros((E, T), np.float32),
                            gripper_opening=opening, atoms=atoms, source=self.name, meta=meta)

    def _answers(self, video: Video, asked: np.ndarray, questions: Sequence[str]) -> tuple[dict[str, np.ndarray], int]:
        """Raw p(yes) (T,) float32 of each distinct question, asked at frames `asked` and interpolated between
        them, and how many came from the cache (new answers are stored there)."""
        T = int(video.frames.shape[0])
        keys = self._cache_keys(video, questions)  # {} when caching is off
        raw: dict[str, np.ndarray] = {}
        for q, key in keys.items():
            hit = self.cache.get(self.name, key)
            if hit is not None and hit.n_frames == T and "p" in hit.atoms:
                raw[q] = hit.atoms["p"]
        hits = len(raw)
        todo = [q for q in dict.fromkeys(questions) if q not in raw]
        if todo:
            fi = np.repeat(asked, len(todo))  # (A·Q,) frame of each (frame, question) pair, frame-major
            qq = [todo[j] for j in np.tile(np.arange(len(todo)), len(asked))]
            p = self.ask(video.frames, fi, qq).reshape(len(asked), len(todo))  # (A, Q)
            t = np.arange(T)
            for j, q in enumerate(todo):
                raw[q] = np.interp(t, asked, p[:, j]).astype(np.float32)
                if q in keys:
                    self.cache.put(self.name, keys[q], self._answer_record(video, q, raw[q]))
        return raw, hits

    def _cache_keys(self, video: Video, questions: Sequence[str]) -> dict[str, str]:
        """Cache key of each distinct question on this video with this model and stride ({} without a cache)."""
        if not self.cache.enabled:
            return {}
        vkey = video_key(video)
        ident = {"vlm": self.model_identity(), "dtype": self.cfg.dtype, "stride": self.cfg.vlm_stride}
        return {q: cache_key(vkey, self.name, ident, q) for q in dict.fromkeys(questions)}

    def _answer_record(self, video: Video, question: str, p: np.ndarray) -> Observations:
        """One question's answers as a cacheable Observations (no entities, atoms["p"] = p (T,))."""
        T, H, W = (int(x) for x in video.frames.shape[:3])
        empty = np.zeros((0, T), np.float32)
        return Observations(entities=(), n_frames=T, height=H, width=W, fps=float(video.fps),
                            boxes=empty.reshape(0, T, 1).repeat(4, 2), centers=empty.reshape(0, T, 1).repeat(2, 2),
                            visibility=empty, atoms={"p": p}, source=self.name, meta={"question": question})
