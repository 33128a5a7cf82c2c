"""Real-size benchmark of one `creflow train` step: random-initialised models of the real Wan configs.

Builds, in memory and offline, a WanTransformer3DModel with the published Wan2.1-T2V-1.3B (or Wan2.2-TI2V-5B)
transformer config — optionally with fewer layers, each of the real width — and an AutoencoderKLWan with the real
Wan2.1 (or Wan2.2) VAE config, plus a 1-layer UMT5 of the real output width (the prompts are encoded once per run,
outside the step). Then it times one `Trainer.train_step` (K rollouts per prompt: sampling, VAE decoding, the
ltlreward reward, the loss pass with its backward) and records peak memory: the process's RSS (psutil, sampled
every 5 ms) and Python's allocations (tracemalloc) on CPU, torch.cuda.max_memory_allocated on a GPU. It also
measures the activation memory autograd keeps per token per transformer layer, with and without gradient
checkpointing (exact bytes: every tensor saved for the backward pass, plus the inputs a checkpointed block keeps).

    python benchmarks/real_size/run.py --preset cpu --json benchmarks/real_size/results_cpu.json
    python benchmarks/real_size/run.py --preset gpu-33 --json gpu33.json      # on a GPU (not run yet)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Published diffusers configs (transformer/config.json, vae/config.json) of the two checkpoints.
WAN21_T2V_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                      out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                      qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN21_VAE: dict[str, Any] = {}  # AutoencoderKLWan's defaults are the Wan2.1 VAE (base_dim 96, z 16, 8×/4×)
WAN22_TI2V_5B = dict(WAN21_T2V_1_3B, num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336)
WAN22_VAE = dict(base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12,
                 patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
                 latents_mean=[0.0] * 48, latents_std=[1.0] * 48)  # (random weights: the real mean/std don't matter)
MODELS = {"wan2.1-1.3b": (WAN21_T2V_1_3B, WAN21_VAE), "wan2.2-ti2v-5b": (WAN22_TI2V_5B, WAN22_VAE)}


@dataclass
class Setting:
    """One benchmark configuration (a preset, with command-line overrides)."""

    model: str = "wan2.1-1.3b"
    layers: int = 30  # transformer layers, each of the real width (30 in both real checkpoints)
    frames: int = 33
    height: int = 480
    width: int = 832
    k: int = 4  # rollouts per prompt
    inference_steps: int = 10
    dtype: str = "bf16"
    gradient_checkpointing: bool = True
    micro_batch: int = 1
    device: str = "cuda"
    lora_rank: int = 32
    vae_tiling: bool = False
    text_len: int = 512  # max_sequence_length (WanPipeline's 512; the CPU presets use 16)
    shift: float = 3.0  # the solver grid's static shift (Wan2.1-1.3B's scheduler ships flow_shift 3)


PRESETS = {
    "smoke": Setting(layers=1, frames=5, height=32, width=48, inference_steps=1, dtype="fp32", device="cpu",
                     micro_batch=0, lora_rank=4, text_len=16),
    "cpu": Setting(layers=2, frames=9, height=64, width=112, inference_steps=2, dtype="fp32", device="cpu",
                   micro_batch=0, text_len=16),
    "gpu-33": Setting(frames=33),
    "gpu-81": Setting(frames=81),
}

SPEC = ROOT / "specs" / "toy_carry.ltl"
PROMPT = "a gripper square carries the red block to the green goal zone"


def build_parts(s: Setting, seed: int = 0) -> Any:
    """Random-initialised ModelParts of the real configs (transformer with `s.layers` layers) in `s.dtype`."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    from creflow_train.config import WEIGHT_DTYPES
    from creflow_train.families import ModelParts, freeze
    from creflow_train.testing import save_tiny_tokenizer

    torch.manual_seed(seed)
    t_cfg, v_cfg = MODELS[s.model]
    dtype = getattr(torch, WEIGHT_DTYPES[s.dtype])
    transformer = WanTransformer3DModel(**(t_cfg | {"num_layers": s.layers}))
    if dtype != torch.float32:  # as from_pretrained(torch_dtype=…): diffusers keeps some modules float32
        keep = set(transformer._keep_in_fp32_modules or ())
        for name, p in transformer.named_parameters():
            if not keep & set(name.split(".")):
                p.data = p.data.to(dtype)
    vae = AutoencoderKLWan(**v_cfg)
    enc = UMT5EncoderModel(UMT5Config(vocab_size=32, d_model=t_cfg["text_dim"], d_kv=64, d_ff=256, num_layers=1,
                                      num_heads=2, relative_attention_num_buckets=8)).to(dtype)
    with tempfile.TemporaryDirectory() as d:
        save_tiny_tokenizer(d)
        tok = AutoTokenizer.from_pretrained(d)
    freeze(transformer, vae, enc)
    return ModelParts(transformer, vae, enc, tok)


class PeakRss:
    """Peak resident set size of this process while the context runs (psutil, sampled every 5 ms)."""

    def __enter__(self) -> PeakRss:
        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _timed(obj: Any, name: str, phases: dict[str, float]) -> None:
    """Wrap obj.name so each call adds its wall time to phases[name]."""
    inner = getattr(obj, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

    setattr(obj, name, wrapper)


class _TimedReward:
    """A reward model whose calls are timed into phases["reward"]."""

    def __init__(self, model: Any, phases: dict[str, float]) -> None:
        self.model, self.phases = model, phases

    def __call__(self, videos: Any, *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.model(videos, *a, **k)
        finally:
            self.phases["reward"] = self.phases.get("reward", 0.0) + time.perf_counter() - t0


def time_step(s: Setting, out_dir: str) -> dict[str, Any]:
    """Build the trainer on the random real-config parts and time one train_step, phase by phase."""
    import torch

    from creflow_train.config import TrainConfig
    from creflow_train.trainer import Trainer
    from ltlreward import RewardModel

    parts = build_parts(s)
    cfg = TrainConfig(model="<in memory>", spec=str(SPEC), prompts=[PROMPT], output_dir=out_dir, steps=1,
                      group_size=s.k, num_frames=s.frames, height=s.height, width=s.width,
                      num_inference_steps=s.inference_steps, max_sequence_length=s.text_len, shift=s.shift,
                      grounder="color",
                      device=s.device, lora_rank=s.lora_rank, lora_alpha=2.0 * s.lora_rank, tensorboard=False,
                      dtype=s.dtype, gradient_checkpointing=s.gradient_checkpointing, micro_batch=s.micro_batch,
                      text_encoder_after="free", vae_tiling=s.vae_tiling).validate()
    phases: dict[str, float] = {}
    reward = _TimedReward(RewardModel(str(SPEC), grounder="color", fps=cfg.fps), phases)
    trainer = Trainer(cfg, parts=parts, reward_model=reward)
    _timed(trainer.family, "decode", phases)
    _timed(trainer, "_sample_and_score", phases)
    _timed(trainer, "_backward_losses", phases)
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        res = trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
        total = time.perf_counter() - t0
    py_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    sampling = phases["_sample_and_score"] - phases.get("decode", 0.0) - phases.get("reward", 0.0)
    n_params = sum(p.numel() for p in trainer.parts.transformer.parameters())
    return {
        "setting": asdict(s), "transformer_params": n_params, "latent_shape": list(trainer.shape),
        "tokens_per_sample": int(trainer.shape[1] * trainer.shape[2] * trainer.shape[3] // 4),
        "skipped": res.skipped, "step_s": round(total, 3),
        "phases_s": {"sampling": round(sampling, 3), "decoding": round(phases.get("decode", 0.0), 3),
                     "reward": round(phases.get("reward", 0.0), 3),
                     "loss_pass": round(phases.get("_backward_losses", 0.0), 3)},
        "peak_rss_gb": round(rss.peak / 2**30, 3), "rss_growth_in_step_gb": round((rss.peak - rss.start) / 2**30, 3),
        "python_alloc_peak_mb": round(py_peak / 2**20, 1),
        "cuda_max_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
    }


def activation_bytes(model: str, layers: int, tokens_hw: tuple[int, int, int], *, checkpointing: bool,
                     autocast_bf16: bool, device: str = "cpu") -> int:
    """Bytes autograd keeps for one real-width transformer forward of one sample: the storages of every tensor
    saved for the backward pass, plus (checkpointing) the inputs each checkpointed block holds until its
    recomputation; each storage counted once, the model's weights not at all."""
    import torch
    import torch.utils.checkpoint
    from diffusers import WanTransformer3DModel

    t_cfg = MODELS[model][0]
    torch.manual_seed(0)
    net = WanTransformer3DModel(**(t_cfg | {"num_layers": layers})).to(device)
    net.requires_grad_(False)
    for blk in net.blocks:  # a trainable adapter-sized weight in every block, so every block is in the graph
        blk.attn1.to_q.weight.requires_grad_(True)
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    kept: dict[int, int] = {}  # storage address → bytes: a tensor saved by several ops is held once

    def keep(t: torch.Tensor) -> None:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:  # weights saved for the input gradient are not activations
            kept[ptr] = t.untyped_storage().nbytes()

    def ckpt(module: Any, *args: Any) -> Any:
        for a in args:
            for u in (a if isinstance(a, tuple) else (a,)):
                if isinstance(u, torch.Tensor):
                    keep(u)
        return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False)

    if checkpointing:
        net.enable_gradient_checkpointing(ckpt)

    def pack(t: torch.Tensor) -> torch.Tensor:
        keep(t)
        return t

    t, h, w = tokens_hw
    x = torch.randn(1, t_cfg["in_channels"], t, 2 * h, 2 * w, device=device)
    text = torch.randn(1, 16, t_cfg["text_dim"], device=device)
    ctx = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=autocast_bf16)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda u: u), ctx:
        out = net(hidden_states=x, timestep=torch.tensor([500.0], device=device), encoder_hidden_states=text,
                  return_dict=False)[0]
    del out  # the graph (and every kept tensor) was alive until here, so no address was reused
    return sum(kept.values())


def activations(model: str, grids: list[tuple[int, int, int]], device: str = "cpu") -> list[dict[str, Any]]:
    """Activation memory per layer as a + b·tokens, for fp32 / bf16 autocast × checkpointing off / on.

    Per layer = bytes with 2 layers − bytes with 1 (removes the embeddings and the head), at the smallest and
    the largest token grid; b (KB per token per layer) is the slope between them, a (MB per layer) what does not
    grow with tokens — under autocast, the bf16 copies of the frozen weights that the backward pass needs.
    """
    small, large = min(grids, key=_tokens), max(grids, key=_tokens)
    if _tokens(small) == _tokens(large):
        raise ValueError("the activation measurement needs two token grids of different sizes")
    rows = []
    for bf16 in (False, True):
        for ckpt in (False, True):
            per_layer = {}
            for grid in (small, large):
                one, two = (activation_bytes(model, n, grid, checkpointing=ckpt, autocast_bf16=bf16, device=device)
                            for n in (1, 2))
                per_layer[_tokens(grid)] = two - one
            (n1, b1), (n2, b2) = sorted(per_layer.items())
            slope = (b2 - b1) / (n2 - n1)
            rows.append({"model": model, "tokens": [n1, n2], "autocast_bf16": bf16, "gradient_checkpointing": ckpt,
                         "per_layer_mb": {str(n): round(b / 2**20, 2) for n, b in per_layer.items()},
                         "kb_per_token_per_layer": round(slope / 1024, 2),
                         "fixed_mb_per_layer": round((b1 - slope * n1) / 2**20, 2)})
    return rows


def decode_640x480(seconds: float = 5.0, fps: float = 24.0, repeat: int = 3) -> dict[str, Any]:
    """ms per frame to decode a 5-s 640×480 H.264 clip (moving squares, written here) with ltlreward's reader,
    best of `repeat` — the decode cost docs/scaling.md sizes the CPUs with."""
    import numpy as np

    from ltlreward.video import read_video, write_video

    n = int(seconds * fps)
    yy, xx = np.mgrid[:480, :640]
    frames = np.zeros((n, 480, 640, 3), np.uint8)  # (T, H, W, 3)
    for i in range(n):  # two squares crossing the frame (≈ realistic inter-frame motion for the codec)
        for c, (x0, y0) in enumerate(((20 + 4 * i, 60), (560 - 3 * i, 300))):
            frames[i, ..., c][(xx >= x0) & (xx < x0 + 80) & (yy >= y0) & (yy < y0 + 80)] = 220
        frames[i, ..., 2] += np.uint8(30 + i % 50)
    with tempfile.TemporaryDirectory() as d:
        path = write_video(Path(d) / "clip.mp4", frames, fps)
        best = min(_seconds(lambda p=path: read_video(p)) for _ in range(repeat))
        best_224 = min(_seconds(lambda p=path: read_video(p, size=(224, 224))) for _ in range(repeat))
    return {"frames": n, "size": [640, 480], "ms_per_frame": round(1e3 * best / n, 3),
            "ms_per_frame_resized_224": round(1e3 * best_224 / n, 3)}


GROUNDER_SHAPES = {  # model forward inputs as each processor makes them from one 640×480 frame, 3 entities
    "grounding-dino-tiny": "GroundingDinoForObjectDetection(GroundingDinoConfig()): Swin-T + BERT-base, 900 queries; "
                           "pixels 800×1066, 12 text tokens",
    "owlv2-base-patch16": "Owlv2ForObjectDetection(Owlv2Config(), vision image_size 960): ViT-B/16; pixels 960×960, "
                          "3 queries × 16 tokens",
    "sam2.1-hiera-tiny": "Sam2Model(Sam2Config()): Hiera-T [1, 2, 7, 2]; pixels 1024×1024, one box prompt "
                         "(image encoder + mask decoder: the video model adds memory attention)",
    "qwen2-vl-2b": "Qwen2VLForConditionalGeneration, Qwen2-VL-2B's config (28 × 1536 text, 32-block ViT); one "
                   "640×480 frame resized to 644×476 (1 564 patches → 391 image tokens) + 28 text tokens, one "
                   "forward (a yes/no answer's first token)",
}


def _qwen2_vl_2b() -> tuple[Any, dict[str, Any]]:
    """A random Qwen2-VL-2B (the released config.json's sizes) and one frame's inputs as its processor makes them."""
    import torch
    import transformers as tf

    cfg = tf.Qwen2VLConfig(
        text_config=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                         rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        tie_word_embeddings=True)
    gh, gw = 476 // 14, 644 // 14  # the processor's 28-multiple resize of 480 × 640
    ids = torch.cat([torch.randint(1000, 2000, (12,)), torch.tensor([cfg.vision_start_token_id]),
                     torch.full((gh * gw // 4,), cfg.image_token_id), torch.tensor([cfg.vision_end_token_id]),
                     torch.randint(1000, 2000, (15,))])[None]  # (1, 28 + 391)
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), image_grid_thw=torch.tensor([[1, gh, gw]]),
                  pixel_values=torch.rand(gh * gw, 3 * 2 * 14 * 14), mm_token_type_ids=(ids == cfg.image_token_id).long())
    return tf.Qwen2VLForConditionalGeneration(cfg), inputs


def grounder_forwards(repeat: int = 1, device: str = "cpu", only: set[str] | None = None) -> list[dict[str, Any]]:
    """Seconds per frame of one random-initialised forward at the real shapes (transformers' default configs are
    those checkpoints'), best of `repeat`, no gradient — the model time per frame docs/scaling.md sizes GPUs with."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    builds = {
        "grounding-dino-tiny": lambda: (tf.GroundingDinoForObjectDetection(tf.GroundingDinoConfig()), dict(
            pixel_values=torch.rand(1, 3, 800, 1066), input_ids=torch.randint(1000, 2000, (1, 12)),
            attention_mask=torch.ones(1, 12, dtype=torch.long))),
        "owlv2-base-patch16": lambda: (tf.Owlv2ForObjectDetection(tf.Owlv2Config(vision_config={"image_size": 960})),
                                       dict(pixel_values=torch.rand(1, 3, 960, 960),
                                            input_ids=torch.randint(1000, 2000, (3, 16)),
                                            attention_mask=torch.ones(3, 16, dtype=torch.long))),
        "sam2.1-hiera-tiny": lambda: (tf.Sam2Model(tf.Sam2Config()), dict(
            pixel_values=torch.rand(1, 3, 1024, 1024), input_boxes=torch.tensor([[[100.0, 100.0, 400.0, 300.0]]]))),
        "qwen2-vl-2b": _qwen2_vl_2b,
    }
    rows = []
    for name, build in builds.items():
        if only and name not in only:
            continue
        try:
            model, inputs = build()
            model.eval().to(device)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
            with torch.no_grad():
                best = min(_seconds(lambda m=model, x=inputs, f=sync: (m(**x), f())) for _ in range(repeat))
        except Exception as e:  # a benchmark row, not a crash: report what failed
            rows.append({"model": name, "error": f"{type(e).__name__}: {e}"[:300]})
            continue
        n_params = sum(p.numel() for p in model.parameters())
        rows.append({"model": name, "shapes": GROUNDER_SHAPES[name], "params_m": round(n_params / 1e6, 1),
                     "s_per_frame": round(best, 3), "frames_per_s": round(1 / best, 3),
                     "s_per_5s_clip_at_24fps": round(120 * best, 1)})
        del model
    return rows


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _tokens(grid: tuple[int, int, int]) -> int:
    return grid[0] * grid[1] * grid[2]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the step timing and the activation measurement, print and optionally save JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu", choices=tuple(PRESETS))
    for key in ("layers", "frames", "height", "width", "k", "inference_steps", "micro_batch"):
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    ap.add_argument("--model", choices=tuple(MODELS), default=None)
    ap.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--vae-tiling", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--activation-grids", default="1x15x26,1x30x52",
                    help="two post-patch token grids T'xH'/2xW'/2 for the activation measurement ('' = skip); "
                         "1x30x52 is one latent frame of 480x832")
    ap.add_argument("--skip-step", action="store_true", help="no train-step timing")
    ap.add_argument("--decode", action=argparse.BooleanOptionalAction, default=True,
                    help="time decoding a 5-s 640x480 clip")
    ap.add_argument("--grounders", action="store_true",
                    help="time one forward of grounding-dino-tiny / owlv2-base / sam2.1-hiera-tiny / qwen2-vl-2b at "
                         "real shapes")
    ap.add_argument("--grounder-models", default="", help="comma list of those (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    over = {k: v for k, v in vars(args).items() if k in Setting.__dataclass_fields__ and v is not None}
    s = replace(PRESETS[args.preset], **over)
    out: dict[str, Any] = {"preset": args.preset, "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "load_avg": [round(x, 2) for x in os.getloadavg()]}
    if not args.skip_step:
        with tempfile.TemporaryDirectory() as d:
            out["step"] = time_step(s, d)
        print(json.dumps(out["step"], indent=1))
    grids = [tuple(int(v) for v in g.split("x")) for g in args.activation_grids.split(",") if g]
    if grids:
        out["activations"] = activations(s.model, grids, device=s.device)
        for row in out["activations"]:
            print(json.dumps(row))
    if args.decode:
        out["decode_640x480"] = decode_640x480()
        print(json.dumps(out["decode_640x480"]))
    if args.grounders:
        out["grounders"] = grounder_forwards(device=s.device, only={m for m in args.grounder_models.split(",") if m})
        for row in out["grounders"]:
            print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
