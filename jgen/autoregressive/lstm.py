"""An LSTM over raster-ordered binary pixels: p(x) = prod_i Bernoulli(x_i | x_<i).

The image is read in raster order (row by row, left to right). At step ``i`` the
LSTM reads the previous pixel ``x_{i-1}`` (a dedicated start token at ``i = 0``)
and emits the Bernoulli logit of ``x_i``. Training is by teacher forcing: the
whole shifted sequence is fed at once and the exact log-likelihood

        log p(x) = sum_i [x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i)]

is maximised. Sampling feeds each drawn pixel back in, one ``lax.scan`` step per
pixel.

References:
    Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    Theis & Bethge, "Generative Image Modeling Using Spatial LSTMs", NeurIPS 2015.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["START_TOKEN", "PixelLSTM", "log_prob", "sample"]

# Tokens fed to the LSTM: pixel values 0 and 1, plus this start-of-image token.
START_TOKEN = 2


def _flatten_binary(x) -> jax.Array:
    """[batch, ...] binary pixels -> int32 [batch, num_pixels] in raster order."""
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(
                "PixelLSTM expects pixels of shape [batch, ...] (e.g. [batch, 5, 5]) "
                f"with at least 2 dimensions; got shape {x.shape}.")
    if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_
                    or jnp.issubdtype(x.dtype, jnp.floating)):
        raise TypeError(f"PixelLSTM expects binary pixels (int/bool/float 0-1); "
                                        f"got dtype {x.dtype}.")
    return x.reshape(x.shape[0], -1).astype(jnp.int32)


class PixelLSTM(nn.Module):
    """Stacked LSTM emitting one Bernoulli logit per raster-ordered pixel.

    Attributes:
        hidden_size: width of every LSTM layer and of the input embedding.
        num_layers: number of stacked LSTM layers.
    """

    hidden_size: int = 64
    num_layers: int = 1

    def setup(self):
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("PixelLSTM needs hidden_size >= 1 and num_layers >= 1; "
                                              f"got {self.hidden_size} and {self.num_layers}.")
        # 3 tokens: pixel 0, pixel 1 and START_TOKEN.
        self.embed = nn.Embed(3, self.hidden_size)
        self.cells = [
                nn.OptimizedLSTMCell(self.hidden_size) for _ in range(self.num_layers)
        ]
        self.readout = nn.Dense(1)

    def initial_carry(self, batch_size: int):
        """Zero (c, h) state per layer, each [batch_size, hidden_size]."""
        zeros = jnp.zeros((batch_size, self.hidden_size), jnp.float32)
        return tuple((zeros, zeros) for _ in range(self.num_layers))

    def _cells(self, carry, inputs):
        new_carry = []
        for cell, layer_carry in zip(self.cells, carry):
            layer_carry, inputs = cell(layer_carry, inputs)
            new_carry.append(layer_carry)
        return tuple(new_carry), inputs

    def step(self, carry, prev_token):
        """One generation step.

        Args:
            carry: state from `initial_carry` or a previous `step`.
            prev_token: int [batch], the previous pixel (0/1) or START_TOKEN.

        Returns:
            (new_carry, logits) with logits float [batch], the Bernoulli logit of the
            current pixel.
        """
        carry, out = self._cells(carry, self.embed(prev_token))
        return carry, self.readout(out)[..., 0]

    def __call__(self, x):
        """Teacher-forced logits.

        Args:
            x: binary pixels [batch, ...] (any trailing image shape, raster order).

        Returns:
            float [batch, num_pixels]: logit of pixel i given pixels < i.
        """
        x = _flatten_binary(x)
        batch = x.shape[0]
        prev = jnp.concatenate(
                [jnp.full((batch, 1), START_TOKEN, jnp.int32), x[:, :-1]], axis=1)
        inputs = self.embed(prev)  # [batch, T, hidden]

        scan = nn.scan(
                lambda module, carry, xt: module._cells(carry, xt),
                variable_broadcast="params",
                split_rngs={"params": False},
                in_axes=1,
                out_axes=1,
        )
        _, outputs = scan(self, self.initial_carry(batch), inputs)
        return self.readout(outputs)[..., 0]


@functools.partial(jax.jit, static_argnames="model")
def log_prob(model: PixelLSTM, params, x) -> jax.Array:
    """Exact log p(x) in nats, float [batch], for binary pixels x [batch, ...]."""
    x = _flatten_binary(x)
    logits = model.apply(params, x)
    ll = x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits)
    return ll.sum(axis=-1)


@functools.partial(jax.jit, static_argnames=("model", "num_samples",
                                                                                          "num_pixels"))
def sample(model: PixelLSTM, params, key, num_samples: int,
                      num_pixels: int) -> jax.Array:
    """Ancestral sampling with `lax.scan`, one LSTM step per pixel.

    Pixel i is drawn with key ``jax.random.split(key, num_pixels)[i]``.

    Returns:
        int32 [num_samples, num_pixels] in {0, 1}, raster order.
    """
    keys = jax.random.split(key, num_pixels)
    carry = model.apply(params, num_samples, method=PixelLSTM.initial_carry)

    def body(state, key_i):
        carry, prev = state
        carry, logits = model.apply(params, carry, prev, method=PixelLSTM.step)
        u = jax.random.uniform(key_i, logits.shape)
        pixel = (u < jax.nn.sigmoid(logits)).astype(jnp.int32)
        return (carry, pixel), pixel

    start = jnp.full((num_samples,), START_TOKEN, jnp.int32)
    _, pixels = jax.lax.scan(body, (carry, start), keys)
    return pixels.T
