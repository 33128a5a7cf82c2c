"""Typed errors a user can cause. Each names what went wrong and where (file:line:col, video, capability)."""

from __future__ import annotations

import re


class LtlRewardError(Exception):
    """Base class of every error ltlreward raises on purpose."""


class SpecError(LtlRewardError):
    """A malformed or invalid spec/formula, located by file, line and column with a caret excerpt."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.source = source
        super().__init__(self.render())

    @property
    def location(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def excerpt(self) -> str:
        """The offending source line with a caret under the column ('' when unknown)."""
        if self.source is None or self.line is None:
            return ""
        lines = self.source.splitlines()
        if not 1 <= self.line <= len(lines):
            return ""
        text = lines[self.line - 1].replace("\t", " ")
        col = max(1, self.column or 1)
        return f"    {text}\n    {' ' * (col - 1)}^"

    def render(self) -> str:
        head = f"{self.location}: error: {self.message}"
        ex = self.excerpt()
        return f"{head}\n{ex}" if ex else head


class SpecErrors(SpecError):
    """Several located errors of one spec file, in source order; its own location and message are the first's."""

    def __init__(self, errors: list[SpecError]) -> None:
        if len(errors) < 2:
            raise ValueError("SpecErrors holds two or more errors; raise the SpecError itself")
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column, source=first.source)

    def render(self) -> str:
        return "\n".join(e.render() for e in getattr(self, "errors", ())) + f"\n{len(self.errors)} errors"


def spec_errors(exc: SpecError) -> list[SpecError]:
    """The individual errors of `exc` (one, or each of a SpecErrors)."""
    return list(exc.errors) if isinstance(exc, SpecErrors) else [exc]


_SAYS_ERROR = re.compile(r"(?:^|: )error: ")  # 'error: …' or 'file:line:col: error: …' (a rendered SpecError)


def problem_text(e: BaseException | str) -> str:
    """How every command prints a problem, with exactly one 'error:': a SpecError's own located lines
    ('file:line:col: error: …' and the caret), a message whose first line already says 'error: ' (a wrapped
    SpecError, an English compile error) as it is, anything else after 'error: '."""
    if isinstance(e, SpecError):
        return e.render()
    text = str(e)
    return text if _SAYS_ERROR.search(text.split("\n", 1)[0]) else f"error: {text}"


class MonitorError(LtlRewardError):
    """Signals that do not fit the formula (missing atom, bad shape, seconds without fps)."""


class VideoError(LtlRewardError):
    """A video that cannot be decoded (missing, corrupt, truncated, zero frames); names the file."""


class GroundingError(LtlRewardError):
    """A grounder that cannot produce what was asked (bad sidecar field, missing model, …)."""


class CapabilityError(GroundingError):
    """A predicate the chosen grounder cannot answer: names predicate, grounder and what would answer it."""
