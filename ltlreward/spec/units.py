"""Units of the spec language: the one table of unit suffixes, and `Quantity`, a number that carries one.

    dist(obj, goal) < 0.07m        near(a, b, d=12px)        moving(a, v=5cm/s)        F[0s, 2.5s] φ

| suffix | dimension | metric | factor to the base unit |
|---|---|---|---|
| `m` `cm` `mm` | length | yes | 1, 0.01, 0.001 (metres) |
| `px` | length | no (image) | 1 (pixels) |
| `m/s` `cm/s` `mm/s` | speed | yes | 1, 0.01, 0.001 (metres per second) |
| `px/s` | speed | no (image) | 1 (pixels per second) |

A metric unit asks for a metric judgement (3-D positions, or 2.5-D from masks + a calibrated camera); a pixel
unit asks for the image. A bare number keeps the meaning it always had: metres (m/s) where the atom is judged
in a metric space and fractions of the image (diagonal, width or height, as each predicate says) where it is
judged in the image. Seconds (`2.5s`) exist only in interval bounds (spec/ast.py `Interval`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitInfo:
    """One unit suffix: its dimension ("length" or "speed"), whether it is metric, its factor to the base
    unit (metres, metres per second, pixels, pixels per second)."""

    dim: str
    metric: bool
    factor: float


UNITS: dict[str, UnitInfo] = {
    "m": UnitInfo("length", True, 1.0),
    "cm": UnitInfo("length", True, 0.01),
    "mm": UnitInfo("length", True, 0.001),
    "px": UnitInfo("length", False, 1.0),
    "m/s": UnitInfo("speed", True, 1.0),
    "cm/s": UnitInfo("speed", True, 0.01),
    "mm/s": UnitInfo("speed", True, 0.001),
    "px/s": UnitInfo("speed", False, 1.0),
}
DIMENSIONS = ("length", "speed")  # what a unit can measure; other quantities (fractions, counts) are bare


def fmt_number(v: float | int) -> str:
    """Shortest text that reads back to an equal number; whole numbers print without a dot (1.0 -> "1")."""
    if isinstance(v, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(v, int) or (v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    return repr(float(v))


@dataclass(frozen=True)
class Quantity:
    """A number with a unit suffix, as written (`7cm` stays 7 cm; `base` is 0.07 in metres)."""

    value: float | int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r} (units: {', '.join(UNITS)})")

    @property
    def info(self) -> UnitInfo:
        return UNITS[self.unit]

    @property
    def metric(self) -> bool:
        return self.info.metric

    @property
    def dim(self) -> str:
        return self.info.dim

    @property
    def base(self) -> float:
        """The value in the base unit: metres (per second) for a metric unit, pixels (per second) for px."""
        return float(self.value) * self.info.factor

    @property
    def canonical(self) -> str:
        return f"{fmt_number(self.value)}{self.unit}"

    def __str__(self) -> str:
        return self.canonical


def unit_of(v: object) -> str:
    """The unit suffix of a value ('' for a bare number)."""
    return v.unit if isinstance(v, Quantity) else ""


def to_metres(v: float | int | Quantity) -> float:
    """A length in metres: a metric Quantity converted, a bare number as it is (ValueError for pixels)."""
    if isinstance(v, Quantity):
        if not v.metric or v.dim != "length":
            raise ValueError(f"{v.canonical} is not a length in metres")
        return v.base
    return float(v)


__all__ = ["DIMENSIONS", "UNITS", "Quantity", "UnitInfo", "fmt_number", "to_metres", "unit_of"]
