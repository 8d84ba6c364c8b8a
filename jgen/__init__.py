"""jgen: classic generative modelling in JAX and Flax.

Subpackages own one idea each: `jgen.data` (TFDS input pipeline without TensorFlow), `jgen.train`
(train state, jitted steps, checkpointed fit loop), `jgen.experiment` (the workdir contract every experiment
keeps), `jgen.viz` (figures), and one module or package per model family (`jgen.flows`, `jgen.mcmc`,
`jgen.autoregressive`, `jgen.diffusion`, `jgen.kde`, `jgen.ppca`, `jgen.mle`).
"""

__version__ = "0.1.0"
