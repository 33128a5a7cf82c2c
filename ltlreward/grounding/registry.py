"""The grounder registry: every backend by name, as a lazy "module:Class" entry (a heavy backend is imported
only when chosen) with a `GrounderInfo` beside it saying what it does, which `Observations` fields it fills,
which install extra and model roles it needs and whether it answers quoted atoms — known without importing
the backend, so `ltlreward grounders` lists them all on a light install.

    GROUNDERS.get("sim")                         # → StateGrounder (alias of "state"), imported on first use
    get_grounder("color", downsample=1)          # an instance; unknown names list the available ones
    register_grounder("mine", "pkg.mod:Mine", meta=GrounderInfo("…", ("centers", "boxes")))

`auto` picks a backend per video (`resolve_auto`): `state` when the video has a sidecar, else `track` when it
has prompts (`<stem>.prompts.json` beside it, or prompts given), else the model backend whose weights are
configured (from the model roles of the entries below), else `color`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GroundingError
from ..registry import Registry
from .base import OBSERVATION_FIELDS, Grounder, find_sidecar, sidecar_path_for
from .observations import Observations

if TYPE_CHECKING:
    from ..spec.ast import Entity
    from ..video import Video


@dataclass(frozen=True)
class GrounderInfo:
    """What a registered grounder is, known without importing it."""

    doc: str  # one line
    provides: tuple[str, ...]  # the Observations fields it can fill (a subset of OBSERVATION_FIELDS)
    extra: str = ""  # the pip extra it needs beyond the core install ("models"), "" for none
    roles: tuple[str, ...] = ()  # model roles it loads (ltlreward.toml [models] / --model ROLE=…)
    quoted: bool = False  # whether it answers quoted atoms ("the drawer is open")
    hints: tuple[str, ...] = ()  # the entity hints it reads (color=, hsv=, …)
    check_entity: str = ""  # lazy "module:function(entity)" raising GroundingError for an entity it cannot ground
    pixels: bool = True  # whether it reads the frames' pixels (False: frame count, size and rate suffice)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.provides) - set(OBSERVATION_FIELDS))
        if unknown:
            raise ValueError(f"unknown Observations field(s) {', '.join(unknown)}; fields: "
                             f"{', '.join(OBSERVATION_FIELDS)}")


class _GrounderRegistry(Registry[type]):
    """The Registry shape plus dict-style `pop` (undoing a `register_grounder`, as plugins and tests do)."""

    def pop(self, name: str, default: Any = None) -> Any:
        """Remove `name` and return its target (lazy string or class), or `default` when absent."""
        if name not in self.names():
            return default
        target = self.entry(name).target
        self.unregister(name)
        return target


_GEOMETRY = ("boxes", "centers", "masks", "visibility")
_VLM = ("atoms", "gripper_opening")
_B = "ltlreward.grounding.backends."

GROUNDERS: _GrounderRegistry = _GrounderRegistry("grounder", error=GroundingError)
GROUNDERS.register("auto", "ltlreward.grounding.registry:AutoGrounder", meta=GrounderInfo(
    "per video: state when it has a sidecar, else track when it has prompts, else the configured model backend, "
    "else color",
    tuple(sorted(OBSERVATION_FIELDS)), quoted=True))
GROUNDERS.register("state", _B + "state:StateGrounder", aliases=("sim",), meta=GrounderInfo(
    "simulator state from a sidecar: 3-D positions projected through its camera, openings, contacts, atoms",
    ("atoms", "boxes", "centers", "contacts", "gripper_opening", "masks", "positions", "visibility"), quoted=True,
    pixels=False))
GROUNDERS.register("color", _B + "color:ColorGrounder", aliases=("colour",), meta=GrounderInfo(
    "OpenCV HSV thresholds per colour hint, connected components and a coasting tracker; gripper openings "
    "from the two-finger shape", ("boxes", "centers", "gripper_opening", "masks", "visibility"),
    hints=("color", "hsv"), check_entity=_B + "color:entity_hsv_range"))
GROUNDERS.register("track", _B + "track:TrackGrounder", meta=GrounderInfo(
    "prompted weight-free tracker: each entity's appearance learned from a prompts file (box, mask or points on "
    "one frame), template + colour models, a motion model, coasting through occlusions", _GEOMETRY))
GROUNDERS.register("gdino-sam2", _B + "models.gdino_sam2:GdinoSam2Grounder", meta=GrounderInfo(
    "Grounding DINO detects each entity prompt on keyframes, SAM2 tracks the masks, lost tracks re-detected",
    _GEOMETRY, extra="models", roles=("grounding_dino", "sam2")))
GROUNDERS.register("owlv2", _B + "models.gdino_sam2:Owlv2Sam2Grounder", meta=GrounderInfo(
    "OWLv2 detects each entity prompt on keyframes, SAM2 tracks the masks, lost tracks re-detected",
    _GEOMETRY, extra="models", roles=("owlv2", "sam2")))
GROUNDERS.register("vlm", _B + "models.vlm:VLMGrounder", meta=GrounderInfo(
    "per-frame yes/no questions to a VLM (p(yes) from the yes/no logits) for quoted atoms and asked gripper "
    "predicates", _VLM, extra="models", roles=("vlm",), quoted=True))
GROUNDERS.register("gdino-sam2+vlm", _B + "models.composite:GdinoSam2VlmGrounder", meta=GrounderInfo(
    "gdino-sam2 geometry with vlm atoms and gripper openings", tuple(sorted(_GEOMETRY + _VLM)), extra="models",
    roles=("grounding_dino", "sam2", "vlm"), quoted=True))
GROUNDERS.register("owlv2+vlm", _B + "models.composite:Owlv2VlmGrounder", meta=GrounderInfo(
    "owlv2 geometry with vlm atoms and gripper openings", tuple(sorted(_GEOMETRY + _VLM)), extra="models",
    roles=("owlv2", "sam2", "vlm"), quoted=True))
GROUNDERS.register("sam3", _B + "models.sam3:Sam3Grounder", meta=GrounderInfo(
    "SAM3 text-prompted video segmentation and tracking of every entity prompt", _GEOMETRY, extra="models",
    roles=("sam3",)))
GROUNDERS.register("sam3+vlm", _B + "models.composite:Sam3VlmGrounder", meta=GrounderInfo(
    "sam3 geometry with vlm atoms and gripper openings", tuple(sorted(_GEOMETRY + _VLM)), extra="models",
    roles=("sam3", "vlm"), quoted=True))
_REGISTRY = GROUNDERS  # the name before the one Registry shape (plugins and tests pop from it)


def grounder_info(name: str) -> GrounderInfo | None:
    """The metadata of grounder `name` (aliases resolve; None for a plugin registered without any)."""
    return GROUNDERS.meta(name)


def registered_provides(name: str) -> frozenset[str]:
    """The Observations fields grounder `name` is registered as filling (its class's `provides`)."""
    return frozenset(GROUNDERS.meta(name).provides)


def entity_problems(entity: Entity, grounder: str) -> list[tuple[str | None, str]]:
    """Why `grounder` could not ground `entity`, from its `check_entity` (metadata): (the hint at fault, or
    None for the entity itself, message) each. "auto" checks the hint values of every registered grounder
    that reads one of the entity's hints (whichever is chosen later), and nothing the entity lacks."""
    keys = [k for k, _ in entity.hints]
    if grounder == "auto":
        names = [n for n in GROUNDERS.names() if n != "auto" and set(_info(n).hints) & set(keys)]
    else:
        names = [GROUNDERS.canonical(grounder)]
    out: list[tuple[str | None, str]] = []
    for name in names:
        info = _info(name)
        if not info.check_entity:
            continue
        module, _, fn = info.check_entity.partition(":")
        try:
            getattr(importlib.import_module(module), fn)(entity)
        except GroundingError as e:
            key = next((k for k in keys if k in info.hints), None)
            if (key, str(e)) not in out:
                out.append((key, str(e)))
    return out


def answers(grounder: str, what: str) -> str | None:
    """None when `grounder` answers `what` ("quoted" atoms, or named "atoms" propositions); else the rest of
    a message naming the grounders that do."""
    ok = (lambda i: i.quoted) if what == "quoted" else (lambda i: what in i.provides)
    if ok(_info(GROUNDERS.canonical(grounder))):
        return None
    others = [n for n in available_grounders() if n != "auto" and ok(_info(n))]
    return f" (grounders that do: {', '.join(others)})" if others else ""


def _info(name: str) -> GrounderInfo:
    meta = GROUNDERS.meta(name)
    return meta if isinstance(meta, GrounderInfo) else GrounderInfo("", ())


def register_grounder(name: str, target: str, *, aliases: tuple[str, ...] = (), meta: GrounderInfo | None = None,
                      replace: bool = False) -> None:
    """Register backend `name` as a lazy "package.module:ClassName" target (later backends, plugins); a taken
    name is an error unless `replace`."""
    if ":" not in target:
        raise ValueError(f"grounder target must look like 'package.module:ClassName', got {target!r}")
    GROUNDERS.register(name, target, aliases=aliases, meta=meta, replace=replace)


def available_grounders() -> tuple[str, ...]:
    """Registered backend names, 'auto' first and the others sorted."""
    return ("auto", *sorted(n for n in GROUNDERS.names() if n != "auto"))


def get_grounder(name: str = "auto", **options: Any) -> Grounder:
    """An instance of backend `name` built with `options`; unknown names list the available ones."""
    if name not in GROUNDERS:
        raise GroundingError(f"unknown grounder {name!r}; available: {', '.join(available_grounders())}")
    key = GROUNDERS.canonical(name)
    cls = GROUNDERS.get(key)
    try:
        return cls(**options)
    except TypeError as e:
        raise GroundingError(f"bad options for grounder {key!r}: {e}") from None


def describe_grounders() -> list[dict[str, Any]]:
    """One row per registered grounder (what `ltlreward grounders [--json]` prints): name, aliases, target and
    its metadata; nothing is imported."""
    rows = []
    for name in available_grounders():
        e = GROUNDERS.entry(name)
        info = e.meta if isinstance(e.meta, GrounderInfo) else GrounderInfo("", ())
        target = e.target if e.lazy else f"{e.target.__module__}:{e.target.__qualname__}"
        rows.append({"name": name, "aliases": list(e.aliases), "doc": info.doc, "provides": list(info.provides),
                     "extra": info.extra, "models": list(info.roles), "quoted": info.quoted, "target": target})
    return rows


# ------------------------------------------------------------------------------------------ auto
def _model_pipelines() -> list[tuple[str, tuple[str, ...]]]:
    """(name, model roles) of the tracker backends in registration order (those that load models but no vlm)."""
    return [(name, e.meta.roles) for name, e in GROUNDERS.items()
            if isinstance(e.meta, GrounderInfo) and e.meta.roles and "vlm" not in e.meta.roles]


def configured_model_backend(config: str | Path | None = None, models: dict[str, str] | None = None) -> str | None:
    """The model backend 'auto' uses when weights are configured — roles named in the model config file
    (`ltlreward.toml`, see models/config.py) or by `--model ROLE=…` — else None. A tracker pipeline is picked
    first (gdino-sam2, owlv2, sam3); a configured `vlm` is added to it ("+vlm") or used alone."""
    import tomllib

    from .backends.models.config import find_config  # light: no torch/transformers

    roles = set(models or {})
    path = find_config(config)
    if path is not None:
        try:
            roles |= set(tomllib.loads(path.read_text()).get("models") or {})
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise GroundingError(f"{path}: not a valid TOML config ({e})") from None
    tracker = next((name for name, need in _model_pipelines() if set(need) <= roles), None)
    if tracker is None:
        return "vlm" if "vlm" in roles else None
    return f"{tracker}+vlm" if "vlm" in roles else tracker


def has_prompts(video_path: str | Path | None, prompts: Any = None) -> bool:
    """Whether a video has prompts: given ones (a Prompts, a dict, one file for every video, or a directory
    holding its `<stem>.prompts.json`), else the `<stem>.prompts.json` beside it."""
    from .prompts import find_prompts

    if prompts is not None and (not isinstance(prompts, (str, Path)) or not Path(prompts).is_dir()):
        return True  # a Prompts, a dict or a file (a missing file is then the track grounder's error)
    if video_path is None:
        return False
    found = find_prompts(video_path, prompts)
    return isinstance(found, Path) and found.is_file()


def resolve_auto(
    video_path: str | Path | None,
    sidecar: str | Path | None = None,
    *,
    config: str | Path | None = None,
    models: dict[str, str] | None = None,
    prompts: Any = None,
) -> str:
    """The backend 'auto' picks: 'state' when a sidecar is given or sits next to the video, else 'track' when
    the video has prompts (`has_prompts`), else the model backend whose weights are configured
    (`configured_model_backend`), else 'color'."""
    if sidecar is not None or find_sidecar(video_path) is not None:
        return "state"
    if has_prompts(video_path, prompts):
        return "track"
    return configured_model_backend(config, models) or "color"


def _accepts(name: str) -> tuple[set[str], bool]:
    """Keyword parameters of backend `name`'s constructor, and whether it takes **options."""
    params = inspect.signature(GROUNDERS.get(name)).parameters
    return set(params), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def takes_prompts(grounder: Any) -> bool:
    """Whether a grounder's `ground` accepts `prompts=` (track, the model trackers, auto)."""
    try:
        params = inspect.signature(grounder.ground).parameters
    except (TypeError, ValueError):
        return False
    return "prompts" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


MODEL_OPTIONS = frozenset({"config", "models", "device", "dtype", "cpu_threads", "allow_download", "cache_dir"})


class AutoGrounder:
    """Chooses a backend per video with `choose` (the rule of `resolve_auto`) and delegates to it (instances
    cached by name); the observations say which backend and why (`meta["grounder_reason"]`)."""

    name = "auto"
    provides = frozenset(OBSERVATION_FIELDS)  # the union; the chosen backend's set is in obs.meta["provides"]

    def __init__(self, **options: Any) -> None:
        # options either per backend ({"color": {"downsample": 1}}) or flat ({"downsample": 1}); a flat option
        # goes to each backend whose constructor takes it, and one that no backend takes is an error — except
        # the model options (MODEL_OPTIONS: --obs-cache, --device, …), which mean nothing without a model backend
        self._cache: dict[str, Grounder] = {}
        backends = set(GROUNDERS.names()) - {"auto"}
        per = {k: dict(v) for k, v in options.items() if k in backends and isinstance(v, dict)}
        flat = {k: v for k, v in options.items() if k not in per}
        # the model backend (if any) is fixed for the whole run: it depends on configuration, not on the video
        self.model_backend = configured_model_backend(flat.get("config"), flat.get("models"))
        names = ("state", "track", "color", *((self.model_backend,) if self.model_backend else ()))
        accepts = {name: _accepts(name) for name in names}

        def takes(name: str, key: str) -> bool:
            params, var = accepts[name]
            return key in params or var

        unknown = [k for k in flat if not any(takes(name, k) for name in names)
                   and not (self.model_backend is None and k in MODEL_OPTIONS)]
        if unknown:
            raise GroundingError(f"bad options for grounder 'auto': no backend takes {unknown[0]!r}")
        self.options = {name: {**{k: v for k, v in flat.items() if takes(name, k)}, **per.get(name, {})}
                        for name in set(names) | set(per)}

    def choose(self, video_path: str | Path | None, sidecar: str | Path | None = None,
               prompts: Any = None) -> tuple[str, str]:
        """The backend that will ground this video, and why (for the record's `grounder_reason`)."""
        if sidecar is not None:
            return "state", f"the sidecar {sidecar} was given (--sidecar)"
        found = find_sidecar(video_path)
        if found is not None:
            return "state", f"sidecar beside the video: {found.name}"
        looked = f"no sidecar beside the video ({sidecar_path_for(video_path).name})" if video_path else "no sidecar"
        if has_prompts(video_path, prompts if prompts is not None else self.options["track"].get("prompts")):
            return "track", f"{looked}; entity prompts given (prompts file or --prompts)"
        if self.model_backend:
            return self.model_backend, f"{looked}, no prompts; model weights configured for {self.model_backend}"
        return "color", f"{looked}, no prompts and no model weights configured"

    def backend_for(self, video_path: str | Path | None, sidecar: str | Path | None = None,
                    prompts: Any = None) -> Grounder:
        """The backend instance that will ground this video."""
        name = self.choose(video_path, sidecar, prompts)[0]
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
        prompts: Any = None,
    ) -> Observations:
        """Ground with the backend `choose` picks for this video (prompts go to a backend that takes them)."""
        path = getattr(video, "path", None)
        backend = self.backend_for(path, sidecar, prompts)
        extra = {"prompts": prompts} if prompts is not None and takes_prompts(backend) else {}
        obs = backend.ground(video, entities, quoted=quoted, sidecar=sidecar, **extra)
        obs.meta["grounder_reason"] = self.choose(path, sidecar, prompts)[1]
        return obs


def needs_pixels(grounder: Any, name: str) -> bool:
    """Whether backend `grounder` (registered as `name`) reads pixels: its metadata (`GrounderInfo.pixels`)
    for an instance of the registered class, else a `needs_pixels` attribute (default True)."""
    if name in GROUNDERS:
        cls = GROUNDERS.get(name)
        if isinstance(cls, type) and isinstance(grounder, cls):
            return _info(GROUNDERS.canonical(name)).pixels
    return bool(getattr(grounder, "needs_pixels", True))
