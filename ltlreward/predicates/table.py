"""The predicate table for the README, generated from the catalogue so docs and code cannot drift."""

from __future__ import annotations

from .catalog import PREDICATES


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def predicate_table_markdown() -> str:
    """Markdown table: name, params, options (defaults), 2-D semantics, 3-D semantics, Observations fields."""
    head = [
        "| predicate | params | options (default; 0 = auto) | 2-D image semantics | 3-D state semantics "
        "| 2.5-D semantics (masks + camera) | needs |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for p in PREDICATES.values():
        name = f"`{p.name}`" + (" (numeric)" if p.numeric else "")
        params = ", ".join(p.params)
        opts = ", ".join(f"{k}={v:g}" for k, v in p.options) or "—"
        cells = [name, params, opts, p.image, p.state, p.lifted_text, p.needs]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    foot = (
        "\nRobustness r = x / (1 + |x|) with x = margin / scale: the formulas above give x, the squash keeps "
        "it graded in (−1, 1) without saturating (±0.5 one scale from the threshold); for [0, 1] quantities "
        "r is linear, the scale being the distance from the threshold to the range end. Bare explicit lengths "
        "are metres in 3-D and 2.5-D and fractions of the image diagonal in 2-D; `0.07m`, `7cm`, `12px`, "
        "`5cm/s` say which (a metre constant where only the image can judge is an error). 2.5-D: positions "
        "lifted from masks / boxes through a calibrated camera (support plane, known sizes, contact; "
        "ltlreward/predicates/lift.py). Every atom is capped by the visibility margin of the entities it names "
        "and median-filtered over 3 frames. Comparisons: x = (rhs − lhs) / scale for `<`/`<=`, (lhs − rhs) / "
        "scale for `>`/`>=`, with the largest scale of the functions involved."
    )
    return "\n".join(head + rows) + "\n" + foot + "\n"
