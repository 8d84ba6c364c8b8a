"""Generative adversarial networks: StyleGAN2 (generator, discriminator, training) and the shipped generator.

* `stylegan2`: `stylegan2_config`, `Generator` (mapping, synthesis with modulated convolutions), `num_ws`,
  `style_mix`, `broadcast_ws`, the parameter tree that checkpoint converters target.
"""

from jgen.gan import stylegan2
from jgen.gan.stylegan2 import Generator, broadcast_ws, num_ws, style_mix, stylegan2_config, truncate

__all__ = ["stylegan2", "Generator", "broadcast_ws", "num_ws", "style_mix", "stylegan2_config", "truncate"]
