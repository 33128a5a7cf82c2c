"""The CPU ablation: a procedural pick-and-place video world, a tiny flow model, and the four trainers."""
