"""Generative adversarial networks: StyleGAN2 (generator, discriminator, training) and a shipped generator.

* `stylegan2`: `stylegan2_config`, `Generator` (mapping, synthesis with modulated convolutions), `num_ws`,
  `style_mix`, `broadcast_ws`, `Discriminator`, and the parameter tree that checkpoint converters target.
* `training`: the one-call training step for `jgen.train.fit` (non-saturating loss, lazy R1, G_ema, w_avg,
  augmentation), `generate`, `sample_metrics`.
* `pretrained`: `load("olivetti64")`, the in-project generator trained on Olivetti faces (64 x 64 grey),
  and `data_splits`, the split it was trained on (its held-out people are the inversion targets).
* `convert` (with `torch_reader`): NVlabs `.pkl` and rosinality `.pt` checkpoints into the parameter tree of
  `stylegan2`, without PyTorch and without running code from the file.
* `invert`: inversion of images into z, w or w+ (MSE, LPIPS and cosine losses) and w+ layer crossover.
"""

from jgen.gan import convert, invert, pretrained, stylegan2, training
from jgen.gan.stylegan2 import (Discriminator, Generator, broadcast_ws, init_params, num_ws, style_mix,
                                stylegan2_config, truncate)

__all__ = ["convert", "invert", "pretrained", "stylegan2", "training", "Discriminator", "Generator", "broadcast_ws", "init_params",
           "num_ws", "style_mix", "stylegan2_config", "truncate"]
