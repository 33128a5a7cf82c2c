"""Agreement baselines, scored in the same run as the spec: one registry, `BASELINES`, one function per name.

    end_state   the spec cut down to its end-state constraints `F G φ` with a non-temporal φ — what is left
                without temporal structure
    last_frame  a sidecar-only check at the last frame: the task object within `radius` of the goal, or,
                without a goal, the object risen by `rise` metres; object and goal are the entities the
                spec's end-state atoms name (`task_object`)
    vlm         one quoted question about the whole task answered by the `vlm` backend and required to hold
                at the end; skipped up front with the reason when no vlm model is configured or found

A baseline takes a `BaselineInput` (the items that have a spec, their videos and parsed specs, the run's
settings) and returns a `BaselineResult` (its MethodReport and any notes). Register another with
`@BASELINES.register("name", meta=BaselineInfo("one line"))`; an unknown name is a `BaselineError` that lists
the registered ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LtlRewardError
from ..registry import Registry
from ..spec.cuts import end_state_spec
from .labels import LabelItem
from .report import MethodReport, evaluate_method
from .scoring import score_with_specs


class BaselineError(LtlRewardError, ValueError):
    """An unknown baseline name (the message lists the registered ones)."""


def _quiet(_msg: str) -> None:
    return None


@dataclass(frozen=True)
class BaselineInput:
    """What every baseline is given: the items that have a spec, their videos and parsed specs (one TaskSpec
    object per distinct spec), and the run's grounder, workers, bootstrap settings and progress callback."""

    items: Sequence[LabelItem]
    videos: Sequence[str]
    specs: Sequence[Any]
    grounder: str
    workers: int = 1
    n_boot: int = 2000
    seed: int = 0
    graded: bool = False
    model_options: Mapping[str, Any] | None = None
    say: Callable[[str], None] = _quiet

    def evaluate(self, name: str, description: str, pred: Sequence[bool], score: Sequence[float],
                 ok: Sequence[bool]) -> MethodReport:
        """`evaluate_method` over these items with this run's bootstrap settings."""
        return evaluate_method(name, description, self.items, pred, score, ok, n_boot=self.n_boot, seed=self.seed,
                               graded=self.graded)


@dataclass(frozen=True)
class BaselineResult:
    """A baseline's report and the notes it leaves for the agreement report."""

    report: MethodReport
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineInfo:
    """What a registered baseline is, in one line (`describe(BASELINES)` prints it)."""

    doc: str


Baseline = Callable[[BaselineInput], BaselineResult]
BASELINES: Registry[Baseline] = Registry("baseline", error=BaselineError)


# ------------------------------------------------------------------------------------------ specs
def vlm_spec(task_text: str) -> Any:
    """A one-question spec for the VLM judge: the task, asked of the frames, must hold at the end."""
    from ..spec import parse_spec

    q = task_text.replace('"', "'").strip().rstrip(".")
    return parse_spec(f'task "{q}"\nconstraint judged "a VLM judges the task done at the end":\n'
                      f'    F G "{q} has been done"\n')


def goal_entities(spec: Any) -> list[str]:
    """The spec entities its end-state atoms name (the bodies φ of its `F G φ` constraints), in order, once."""
    from ..spec.cuts import end_state_body
    from ..spec.walk import atoms_of

    names: dict[str, None] = {}  # ordered set
    for c in spec.constraints:
        body = end_state_body(c.formula)
        for a in atoms_of(body) if body is not None else ():
            names.update((n, None) for call in a.calls() for n in call.identifiers if n in spec.entity_names)
    return list(names)


def task_object(spec: Any, sc: Any) -> tuple[str | None, str | None, str]:
    """(object, goal, how it was chosen) for the last-frame check on sidecar `sc`. With a spec: the entities its
    end-state atoms name that the sidecar tracks — the goal is the first of kind region (else the sidecar's
    `goal`), the object the first other one that is not a gripper, else a gripper (reach: the gripper is what
    must arrive). Without a spec, or when its end-state atoms name nothing the sidecar has: the first entity
    that is neither a gripper nor `goal` (a gripper when there is none)."""
    tracked = [n for n in sc.entity_names if n in sc.positions]
    named = [n for n in goal_entities(spec) if n in sc.positions] if spec is not None else []
    sidecar_goal = "goal" if "goal" in sc.positions else None
    goal = next((n for n in named if spec.entity(n).kind == "region"), sidecar_goal)
    others = [n for n in named if n != goal]
    obj = next((n for n in others if spec.entity(n).kind != "gripper"), others[0] if others else None)
    if obj is not None:
        return obj, goal, "the spec's end-state atoms"
    objects = [n for n in tracked if n not in sc.grippers and n != "goal"]
    obj = objects[0] if objects else next((n for n in tracked if n in sc.grippers), None)
    return obj, sidecar_goal, "the first sidecar entity that is not a gripper"


@dataclass(frozen=True)
class LastFrame:
    """The last-frame check of one video: verdict, score (−distance to the goal, or the rise), what was checked."""

    verdict: bool
    score: float
    object: str
    goal: str | None
    how: str  # how the object was chosen


def last_frame_heuristic(video: str, spec: Any = None, *, radius: float = 0.05, rise: float = 0.05) -> LastFrame:
    """Sidecar-only check at the last frame: object–goal distance < radius when there is a goal (score
    −distance), else the object's rise since frame 0 > rise (score = rise); the object and goal are
    `task_object`'s choice for `spec`."""
    from ..grounding.backends.state import load_sidecar
    from ..grounding.base import find_sidecar

    path = find_sidecar(video)
    if path is None:
        raise LtlRewardError(f"{video}: no sidecar next to the video for the last-frame heuristic")
    sc = load_sidecar(path)
    obj, goal, how = task_object(spec, sc)
    if obj is None:
        raise LtlRewardError(f"{path}: no entity with positions for the last-frame heuristic")
    p = sc.positions[obj]  # (T, 3)
    if goal is not None:
        d = float(np.linalg.norm(p[-1] - sc.positions[goal][-1]))
        return LastFrame(d < radius, -d, obj, goal, how)
    r = float(p[-1, 2] - p[0, 2])
    return LastFrame(r > rise, r, obj, None, how)


# ------------------------------------------------------------------------------------------ baselines
@BASELINES.register("end_state", meta=BaselineInfo("the spec cut to its end-state constraints F G φ, same grounder"))
def end_state(inp: BaselineInput) -> BaselineResult:
    """Score each video with its spec's end-state cut; videos whose spec has none are left out (with a note)."""
    cuts: dict[int, Any] = {}
    for sp in inp.specs:  # one cut object per spec object, so score_with_specs groups them as the specs are
        if id(sp) not in cuts:
            cuts[id(sp)] = end_state_spec(sp)
    cut = [cuts[id(sp)] for sp in inp.specs]
    have = [i for i, c in enumerate(cut) if c is not None]
    inp.say(f"baseline end_state: {len(have)} videos")
    res = score_with_specs([inp.videos[i] for i in have], [cut[i] for i in have], inp.grounder,
                           workers=inp.workers, model_options=inp.model_options) if have else []
    n = len(inp.items)
    pred, score, ok = [False] * n, [math.nan] * n, [False] * n
    for i, s in zip(have, res, strict=True):
        pred[i], score[i], ok[i] = s.satisfied, s.reward, s.error is None
    m = inp.evaluate("end_state", f"end-state constraints only (F G φ), {inp.grounder} grounding", pred, score, ok)
    notes = () if len(have) == n else \
        (f"end_state: {n - len(have)} video(s) whose spec has no F G φ constraint were left out",)
    return BaselineResult(m, notes)


@BASELINES.register("last_frame", meta=BaselineInfo("sidecar last frame: object within 5 cm of the goal, "
                                                    "or risen 5 cm"))
def last_frame(inp: BaselineInput) -> BaselineResult:
    """`last_frame_heuristic` per video with its spec; skipped when no video has a usable sidecar; a note counts
    the objects checked and how they were chosen."""
    inp.say("baseline last_frame")
    pred, score, ok = [], [], []
    first_err = None
    objects: Counter[str] = Counter()
    for v, sp in zip(inp.videos, inp.specs, strict=True):
        try:
            c = last_frame_heuristic(v, sp)
            pred.append(c.verdict), score.append(c.score), ok.append(True)
            objects[f"{c.object} ({c.how})"] += 1
        except Exception as e:
            first_err = first_err or f"{type(e).__name__}: {e}"
            pred.append(False), score.append(math.nan), ok.append(False)
    m = inp.evaluate("last_frame", "sidecar last frame: object within 5 cm of the goal (or risen 5 cm)",
                     pred, score, ok)
    if first_err and not any(ok):
        m.skipped = f"no sidecars: {first_err}"
    notes = () if not objects else \
        ("last_frame: checked " + ", ".join(f"{o} on {n} video(s)" for o, n in objects.most_common()),)
    return BaselineResult(m, notes)


@BASELINES.register("vlm", meta=BaselineInfo("whole-task yes/no VLM judge held at the end (needs a vlm model)"))
def vlm(inp: BaselineInput) -> BaselineResult:
    """Whole-task yes/no VLM judge via the `vlm` backend; skipped with the reason when it is unavailable."""
    desc = "VLM judge: 'has the task been done?' asked per frame, required to hold at the end"
    why = vlm_unavailable()
    if why is not None:  # once, before any video: no per-video model lookups (15 s each) to fail the same way
        return BaselineResult(MethodReport("vlm", desc, skipped=why))
    specs_by_text: dict[str, Any] = {}
    specs = []
    for it in inp.items:
        text = _task_sentence(it)
        if text not in specs_by_text:
            specs_by_text[text] = vlm_spec(text)
        specs.append(specs_by_text[text])
    inp.say(f"baseline vlm: {len(inp.videos)} videos")
    res = score_with_specs(inp.videos, specs, "vlm", workers=1)
    ok = [s.error is None for s in res]
    if not any(ok):
        first = next((s.error for s in res if s.error), "unknown error")
        return BaselineResult(MethodReport("vlm", desc, n_failed=len(res),
                                           skipped=f"the vlm backend failed: {first}"))
    return BaselineResult(inp.evaluate("vlm", desc, [s.satisfied for s in res], [s.reward for s in res], ok))


def vlm_unavailable() -> str | None:
    """Why the VLM judge cannot run here (None when it can): the `vlm` backend cannot be built, or its
    weights resolve to no local directory (`model_identity` looks them up without loading them)."""
    try:
        from ..grounding import get_grounder

        get_grounder("vlm").model_identity()
    except Exception as e:
        return f"no vlm model is configured or found ({type(e).__name__}: {e})"
    return None


def _task_sentence(it: LabelItem) -> str:
    """The task in words for the VLM: the spec's task line when there is a spec file, else the task name."""
    if it.spec:
        try:
            from ..reward import load_task_spec

            t = load_task_spec(it.spec).task
            if t:
                return t
        except Exception:
            pass
    return (it.task or "the task").replace("_", " ")


__all__ = ["BASELINES", "Baseline", "BaselineError", "BaselineInfo", "BaselineInput", "BaselineResult",
           "LastFrame", "end_state_spec", "goal_entities", "last_frame_heuristic", "task_object", "vlm_spec",
           "vlm_unavailable"]
