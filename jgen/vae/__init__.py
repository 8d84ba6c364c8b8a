"""Variational autoencoders: a config-built conv VAE, decoder likelihoods, the ELBO and IWAE bounds, and
measures of how the latent space is used.

* `model`: `vae_config`, `make_vae` (`VAE` = `Encoder` + `Decoder` + likelihood), `elbo`, `iwae_bound`,
  `layer_table` / `markdown_table` (the architecture as a table).
* `likelihoods`: Bernoulli, Gaussian (fixed or learned scale), BCE on [0, 1], discretised logistic.
* `bounds`: closed-form KL to N(0, I), the ELBO's parts, the chunked importance-weighted bound, bits/dim;
  written against two functions (encode, log-likelihood), so they apply to any Gaussian-encoder model.
* `latent`: active units, mutual information I(x; z), PCA planes, latent smoothness, and latent
  arithmetic (interpolation, class means, style transfer).
* `training`: the negative-ELBO loss for `jgen.train.fit_loss` (reconstruction and KL logged beside the
  total) and the ELBO of a dataset in batches.
"""

from jgen.vae import bounds, latent, likelihoods, training
from jgen.vae.bounds import Elbo, bits_per_dim, gaussian_kl
from jgen.vae.model import (VAE, Decoder, Encoder, check_config, elbo, iwae_bound, layer_table, make_vae,
                            markdown_table, num_params, vae_config)

__all__ = [
    "bounds", "latent", "likelihoods", "training", "Elbo", "bits_per_dim", "gaussian_kl", "VAE", "Encoder", "Decoder",
    "check_config", "elbo", "iwae_bound", "layer_table", "make_vae", "markdown_table", "num_params",
    "vae_config",
]
