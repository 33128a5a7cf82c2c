"""Simulator-labelled manipulation videos (Meta-World, robosuite) for reward–label agreement benchmarks."""
