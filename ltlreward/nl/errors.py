"""The error raised when an English task description cannot be turned into a spec."""

from __future__ import annotations

from ..errors import LtlRewardError


class NLError(LtlRewardError):
    """A sentence the compiler cannot understand: quotes the unparsed span and suggests a supported phrasing."""

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        span: tuple[int, int] | None = None,
        suggestion: str | None = None,
        attempts: int | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.span = span
        self.suggestion = suggestion
        self.attempts = attempts
        super().__init__(self.render())

    @property
    def unparsed(self) -> str:
        """The part of the input that was not understood ('' when the error is not about one span)."""
        if self.span is None:
            return ""
        return self.text[self.span[0] : self.span[1]]

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        if self.span is not None and self.text:
            lo, hi = self.span
            line_start = self.text.rfind("\n", 0, lo) + 1
            line_end = self.text.find("\n", lo)
            line_end = len(self.text) if line_end < 0 else line_end
            lines.append(f"    {self.text[line_start:line_end]}")
            width = max(1, min(hi, line_end) - lo)
            lines.append("    " + " " * (lo - line_start) + "^" * width)
        if self.suggestion:
            lines.append(f"  did you mean: {self.suggestion!r}")
        return "\n".join(lines)


class BackendError(LtlRewardError, ValueError):
    """An unknown English backend name (the message lists the registered ones)."""
