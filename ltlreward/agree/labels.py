"""Labels in: JSONL / CSV label files → `LabelItem`s (raters combined), spec maps, and each item's spec.

Rows carry `video` and `label` (or `success`), optionally `rater`, `task`, `spec`, `description` and a graded
column. Several rows for one video with different raters are combined by majority (a tie counts as failure).
Every problem is a `LabelError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LtlRewardError

_TRUE = {"1", "true", "yes", "y", "success", "succeeded", "pass", "passed", "t"}
_FALSE = {"0", "false", "no", "n", "failure", "fail", "failed", "f"}
_META_KEYS = ("id", "suite", "failure_mode", "seed", "first_success_frame")


class LabelError(LtlRewardError):
    """A labels file that cannot be used; the message names the file and line."""


@dataclass
class LabelItem:
    """One labelled video (raters combined): path, Boolean label, optional task / spec / text / grade."""

    video: str
    label: bool
    task: str | None = None
    spec: str | None = None
    description: str | None = None
    graded: float | None = None
    ratings: dict[str, bool] = field(default_factory=dict)  # rater → label (empty for single-label files)
    source: str = ""  # "file:line" of its first row
    meta: dict[str, Any] = field(default_factory=dict)
    task_description: str | None = None  # the task to compile (`task_description`), when `description` says
    # more than the task (e.g. how this video's episode went)


def parse_label(value: Any, where: str) -> bool:
    """A Boolean label from bool / 0 / 1 / yes / no / success / failure …; LabelError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise LabelError(f"{where}: label must be true/false, 1/0, yes/no or success/failure, got {value!r}")


# ------------------------------------------------------------------------------------------ rows
def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise LabelError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LabelError(f"{path}: cannot read labels ({e})") from None


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "video" not in reader.fieldnames:
        raise LabelError(f"{path}:1: a CSV labels file needs a header with 'video' and 'label' columns")
    return [(i, {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k})
            for i, row in enumerate(reader, start=2)]


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise LabelError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise LabelError(f"{path}:{i}: expected a JSON object per line, got {type(obj).__name__}")
        rows.append((i, obj))
    return rows


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a JSONL or CSV file."""
    text = _read_text(path)
    return _csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text)


LOOKED = "from {base}, its parent folders, then the working directory"  # resolve_path's order, for messages


def resolve_path(p: str, base: Path) -> Path | None:
    """An existing file for `p` written in a file that lives in folder `base`: `p` itself when absolute, else
    the first of base / p, base's parents / p (nearest first), cwd / p — so a map or labels file means the
    same files from any working directory. The path is made absolute, not resolved: a symlinked video keeps
    its own folder, where its sidecar is looked for (as `score` looks for it)."""
    q = Path(p).expanduser()
    if q.is_absolute():
        return q if q.exists() else None
    base = Path(os.path.abspath(base))
    for root in (base, *base.parents, Path.cwd()):
        if (root / q).exists():
            return Path(os.path.abspath(root / q))
    return None


# ------------------------------------------------------------------------------------------ items
@dataclass(frozen=True)
class _Row:
    """One validated label row: where it is, its video (resolved when found), label, rater and grade."""

    where: str
    video: str  # as written
    vid: str  # the resolved path when found, else as written (the key that joins raters)
    label: bool
    rater: str
    grade: float | None


def _grade(row: Mapping[str, Any], graded: str, where: str) -> float:
    if row.get(graded) in (None, ""):
        raise LabelError(f"{where}: missing graded label column {graded!r}")
    try:
        return float(row[graded])
    except (TypeError, ValueError):
        raise LabelError(f"{where}: graded label {graded!r} must be a number, got {row[graded]!r}") from None


def _check_row(row: Mapping[str, Any], where: str, base: Path, graded: str | None, check_videos: bool) -> _Row:
    """Validate one row's video, label and grade (LabelError naming `where`)."""
    video = row.get("video")
    if not isinstance(video, str) or not video:
        raise LabelError(f"{where}: missing 'video' (a path to the labelled video)")
    key = "label" if row.get("label") not in (None, "") else "success"
    if row.get(key) in (None, ""):
        raise LabelError(f"{where}: missing 'label' (or 'success') for {video}")
    label = parse_label(row[key], where)
    found = resolve_path(video, base)
    if found is None and check_videos:
        raise LabelError(f"{where}: video {video!r} not found (relative paths are tried "
                         f"{LOOKED.format(base=Path(os.path.abspath(base)))})")
    grade = _grade(row, graded, where) if graded is not None else None
    return _Row(where, video, str(found) if found is not None else video, label, str(row.get("rater") or ""),
                grade)


def _new_item(r: _Row, row: Mapping[str, Any], base: Path) -> LabelItem:
    spec = row.get("spec") or None
    if spec:
        sp = resolve_path(str(spec), base)
        spec = str(sp) if sp is not None else str(spec)
    meta = {k: row[k] for k in _META_KEYS if k in row}
    item = LabelItem(r.vid, r.label, row.get("task") or None, spec, row.get("description") or None, r.grade, {},
                     r.where, meta, row.get("task_description") or None)
    if r.rater:
        item.ratings[r.rater] = r.label
    return item


def _add_rating(item: LabelItem, r: _Row) -> None:
    """A further row for a video already seen: allowed only as another rater's label."""
    if not r.rater or not item.ratings:
        raise LabelError(f"{r.where}: second label for {r.video} (first at {item.source}); give every "
                         "row a 'rater' to combine several raters")
    if r.rater in item.ratings:
        raise LabelError(f"{r.where}: rater {r.rater!r} labels {r.video} twice (first at {item.source})")
    item.ratings[r.rater] = r.label


def load_labels(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                graded: str | None = None, check_videos: bool = True) -> list[LabelItem]:
    """Label items from JSONL / CSV files (see the module docstring); LabelError names file and line."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    by_video: dict[str, LabelItem] = {}
    for p in map(Path, paths):
        for line, row in _rows(p):
            r = _check_row(row, f"{p}:{line}", p.parent, graded, check_videos)
            if r.vid in by_video:
                _add_rating(by_video[r.vid], r)
            else:
                by_video[r.vid] = _new_item(r, row, p.parent)
    if not by_video:
        raise LabelError(f"{', '.join(map(str, paths))}: no labelled videos")
    for item in by_video.values():
        if item.ratings:
            votes = np.array(list(item.ratings.values()), bool)
            item.label = bool(votes.mean() > 0.5)  # majority; a tie counts as failure
    return list(by_video.values())


# ------------------------------------------------------------------------------------------ specs
def load_spec_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """A JSON object task → spec path; relative paths are read from the map's folder first (`resolve_path`)."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise LabelError(f"{p}: spec map not found") from None
    except json.JSONDecodeError as e:
        raise LabelError(f"{p}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise LabelError(f"{p}: expected a JSON object mapping task names to .ltl paths")
    out = {}
    for task, sp in raw.items():
        found = resolve_path(sp, p.parent)
        if found is None:
            raise LabelError(f"{p}: {task}: spec file {sp!r} not found (relative paths are tried "
                             f"{LOOKED.format(base=Path(os.path.abspath(p.parent)))})")
        out[task] = str(found)
    return out


def _compiled_spec(text: str, compiled: dict[str, Any], notes: list[str], backend: str = "rules") -> Any:
    """The TaskSpec ltlreward.nl compiles from `text` (cached; None and a note when it cannot)."""
    if text not in compiled:
        from ..nl import compile_text

        try:
            compiled[text] = compile_text(text, backend=backend).spec
        except Exception as e:
            compiled[text] = None
            notes.append(f"could not compile {text!r}: {type(e).__name__}: {e}")
    return compiled[text]


def _bound_spec(spec: Any, video: str, bound: dict[Any, Any], notes: list[str]) -> Any:
    """`spec` with its entities named as the video's sidecar names them (ltlreward.nl.bind; cached per
    spec and name set); the spec itself without a sidecar; None and a note when an entity matches nothing."""
    from ..grounding.base import find_sidecar

    side = find_sidecar(video)
    if spec is None or side is None:
        return spec
    from ..nl.bind import BindError, bind_entities, load_entity_names

    try:
        names = load_entity_names(side)
    except BindError as e:
        notes.append(str(e).removeprefix("error: "))
        return None
    key = (id(spec), names.names, names.grippers)
    if key not in bound:
        try:
            b = bind_entities(spec, names)
            bound[key] = b.spec
            notes.extend(f"{spec.task!r}: {w}" for w in b.warnings)
        except BindError as e:
            bound[key] = None
            notes.append(f"{spec.task!r}: {str(e).removeprefix('error: ')}")
    return bound[key]


def _description_spec(it: LabelItem, cache: dict[str, dict], notes: list[str], backend: str) -> tuple[Any, str]:
    """The compiled and sidecar-bound spec of an item's task description (or description, or task name)."""
    text = it.task_description or it.description or it.task
    if not text:
        return None, "(no description)"
    sp = _compiled_spec(text, cache.setdefault("compiled", {}), notes, backend)
    sp = _bound_spec(sp, it.video, cache.setdefault("bound", {}), notes)
    return sp, "(description not compilable or its entities not in the sidecar)"


def assign_specs(items: Sequence[LabelItem], *, spec: str | None = None, spec_map: Mapping[str, str] | None = None,
                 from_descriptions: bool = False, nl_backend: str = "rules") -> tuple[list[Any], list[str]]:
    """Per item its spec (path or TaskSpec, None = unscored) and notes about items left without one.

    The first source given wins: `spec` for every item, else `spec_map` by task, else each item's compiled
    task description (`task_description`, else `description`, else the task name; compiled with the
    `nl_backend` English backend; entities renamed to the video's sidecar names), else the item's own
    `spec` field."""
    notes: list[str] = []
    out: list[Any] = []
    cache: dict[str, dict] = {}
    missing: Counter[str] = Counter()
    for it in items:
        if spec is not None:
            sp, why = spec, ""
        elif spec_map is not None:
            sp, why = spec_map.get(it.task or ""), it.task or "(no task)"
        elif from_descriptions:
            sp, why = _description_spec(it, cache, notes, nl_backend)
        else:
            sp, why = it.spec, it.task or "(no task)"
        out.append(sp)
        if sp is None:
            missing[why] += 1
    for task, n in sorted(missing.items()):
        notes.append(f"no spec for {task}: {n} video(s) not scored")
    return list(out), list(dict.fromkeys(notes))


__all__ = ["LabelError", "LabelItem", "assign_specs", "load_labels", "load_spec_map", "parse_label", "resolve_path"]
