"""creflow_train: CreFlow post-training (credit-aware NFT + corrective reflow) for flow-matching video models.

Kept import-light: torch and diffusers are imported inside the functions that need them.
"""

__all__ = ["advantages", "losses", "masks"]
