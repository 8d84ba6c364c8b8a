"""Metrics every model family shares: likelihoods in bits/dim, sample quality in named feature spaces,
perceptual distances.

Import the submodules explicitly (`from jgen.metrics import likelihood, sample_quality`): some of them load
large weights or train a classifier on first use, and importing `jgen.metrics` alone stays cheap.
"""
