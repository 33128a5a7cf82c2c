"""One registry shape for every pluggable kind: grounders, predicates, reward modes, model families, English
backends, agreement baselines.

    GROUNDERS = Registry("grounder", error=GroundingError)
    GROUNDERS.register("state", "ltlreward.grounding.backends.state:StateGrounder", aliases=("sim",))

    @REWARD_MODES.register("all", meta={"doc": "1 if every constraint holds"})
    def _all(sat, rho, w): ...

    GROUNDERS.get("sim")        # imports the module on first use, returns StateGrounder
    GROUNDERS.get("stat")       # GroundingError: unknown grounder 'stat'; did you mean 'state'? available: …

An entry is either an object or a lazy `"package.module:attr"` string, imported only when it is first asked
for (so a heavy backend costs nothing until chosen); metadata (a frozen record or a dict) sits beside it.
A name or alias registered twice is an error, not a silent overwrite; an unknown name lists the options.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import LtlRewardError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: its target (object or lazy "module:attr"), aliases and metadata."""

    name: str
    target: Any
    aliases: tuple[str, ...] = ()
    meta: Any = None

    @property
    def lazy(self) -> bool:
        return isinstance(self.target, str)


@dataclass
class Registry(Generic[T]):
    """Named entries of one kind; see the module docstring. `error` is the exception type users see."""

    kind: str
    error: type[Exception] = LtlRewardError
    _entries: dict[str, Entry[T]] = field(default_factory=dict, repr=False)
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)
    _loaded: dict[str, T] = field(default_factory=dict, repr=False)

    # -- registration ---------------------------------------------------------------------------------------
    def register(self, name: str, target: Any = None, *, aliases: tuple[str, ...] = (), meta: Any = None,
                 replace: bool = False) -> Any:
        """Register `target` under `name` (and `aliases`); with no target, return a decorator that does.

        A lazy target is a "package.module:attr" string. Registering a taken name or alias raises the
        registry's error unless `replace` (for plugins that knowingly override a built-in)."""
        if target is None:
            def deco(obj: Any) -> Any:
                self.register(name, obj, aliases=aliases, meta=meta, replace=replace)
                return obj
            return deco
        if isinstance(target, str) and (":" not in target or target.startswith(":") or target.endswith(":")):
            raise ValueError(f"a lazy {self.kind} target looks like 'package.module:attr', got {target!r}")
        for key in (name, *aliases):
            taken = key in self._entries or key in self._aliases
            if taken and not replace:
                raise self.error(f"{self.kind} {key!r} is already registered")
        if replace:
            self.unregister(name)
        self._entries[name] = Entry(name, target, tuple(aliases), meta)
        for a in aliases:
            self._aliases[a] = name
        return target

    def unregister(self, name: str) -> None:
        """Remove `name` and its aliases (no error when absent)."""
        entry = self._entries.pop(name, None)
        self._loaded.pop(name, None)
        if entry is not None:
            for a in entry.aliases:
                self._aliases.pop(a, None)

    # -- lookup ---------------------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name behind `name` (an alias resolves); unknown names raise, listing the options."""
        key = self._aliases.get(name, name)
        if key in self._entries:
            return key
        options = self.names()
        close = difflib.get_close_matches(name, [*options, *self._aliases], n=1)
        hint = f"; did you mean {self._aliases.get(close[0], close[0])!r}?" if close else ";"
        raise self.error(f"unknown {self.kind} {name!r}{hint} available: {', '.join(options) or '(none)'}")

    def entry(self, name: str) -> Entry[T]:
        """The entry of `name` (its metadata without importing a lazy target)."""
        return self._entries[self.canonical(name)]

    def meta(self, name: str) -> Any:
        return self.entry(name).meta

    def get(self, name: str) -> T:
        """The object registered as `name`, importing a lazy target on first use.

        A missing optional dependency becomes the registry's error, naming the entry and the package."""
        key = self.canonical(name)
        if key in self._loaded:
            return self._loaded[key]
        target = self._entries[key].target
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                raise self.error(f"{self.kind} {key!r} needs a package that is not installed: {e}") from None
            target = getattr(module, attr)
        self._loaded[key] = target
        return target

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order (aliases excluded)."""
        return tuple(self._entries)

    def aliases(self) -> dict[str, str]:
        """alias → registered name."""
        return dict(self._aliases)

    def items(self) -> Iterator[tuple[str, Entry[T]]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def describe(registry: Registry[Any], summary: Callable[[Entry[Any]], str] | None = None) -> list[tuple[str, str]]:
    """(name [aliases], one-line summary) rows for printing what a registry holds, as `ltlreward grounders` does."""
    rows = []
    for name, e in registry.items():
        label = name + (f" ({', '.join(e.aliases)})" if e.aliases else "")
        if summary is not None:
            text = summary(e)
        elif isinstance(e.meta, dict):
            text = str(e.meta.get("doc", ""))
        else:
            text = str(getattr(e.meta, "doc", "") or "")
        rows.append((label, text))
    return rows


__all__ = ["Entry", "Registry", "describe"]
