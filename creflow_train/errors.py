"""The error types of creflow_train's configuration and checkpoint layers (their own module so every room can
import them)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A training config (or a model directory it names) is invalid; the message starts with the key."""


class CheckpointError(RuntimeError):
    """A training checkpoint cannot be read or does not fit the run; the message starts with the file."""
