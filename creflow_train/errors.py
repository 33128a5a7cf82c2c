"""The one error type of creflow_train's configuration layer (its own module so every room can import it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A training config (or a model directory it names) is invalid; the message starts with the key."""
