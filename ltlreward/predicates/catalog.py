"""The predicate catalogue: one `Registry` of every predicate and numeric function, each registered by the
`@predicate(...)` decorator beside its semantics in library.py with a frozen `PredicateInfo` (parameters,
options and defaults, English phrasing, 2-D / 3-D semantics text, the Observations fields it reads, whether
it is image-only). The spec validator, the English renderer, `ltlreward predicates` and the README's table
all read this metadata, so a predicate is described in one place.

    PREDICATES["near"].options      # (("d", 0.0),) — a read-only mapping name → PredicateInfo
    PREDICATE_FUNCS.get("near")     # the semantics: (ctx, space, entity args, resolved options) → (T,)

Option convention: a threshold option whose default is 0 means "the automatic default" (relative to object
and image size in 2-D, a fixed length in metres in 3-D and 2.5-D); writing the option explicitly as 0 means
the same. Bare explicit values are metres (3-D and 2.5-D) or fractions of the image diagonal (image); a unit
suffix says which (`d=0.07m`, `d=12px`, spec/units.py). Each option has a dimension (`OPTION_DIMS`): lengths
(d, w, h) and speeds (v) take units; fractions in [0, 1] (p, q) and frame counts (n) are bare. A numeric
function's `dim` is the dimension of its value (length, speed, or "fraction" for area, which takes no unit).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CapabilityError
from ..registry import Registry

FRACTION_OPTIONS = frozenset({"p", "q"})  # thresholds on [0, 1] quantities (visibility, opening, overlap)
# the dimension of every option name the library uses: what unit suffix it may carry (spec/units.py)
OPTION_DIMS: Mapping[str, str] = {"d": "length", "w": "length", "h": "length", "v": "speed", "p": "fraction",
                                  "q": "fraction", "n": "count"}


@dataclass(frozen=True)
class PredicateInfo:
    """One predicate (Boolean-valued, robustness in [-1, 1]) or numeric function (usable in comparisons)."""

    name: str
    params: tuple[str, ...]  # positional entity parameters
    options: tuple[tuple[str, float], ...] = ()  # keyword thresholds and their defaults
    numeric: bool = False
    english: str = ""  # positive phrasing, e.g. "{0} holds {1}"
    negated: str = ""  # negative phrasing, e.g. "{0} does not hold {1}"
    doc: str = ""
    image: str = ""  # 2-D image semantics (boxes / masks / centres), with its default thresholds
    state: str = ""  # 3-D state semantics (positions in metres, z up), with its default thresholds
    lifted: str = ""  # 2.5-D semantics (lifted positions, masks + camera); "" = the 3-D semantics on them
    needs: str = ""  # the Observations fields it reads ("2-D fields / 3-D fields")
    image_only: bool = False  # defined in the image only: always the 2-D semantics
    gated: bool = True  # capped by the visibility margin of the entities it names
    scale: float = 0.0  # numeric functions: the comparison scale (units of the function)
    dim: str = ""  # numeric functions: "length", "speed" or "fraction" (what a unit on a compared constant means)
    image_unit: str = ""  # numeric functions: the image length their 2-D value is a fraction of (diag, W, H)

    @property
    def lifted_text(self) -> str:
        """The 2.5-D semantics as the table states it."""
        if self.image_only:
            return "as 2-D (image only)"
        return self.lifted or "the 3-D semantics on the lifted positions"

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.options)

    def option_range(self, key: str) -> tuple[float, float]:
        """The values option `key` may take: [0, 1] for fractions (`FRACTION_OPTIONS`), else [0, ∞)."""
        return (0.0, 1.0) if key in FRACTION_OPTIONS else (0.0, math.inf)

    def option_problem(self, key: str, value: Any) -> str | None:
        """What is wrong with `value` for option `key` (its range, `option_range`), or None."""
        lo, hi = self.option_range(key)
        if isinstance(value, str) or not math.isfinite(float(value)) or float(value) < lo:
            return f"option {key} of {self.name} must be a non-negative number, got {value!r}"
        if float(value) > hi:
            return f"option {key} of {self.name} is a fraction in [{lo:g}, {hi:g}], got {value!r}"
        return None

    def signature(self) -> str:
        opts = [f"{k}={v:g}" for k, v in self.options]
        return f"{self.name}({', '.join(list(self.params) + opts)})"

    def to_json(self) -> dict[str, Any]:
        """The metadata as plain JSON values (`ltlreward predicates --json`)."""
        out: dict[str, Any] = {"name": self.name, "params": list(self.params), "options": dict(self.options),
                               "numeric": self.numeric, "doc": self.doc, "english": self.english,
                               "negated": self.negated, "image": self.image, "state": self.state,
                               "lifted": self.lifted_text, "needs": self.needs, "image_only": self.image_only}
        if self.numeric:
            out["scale"] = self.scale
            out["dim"] = self.dim
        return out


# (ctx, space "2d"/"3d", entity arguments, resolved options) → raw (T,) robustness (NaN allowed) or value
PredicateFn = Callable[..., Any]
PREDICATE_FUNCS: Registry[PredicateFn] = Registry("predicate", error=CapabilityError)


def predicate(
    name: str,
    *,
    params: tuple[str, ...],
    options: Mapping[str, float] | None = None,
    english: str,
    negated: str = "",
    doc: str = "",
    image: str,
    state: str,
    needs: str,
    lifted: str = "",
    image_only: bool = False,
    gated: bool = True,
    numeric: bool = False,
    scale: float = 0.0,
    dim: str = "",
    image_unit: str = "",
) -> Callable[[PredicateFn], PredicateFn]:
    """Register the decorated function as predicate (or, with `numeric=True`, a comparison `scale` and a value
    dimension `dim`, numeric function) `name` with its metadata; see `PredicateInfo` for the fields."""
    if numeric and (scale <= 0 or dim not in ("length", "speed", "fraction")):
        raise ValueError(f"numeric function {name!r} needs a positive comparison scale and a dim")
    for k in options or {}:
        if k not in OPTION_DIMS:
            raise ValueError(f"option {k!r} of {name!r} has no dimension in OPTION_DIMS")
    info = PredicateInfo(name, tuple(params), tuple((options or {}).items()), numeric=numeric, english=english,
                         negated=negated, doc=doc, image=image, state=state, lifted=lifted, needs=needs,
                         image_only=image_only, gated=gated, scale=scale, dim=dim, image_unit=image_unit)
    return PREDICATE_FUNCS.register(name, meta=info)


class _Catalogue(Mapping[str, PredicateInfo]):
    """Read-only name → PredicateInfo view of the registry, in registration order (the table's order)."""

    def __getitem__(self, name: str) -> PredicateInfo:
        if name not in PREDICATE_FUNCS:
            raise KeyError(name)
        return PREDICATE_FUNCS.meta(name)

    def __iter__(self) -> Iterator[str]:
        return iter(PREDICATE_FUNCS.names())

    def __len__(self) -> int:
        return len(PREDICATE_FUNCS)

    def __repr__(self) -> str:
        return f"PREDICATES({', '.join(self)})"


PREDICATES: Mapping[str, PredicateInfo] = _Catalogue()


class _CompareScales(Mapping[str, float]):
    """Read-only numeric function → comparison scale view."""

    def __getitem__(self, name: str) -> float:
        info = PREDICATES.get(name)
        if info is None or not info.numeric:
            raise KeyError(name)
        return info.scale

    def __iter__(self) -> Iterator[str]:
        return (n for n, p in PREDICATES.items() if p.numeric)

    def __len__(self) -> int:
        return sum(1 for _ in self)


COMPARE_SCALE: Mapping[str, float] = _CompareScales()


def lookup(name: str) -> PredicateInfo | None:
    return PREDICATES.get(name)


def suggest(name: str, *, numeric: bool | None = None) -> str | None:
    """The closest known name (for did-you-mean messages), or None."""
    names = [n for n, p in PREDICATES.items() if numeric is None or p.numeric == numeric]
    hits = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return hits[0] if hits else None
