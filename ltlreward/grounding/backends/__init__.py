"""Grounding backends, one module each (state.py + the sidecar format in sidecar.py, color.py, models/),
registered with their metadata in `ltlreward.grounding.registry` and imported only when chosen."""
