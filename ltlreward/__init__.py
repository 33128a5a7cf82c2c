"""ltlreward: LTL constraint rewards with violation traces for video generation and robot-policy RL.

The public API is imported lazily so `import ltlreward` stays fast; heavy extras load only on use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "parse_formula": "ltlreward.spec.parser",
    "parse_spec": "ltlreward.spec.parser",
    "load_spec": "ltlreward.spec.parser",
    "format_formula": "ltlreward.spec.printer",
    "format_spec": "ltlreward.spec.printer",
    "TaskSpec": "ltlreward.spec.ast",
    "evaluate": "ltlreward.ltlf",
    "monitor": "ltlreward.ltlf",
    "MonitorResult": "ltlreward.ltlf",
    "Witness": "ltlreward.ltlf",
    "load_signals": "ltlreward.ltlf.signals",
    "RewardModel": "ltlreward.reward",
    "RewardResult": "ltlreward.result",
    "TrainerReward": "ltlreward.adapters",
    "attach_masks": "ltlreward.adapters",
    "as_video_batch": "ltlreward.adapters",
    "SpecError": "ltlreward.errors",
    "MonitorError": "ltlreward.errors",
    "VideoError": "ltlreward.errors",
    "GroundingError": "ltlreward.errors",
    "CapabilityError": "ltlreward.errors",
    "LtlRewardError": "ltlreward.errors",
    "Registry": "ltlreward.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'ltlreward' has no attribute {name!r}")
    module = importlib.import_module(mod)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
