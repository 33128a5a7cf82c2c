"""Finding and loading model weights: a local directory or a hub id already in the Hugging Face cache (local
files only unless the user opts in), class checks with clear errors, device/dtype choice, and one in-process
copy of each loaded model."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....errors import GroundingError

_LOADED: dict[tuple, Any] = {}  # (class, dir, device, dtype) → model, shared by every grounder instance


@dataclass
class ModelStats:
    """Model calls and the seconds spent inside them (the rest of a grounder's time is our overhead)."""

    calls: int = 0
    seconds: float = 0.0
    per_model: dict[str, int] = field(default_factory=dict)

    def timed(self, name: str, fn, *args, **kwargs):
        """Run `fn(*args, **kwargs)` counting one call of model `name` and its wall time."""
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1
            self.per_model[name] = self.per_model.get(name, 0) + 1


def how_to_provide(role: str, source: str) -> str:
    """The fix line of a missing-model error."""
    return (f"provide it: set `[models] {role} = \"/path/to/dir\"` in ltlreward.toml (or --model {role}=/path), "
            f"or run `huggingface-cli download {source}` where the hub is reachable, "
            f"or allow downloads with `[models] allow_download = true`")


def resolve_model_dir(role: str, source: str, *, allow_download: bool = False) -> Path:
    """The local directory holding `role`'s weights: `source` itself if it is a directory, else the snapshot
    of hub id `source` in the Hugging Face cache (downloaded only with `allow_download`)."""
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise GroundingError(f"model {role!r}: {p} has no config.json (not a saved transformers model); "
                                 + how_to_provide(role, source))
        return p
    looks_local = source.startswith((".", "/", "~")) or source.count("/") != 1
    if looks_local:
        raise GroundingError(f"model {role!r}: directory {p} not found; " + how_to_provide(role, source))
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        raise GroundingError(f"model {role!r}: huggingface_hub is not installed "
                             "(pip install 'ltlreward[models]')") from None
    try:
        return Path(snapshot_download(source, local_files_only=not allow_download))
    except Exception as e:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors
        where = f"the Hugging Face cache ({HF_HUB_CACHE})"
        why = "not in the cache and downloads are off" if not allow_download else f"download failed: {e}"
        raise GroundingError(f"model {role!r} ({source}) not found: looked in {where}; {why}; "
                             + how_to_provide(role, source)) from None


def read_model_config(model_dir: Path) -> dict:
    """config.json of a saved model as a dict."""
    try:
        return json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise GroundingError(f"{model_dir / 'config.json'}: cannot read ({e})") from None


def read_preprocessor_config(model_dir: Path) -> dict:
    """preprocessor_config.json (image mean/std/size) of a saved model, {} when absent."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        f = model_dir / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError) as e:
                raise GroundingError(f"{f}: cannot read ({e})") from None
            return data.get("image_processor", data) if isinstance(data, dict) else {}
    return {}


def select_device(device: str = "auto", dtype: str = "auto", cpu_threads: int = 0) -> tuple[Any, Any, str]:
    """(torch.device, torch.dtype, note): cuda → bfloat16 when available, else cpu float32. Asking for cuda on
    a machine without it falls back to cpu (the note says so). `cpu_threads` > 0 sets torch's thread count
    when running on cpu."""
    import torch

    note = ""
    want = device.lower()
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        note = f"device {device!r} requested but CUDA is not available: running on cpu"
        want = "cpu"
    if not (want == "cpu" or want.startswith("cuda") or want == "mps"):
        raise GroundingError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    dev = torch.device(want)
    if dev.type == "cpu" and cpu_threads > 0 and torch.get_num_threads() != cpu_threads:
        torch.set_num_threads(cpu_threads)
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    elif dtype in names:
        dt = names[dtype]
        if dev.type == "cpu" and dt != torch.float32:
            note = (note + "; " if note else "") + f"dtype {dtype} on cpu: using float32"
            dt = torch.float32
    else:
        raise GroundingError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return dev, dt, note


def load_model(role: str, source: str, class_name: str, model_types: tuple[str, ...], *, device: str = "auto",
               dtype: str = "auto", allow_download: bool = False, cpu_threads: int = 0) -> tuple[Any, Path, str]:
    """(model in eval mode on its device, its directory, device note) for `role`: resolves the weights, checks
    that config.json's model_type is one `class_name` loads, and loads once per process."""
    import transformers

    model_dir = resolve_model_dir(role, source, allow_download=allow_download)
    cfg = read_model_config(model_dir)
    mtype = cfg.get("model_type", "?")
    if model_types and mtype not in model_types:
        arch = ", ".join(cfg.get("architectures") or []) or "unknown architecture"
        raise GroundingError(f"model {role!r} at {model_dir} is a {mtype!r} model ({arch}); this backend needs "
                             f"{class_name} (model_type {' or '.join(model_types)}); " + how_to_provide(role, source))
    dev, dt, note = select_device(device, dtype, cpu_threads)
    key = (class_name, str(model_dir.resolve()), str(dev), str(dt))
    if key not in _LOADED:
        cls = getattr(transformers, class_name)
        try:
            model = cls.from_pretrained(model_dir, dtype=dt, local_files_only=True)
        except Exception as e:
            raise GroundingError(f"model {role!r}: cannot load {class_name} from {model_dir}: {e}") from None
        _LOADED[key] = model.to(dev).eval()
    return _LOADED[key], model_dir, note


def load_tokenizer(role: str, model_dir: Path) -> Any:
    """The tokenizer saved with a model (AutoTokenizer, local files only)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except Exception as e:
        raise GroundingError(f"model {role!r}: no usable tokenizer in {model_dir}: {e}") from None


def clear_loaded() -> None:
    """Forget every loaded model (tests, memory)."""
    _LOADED.clear()
