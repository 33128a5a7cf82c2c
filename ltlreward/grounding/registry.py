"""Grounder registry: lazy "module:Class" entries so heavy backends import only when chosen."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ltlreward.errors import GroundingError
from ltlreward.grounding.base import OBSERVATION_FIELDS, Grounder, find_sidecar
from ltlreward.grounding.observations import Observations

if TYPE_CHECKING:
    from ltlreward.spec.ast import Entity
    from ltlreward.video import Video

_REGISTRY: dict[str, str] = {
    "state": "ltlreward.grounding.backends.state:StateGrounder",
    "color": "ltlreward.grounding.backends.color:ColorGrounder",
    "gdino-sam2": "ltlreward.grounding.backends.models.gdino_sam2:GdinoSam2Grounder",
    "owlv2": "ltlreward.grounding.backends.models.gdino_sam2:Owlv2Sam2Grounder",
    "vlm": "ltlreward.grounding.backends.models.vlm:VLMGrounder",
    "gdino-sam2+vlm": "ltlreward.grounding.backends.models.composite:GdinoSam2VlmGrounder",
    "owlv2+vlm": "ltlreward.grounding.backends.models.composite:Owlv2VlmGrounder",
    "sam3": "ltlreward.grounding.backends.models.sam3:Sam3Grounder",
    "sam3+vlm": "ltlreward.grounding.backends.models.composite:Sam3VlmGrounder",
}
_ALIASES = {"colour": "color", "sim": "state"}


def register_grounder(name: str, target: str) -> None:
    """Register backend `name` as a lazy "package.module:ClassName" target (later backends, plugins)."""
    if ":" not in target:
        raise ValueError(f"grounder target must look like 'package.module:ClassName', got {target!r}")
    _REGISTRY[name] = target


def available_grounders() -> tuple[str, ...]:
    """Registered backend names (plus 'auto'), sorted."""
    return ("auto", *sorted(_REGISTRY))


def _load(name: str) -> type:
    module_name, _, attr = _REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise GroundingError(f"grounder {name!r} needs a package that is not installed: {e}") from None
    return getattr(module, attr)


def get_grounder(name: str = "auto", **options: Any) -> Grounder:
    """An instance of backend `name` built with `options`; unknown names list the available ones."""
    key = _ALIASES.get(name, name)
    if key == "auto":
        return AutoGrounder(**options)
    if key not in _REGISTRY:
        raise GroundingError(f"unknown grounder {name!r}; available: {', '.join(available_grounders())}")
    cls = _load(key)
    try:
        return cls(**options)
    except TypeError as e:
        raise GroundingError(f"bad options for grounder {key!r}: {e}") from None


_MODEL_PIPELINES = (("gdino-sam2", ("grounding_dino", "sam2")), ("owlv2", ("owlv2", "sam2")), ("sam3", ("sam3",)))


def configured_model_backend(config: str | Path | None = None, models: dict[str, str] | None = None) -> str | None:
    """The model backend 'auto' uses when weights are configured — roles named in the model config file
    (`ltlreward.toml`, see models/config.py) or by `--model ROLE=…` — else None. A tracker pipeline is picked
    first (gdino-sam2, owlv2, sam3); a configured `vlm` is added to it ("+vlm") or used alone."""
    import tomllib

    from ltlreward.grounding.backends.models.config import find_config  # light: no torch/transformers

    roles = set(models or {})
    path = find_config(config)
    if path is not None:
        try:
            roles |= set(tomllib.loads(path.read_text()).get("models") or {})
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise GroundingError(f"{path}: not a valid TOML config ({e})") from None
    tracker = next((name for name, need in _MODEL_PIPELINES if set(need) <= roles), None)
    if tracker is None:
        return "vlm" if "vlm" in roles else None
    return f"{tracker}+vlm" if "vlm" in roles else tracker


def resolve_auto(
    video_path: str | Path | None,
    sidecar: str | Path | None = None,
    *,
    config: str | Path | None = None,
    models: dict[str, str] | None = None,
) -> str:
    """The backend 'auto' picks: 'state' when a sidecar is given or sits next to the video, else the model
    backend whose weights are configured (`configured_model_backend`), else 'color'."""
    if sidecar is not None or find_sidecar(video_path) is not None:
        return "state"
    return configured_model_backend(config, models) or "color"


def _accepts(name: str) -> tuple[set[str], bool]:
    """Keyword parameters of backend `name`'s constructor, and whether it takes **options."""
    params = inspect.signature(_load(name)).parameters
    return set(params), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class AutoGrounder:
    """Chooses a backend per video with `resolve_auto` and delegates to it (instances cached by name)."""

    name = "auto"
    provides = frozenset(OBSERVATION_FIELDS)  # the union; the chosen backend's set is in obs.meta["provides"]

    def __init__(self, **options: Any) -> None:
        # options either per backend ({"color": {"downsample": 1}}) or flat ({"downsample": 1}); a flat option
        # goes to each backend whose constructor takes it, and one that no backend takes is an error
        self._cache: dict[str, Grounder] = {}
        per = {k: dict(v) for k, v in options.items() if k in _REGISTRY and isinstance(v, dict)}
        flat = {k: v for k, v in options.items() if k not in per}
        # the model backend (if any) is fixed for the whole run: it depends on configuration, not on the video
        self.model_backend = configured_model_backend(flat.get("config"), flat.get("models"))
        names = ("state", "color", *((self.model_backend,) if self.model_backend else ()))
        accepts = {name: _accepts(name) for name in names}

        def takes(name: str, key: str) -> bool:
            params, var = accepts[name]
            return key in params or var

        unknown = [k for k in flat if not any(takes(name, k) for name in names)]
        if unknown:
            raise GroundingError(f"bad options for grounder 'auto': no backend takes {unknown[0]!r}")
        self.options = {name: {**{k: v for k, v in flat.items() if takes(name, k)}, **per.get(name, {})}
                        for name in set(names) | set(per)}

    def backend_for(self, video_path: str | Path | None, sidecar: str | Path | None = None) -> Grounder:
        """The backend instance that will ground this video."""
        has_sidecar = sidecar is not None or find_sidecar(video_path) is not None
        name = "state" if has_sidecar else (self.model_backend or "color")
        if name not in self._cache:
            self._cache[name] = get_grounder(name, **self.options.get(name, {}))
        return self._cache[name]

    def ground(
        self,
        video: Video,
        entities: Sequence[Entity],
        *,
        quoted: Sequence[str] = (),
        sidecar: str | Path | None = None,
    ) -> Observations:
        """Ground with the backend `resolve_auto` picks for this video."""
        backend = self.backend_for(getattr(video, "path", None), sidecar)
        return backend.ground(video, entities, quoted=quoted, sidecar=sidecar)
