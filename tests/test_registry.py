"""The one registry shape: lazy targets, aliases, duplicate and unknown-name errors that list the options."""

from __future__ import annotations

import sys

import pytest

from ltlreward.errors import GroundingError, LtlRewardError
from ltlreward.registry import Registry, describe


def test_lazy_target_imports_on_first_get_only():
    reg: Registry = Registry("thing")
    sys.modules.pop("json.tool", None)
    reg.register("tool", "json.tool:main", meta={"doc": "json pretty printer"})
    assert "json.tool" not in sys.modules
    assert reg.meta("tool") == {"doc": "json pretty printer"}
    assert "json.tool" not in sys.modules  # metadata does not import
    import json.tool

    assert reg.get("tool") is json.tool.main
    assert reg.entry("tool").lazy


def test_decorator_aliases_and_order():
    reg: Registry = Registry("mode")

    @reg.register("weighted_mean", aliases=("wmean",), meta={"doc": "weighted fraction"})
    def wm():
        return 1

    reg.register("all", lambda: 2)
    assert reg.get("wmean") is wm and reg.canonical("wmean") == "weighted_mean"
    assert reg.names() == ("weighted_mean", "all")
    assert "wmean" in reg and "nope" not in reg and len(reg) == 2
    assert describe(reg) == [("weighted_mean (wmean)", "weighted fraction"), ("all", "")]


def test_duplicates_are_errors_unless_replaced():
    reg: Registry = Registry("grounder", error=GroundingError)
    reg.register("state", object(), aliases=("sim",))
    with pytest.raises(GroundingError, match="grounder 'state' is already registered"):
        reg.register("state", object())
    with pytest.raises(GroundingError, match="grounder 'sim' is already registered"):
        reg.register("other", object(), aliases=("sim",))
    new = object()
    reg.register("state", new, replace=True)
    assert reg.get("state") is new and "sim" not in reg


def test_unknown_name_lists_options_and_suggests():
    reg: Registry = Registry("grounder", error=GroundingError)
    for n in ("state", "color"):
        reg.register(n, object())
    with pytest.raises(GroundingError) as e:
        reg.get("stat")
    assert str(e.value) == "unknown grounder 'stat'; did you mean 'state'? available: state, color"
    with pytest.raises(LtlRewardError, match=r"available: state, color$"):
        reg.get("zzzz")


def test_missing_dependency_is_the_registry_error():
    reg: Registry = Registry("backend", error=GroundingError)
    reg.register("ghost", "a_package_that_does_not_exist.mod:Thing")
    with pytest.raises(GroundingError, match="backend 'ghost' needs a package that is not installed"):
        reg.get("ghost")
    with pytest.raises(ValueError, match=r"package\.module:attr"):
        reg.register("bad", "no_colon_here")
