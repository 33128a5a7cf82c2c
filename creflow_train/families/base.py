"""The adapter base of a model family: loaded parts, prompt conditioning and the `VideoFamily` interface.

A family owns everything that differs between pipelines: loading its parts from a diffusers-layout directory
(transformer/ vae/ text_encoder/ tokenizer/), the VAE's compression and latent shape, prompt encoding, the
transformer call (its latent layout, timestep and conditioning inputs) and VAE decoding. The trainer, rollouts
and LoRA policy only see (B, C, T′, H′, W′) latents, `TextCond` prompts and (B, T, C, H, W) frames in [0, 1].
The concrete families (wan.py, ltx.py) import this module; the registry lives in the package's __init__.

Image-to-video: `encode_images` turns one first-frame image per prompt into conditioning that rides on the
`TextCond` rows (`image`: the family's conditioning latents; `image_embeds`: CLIP tokens for Wan2.1-I2V).
Whenever a row carries an image, latent frame 0 is the conditioning frame (`CONDITIONING_FRAMES`): the families
that replace it (Wan2.2-TI2V, LTX-Video) keep it clean in every forward and in the solver, and the trainer
leaves it out of every mask and loss term. The solver's time grid is the checkpoint's scheduler's (`sigmas`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer")
CONDITIONING_FRAMES = 1  # latent frames an image fixes: the first (causal VAEs encode pixel frame 0 alone)
FLOW_SCHEDULER = "FlowMatchEulerDiscreteScheduler"


@dataclass
class ModelParts:
    """The pieces of a diffusers video checkpoint the trainer uses (the optional ones default to absent).

    `transformer_2` / `pipeline_config["boundary_ratio"]`: Wan2.2-A14B's low-noise expert and where it takes
    over; `image_encoder` / `image_processor`: Wan2.1-I2V's CLIP; `scheduler_config`: scheduler/'s config
    (shift, dynamic shift); `pipeline_config`: model_index.json (e.g. `expand_timesteps` of Wan2.2-TI2V).
    """

    transformer: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    transformer_2: Any = None
    image_encoder: Any = None
    image_processor: Any = None
    scheduler_config: dict[str, Any] | None = None
    pipeline_config: dict[str, Any] | None = None

    def transformers(self) -> list[Any]:
        """The denoisers: [transformer] or, with two experts, [transformer, transformer_2]."""
        return [t for t in (self.transformer, self.transformer_2) if t is not None]


@dataclass
class TextCond:
    """Conditioning of a batch: text embeddings (B, L, D), the token mask (B, L) (True at real tokens) and, for
    image-to-video, the family's image conditioning `image` (B, C_img, T_img, H′, W′) and CLIP tokens
    `image_embeds` (B, L_img, D_img) (Wan2.1-I2V only). Rows are rollouts; every tensor is indexed together."""

    embeds: torch.Tensor
    mask: torch.Tensor
    image: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.embeds.shape[0])

    def _map(self, fn: Any) -> TextCond:
        """fn applied to every tensor present (absent image parts stay None)."""
        return TextCond(fn(self.embeds), fn(self.mask), *(None if x is None else fn(x)
                                                          for x in (self.image, self.image_embeds)))

    def __getitem__(self, rows: Any) -> TextCond:
        """The rows `rows` (slice, index list or index tensor) of every tensor."""
        import torch

        if isinstance(rows, torch.Tensor):
            rows = rows.to(self.embeds.device)
        return self._map(lambda x: x[rows])

    def repeat_interleave(self, k: int) -> TextCond:
        """Each row repeated k times in place (a prompt's group of K rollouts)."""
        return self._map(lambda x: x.repeat_interleave(k, dim=0))

    def to(self, device: Any) -> TextCond:
        """Every tensor on `device`."""
        return self._map(lambda x: x.to(device))

    def with_text(self, text: TextCond) -> TextCond:
        """These rows' image conditioning with `text`'s embeddings and mask (the negative-prompt branch)."""
        return TextCond(text.embeds, text.mask, self.image, self.image_embeds)

    @property
    def conditioning_frames(self) -> int:
        """Latent frames fixed by an image (the first one when rows carry an image, else 0)."""
        return CONDITIONING_FRAMES if self.image is not None else 0


def as_cond(cond: TextCond | torch.Tensor) -> TextCond:
    """A TextCond as is; a bare (B, L, D) embedding tensor gets an all-true mask."""
    import torch

    if isinstance(cond, TextCond):
        return cond
    return TextCond(cond, torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device))


class VideoFamily:
    """Adapter of one loaded checkpoint: latent shape, prompt encoding, transformer call and VAE decode."""

    name: ClassVar[str]
    # (diffusers transformer class, diffusers VAE class, transformers text-encoder class) of the checkpoint
    part_classes: ClassVar[tuple[str, str, str]]
    max_sequence_length: ClassVar[int] = 512  # the family's pipeline default (Wan 512, LTX 128)
    guidance_scale: ClassVar[float] = 5.0  # the pipeline's default guidance (for the docs; configs set their own)

    def __init__(self, parts: ModelParts, frame_rate: float = 25.0) -> None:
        """Wrap loaded parts; `frame_rate` is the videos' fps (LTX scales its RoPE time axis by it)."""
        self.parts = parts
        self.frame_rate = float(frame_rate)

    # -------------------------------------------------------------- per family
    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], dtype: Any = None) -> ModelParts:
        """Load transformer/ (in `dtype`), vae/ (float32), text_encoder/ and tokenizer/ from a diffusers-layout
        directory of this family, frozen and in eval mode."""
        import diffusers
        import torch
        import transformers

        root = check_subfolders(model_dir, cls.name)
        dtype = dtype or torch.float32
        t_cls, v_cls, e_cls = cls.part_classes
        transformer = getattr(diffusers, t_cls).from_pretrained(root, subfolder="transformer", torch_dtype=dtype)
        vae = getattr(diffusers, v_cls).from_pretrained(root, subfolder="vae", torch_dtype=torch.float32)
        text_encoder = getattr(transformers, e_cls).from_pretrained(root, subfolder="text_encoder", dtype=dtype)
        tokenizer = transformers.AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
        freeze(transformer, vae, text_encoder)
        return load_optional_parts(root, ModelParts(transformer, vae, text_encoder, tokenizer), t_cls, dtype)

    @property
    def temporal(self) -> int:
        """VAE temporal compression: T′ = 1 + (T − 1) // temporal (causal first frame)."""
        raise NotImplementedError

    @property
    def spatial(self) -> int:
        """VAE spatial compression: H′ = H // spatial, W′ = W // spatial."""
        raise NotImplementedError

    @property
    def latent_channels(self) -> int:
        """Channels C of the latents the transformer denoises."""
        raise NotImplementedError

    @property
    def patch(self) -> tuple[int, int]:
        """Transformer patch sizes (temporal, spatial) that T′ and H′, W′ must be multiples of."""
        raise NotImplementedError

    def encode_prompts(self, prompts: Sequence[str], max_length: int) -> TextCond:
        """Text conditioning (P, max_length, D) of the prompts, as the family's pipeline computes it."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Raw transformer output for latents x (B, C, T′, H′, W′) at timestep (B,) = t·1000, same shape as x."""
        raise NotImplementedError

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Normalised clean latents (B, C, T′, H′, W′) → frames (B, T, C, H, W) float in [0, 1] on the CPU."""
        raise NotImplementedError

    def encode_images(
        self, images: Sequence[Any], num_frames: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image conditioning of one first frame (a PIL image) per prompt: the family's `image` tensor
        (P, C_img, T_img, H′, W′) and CLIP tokens (P, L, D) or None, as its image-to-video pipeline computes them."""
        raise ConfigError(f"images: the {self.name} family does not support image-to-video conditioning")

    def with_images(self, cond: TextCond, images: Sequence[Any], num_frames: int, height: int,
                    width: int) -> TextCond:
        """`cond` (one row per prompt) with the image conditioning of one first frame per prompt added."""
        if len(images) != len(cond):
            raise ConfigError(f"images: {len(images)} images for {len(cond)} prompts (need one per prompt)")
        image, embeds = self.encode_images(images, num_frames, height, width)
        dev = cond.embeds.device
        return TextCond(cond.embeds, cond.mask, image.to(dev), None if embeds is None else embeds.to(dev))

    def sigmas(self, steps: int, latent_shape: Sequence[int], shift: float | None = None) -> torch.Tensor:
        """The solver's time grid (steps + 1,) float32 from 1 to 0, as the family's pipeline sets its scheduler."""
        import torch

        scheduler = self.scheduler(shift)
        scheduler.set_timesteps(steps)
        return scheduler.sigmas.to(torch.float32)

    # ------------------------------------------------------------------ shared
    def requires_images(self) -> bool:
        """Whether the checkpoint cannot generate without a first-frame image (Wan2.1-I2V)."""
        return False

    def fix_conditioning(self, x: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """x with its conditioning frame set to the image latent where the family replaces it (identity
        otherwise); x (B, C, T′, H′, W′)."""
        if cond.image is None or not self.replaces_first_frame:
            return x
        f = cond.conditioning_frames
        return _cat_frames(cond.image[:, :, :f].to(x.dtype), x[:, :, f:])

    replaces_first_frame: ClassVar[bool] = False  # first latent frame := the encoded image (TI2V, LTX-I2V)

    def scheduler(self, shift: float | None = None) -> Any:
        """A FlowMatchEulerDiscreteScheduler configured like the checkpoint's scheduler/: its own config when it
        is one; the `flow_shift` (or `shift`) of another flow scheduler (Wan ships UniPC: our solver is Euler on
        the same shifted grid); diffusers' defaults without a scheduler/. `shift` overrides (static shift)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        cfg = dict(self.parts.scheduler_config or {})
        if cfg.get("_class_name", FLOW_SCHEDULER) != FLOW_SCHEDULER:
            cfg = {"shift": float(cfg.get("flow_shift", cfg.get("shift", 1.0))),
                   "num_train_timesteps": int(cfg.get("num_train_timesteps", 1000))}
        if shift is not None:
            cfg |= {"shift": float(shift), "use_dynamic_shifting": False}
        return FlowMatchEulerDiscreteScheduler.from_config(cfg)

    def preprocess_images(self, images: Sequence[Any], height: int, width: int) -> torch.Tensor:
        """PIL images → (P, 3, H, W) float32 in [−1, 1], resized as the pipelines' VideoProcessor does."""
        import torch
        from diffusers.video_processor import VideoProcessor

        vp = VideoProcessor(vae_scale_factor=self.spatial)
        return torch.cat([vp.preprocess(im, height=height, width=width) for im in images]).to(torch.float32)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T′, H′, W′) for a (num_frames, height, width) video; ConfigError names a size the model can't take."""
        st, ss = self.temporal, self.spatial
        pt, ps = self.patch
        if (num_frames - 1) % st:
            raise ConfigError(f"num_frames: {self.name} needs 1 + {st}·k frames, got {num_frames}")
        for key, size in (("height", height), ("width", width)):
            if size % (ss * ps):
                raise ConfigError(f"{key}: {self.name} needs a multiple of {ss * ps} (VAE {ss} × patch {ps}), "
                                  f"got {size}")
        tl = 1 + (num_frames - 1) // st
        if tl % pt:
            raise ConfigError(f"num_frames: {tl} latent frames are not a multiple of the temporal patch {pt}")
        return self.latent_channels, tl, height // ss, width // ss

    def to(self, device: Any) -> VideoFamily:
        """Move the transformer(s), VAE, text encoder and image encoder to `device`."""
        p = self.parts
        for m in (*p.transformers(), p.vae, p.text_encoder, p.image_encoder):
            if m is not None:  # absent parts, and a text encoder the trainer freed (text_encoder_after: free)
                m.to(device)
        return self


def _cat_frames(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate along the latent frame axis (dim 2)."""
    import torch

    return torch.cat([a, b], dim=2)


def read_json(path: str) -> dict[str, Any] | None:
    """A JSON file's mapping, or None when the file does not exist."""
    import json

    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"model: {path} is unreadable: {e}") from e


def load_optional_parts(root: str, parts: ModelParts, transformer_class: str, dtype: Any) -> ModelParts:
    """Add what a checkpoint may hold besides the four required parts: model_index.json, scheduler/'s config,
    Wan2.2-A14B's transformer_2/ (when model_index.json names one), Wan2.1-I2V's image_encoder/ + image_processor/."""
    import diffusers
    import transformers

    parts.pipeline_config = read_json(os.path.join(root, "model_index.json"))
    parts.scheduler_config = read_json(os.path.join(root, "scheduler", "scheduler_config.json"))
    index = parts.pipeline_config or {}
    if os.path.isdir(os.path.join(root, "transformer_2")) and (index.get("transformer_2") or [None])[0] is not None:
        parts.transformer_2 = getattr(diffusers, transformer_class).from_pretrained(
            root, subfolder="transformer_2", torch_dtype=dtype or parts.transformer.dtype)
        freeze(parts.transformer_2)
    if os.path.isdir(os.path.join(root, "image_encoder")):
        parts.image_encoder = transformers.CLIPVisionModel.from_pretrained(root, subfolder="image_encoder")
        parts.image_processor = transformers.CLIPImageProcessor.from_pretrained(root, subfolder="image_processor")
        freeze(parts.image_encoder)
    return parts


def freeze(*modules: Any) -> None:
    """No gradients and eval mode for every module (the base model never trains)."""
    for m in modules:
        m.requires_grad_(False)
        m.eval()


def check_subfolders(model_dir: str | os.PathLike[str], family: str) -> str:
    """The directory as a string, after checking it has transformer/, vae/, text_encoder/ and tokenizer/."""
    root = os.fspath(model_dir)
    for sub in SUBFOLDERS:
        if not os.path.isdir(os.path.join(root, sub)):
            raise ConfigError(f"model: {root} is missing subfolder {sub}/ (expected a diffusers {family} checkpoint)")
    return root
