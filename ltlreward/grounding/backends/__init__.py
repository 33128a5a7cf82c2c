"""Grounding backends, one file each; loaded lazily through the registry."""
