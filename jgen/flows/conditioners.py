"""Conditioner networks for flows: MLP, conv net and MADE, last layer zero-initialised.

A conditioner maps the part of the input a flow layer may look at to the
parameters of the elementwise transform (shift and raw log-scale). Its last
layer starts at zero, so a freshly initialised flow is the identity map
(Dinh et al., 2017, "Density estimation using Real NVP"; the distrax
`examples/flow.py` does the same).

Hidden biases of the dense conditioners start at N(0, bias_init_std^2), not
at zero: with zero biases every ReLU of the first layer has its kink at the
origin, so the conditioner starts as a function with a single kink per input
direction and fits multimodal toy densities markedly worse (PyTorch's default
uniform bias init spreads the kinks the same way).
"""

from typing import Callable, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

__all__ = ["MLP", "ConvNet", "MADE", "MaskedDense", "made_degrees", "made_masks"]

Array = jnp.ndarray


class MLP(nn.Module):
    """Fully connected network `[..., d_in] -> [..., num_outputs]`.

    Attributes:
      hidden_sizes: widths of the hidden layers.
      num_outputs: width of the output layer.
      activation: hidden non-linearity.
      zero_init_last: initialise the output layer's kernel and bias to zero.
      bias_init_std: standard deviation of the hidden biases at initialisation.
    """
    hidden_sizes: Sequence[int]
    num_outputs: int
    activation: Callable[[Array], Array] = nn.relu
    zero_init_last: bool = True
    bias_init_std: float = 1.0

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for width in self.hidden_sizes:
            x = self.activation(nn.Dense(width, bias_init=nn.initializers.normal(self.bias_init_std))(x))
        init = nn.initializers.zeros if self.zero_init_last else nn.initializers.lecun_normal()
        return nn.Dense(self.num_outputs, kernel_init=init)(x)


class ConvNet(nn.Module):
    """Same-padding conv net `[..., H, W, C_in] -> [..., H, W, num_outputs]`.

    Three-by-three convolutions keep the spatial size, so the output holds one
    parameter vector per pixel, as a checkerboard coupling layer needs.

    Attributes:
      hidden_channels: channels of the hidden conv layers.
      num_outputs: output channels.
      kernel_size: spatial kernel size of every layer.
      activation: hidden non-linearity.
      zero_init_last: initialise the output layer's kernel and bias to zero.
    """
    hidden_channels: Sequence[int]
    num_outputs: int
    kernel_size: int = 3
    activation: Callable[[Array], Array] = nn.relu
    zero_init_last: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k = (self.kernel_size, self.kernel_size)
        for channels in self.hidden_channels:
            x = self.activation(nn.Conv(channels, k, padding="SAME")(x))
        init = nn.initializers.zeros if self.zero_init_last else nn.initializers.lecun_normal()
        return nn.Conv(self.num_outputs, k, padding="SAME", kernel_init=init)(x)


def made_degrees(input_order: Sequence[int], hidden_sizes: Sequence[int], *,
                 hidden_degrees: str = "natural",
                 rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Degrees of the MADE units (Germain et al., 2015, "MADE", Sec. 4).

    Args:
      input_order: permutation of `range(D)`; `input_order[i]` is the position
        of input `i` in the autoregressive order (0 = first, depends on nothing).
      hidden_sizes: widths of the hidden layers.
      hidden_degrees: "natural" assigns hidden unit k the degree
        `k mod (D - 1) + 1` (every degree equally represented); "random" draws
        each degree uniformly from `[min degree of previous layer, D - 1]`.
      rng: numpy generator for "random" hidden degrees.

    Returns:
      `[m_0, m_1, ..., m_L]`: input degrees `m_0 = input_order + 1` (in 1..D)
      followed by one integer array per hidden layer.
    """
    order = np.asarray(input_order)
    d = order.shape[0]
    if order.ndim != 1 or sorted(order.tolist()) != list(range(d)):
        raise ValueError(f"input_order must be a permutation of range(D); got {order.tolist()}.")
    if hidden_degrees not in ("natural", "random"):
        raise ValueError(f"hidden_degrees must be 'natural' or 'random'; got {hidden_degrees!r}.")
    if hidden_degrees == "random" and rng is None:
        raise ValueError("hidden_degrees='random' needs a numpy Generator `rng`.")
    top = max(d - 1, 1)
    degrees = [order + 1]
    for width in hidden_sizes:
        if hidden_degrees == "natural":
            degrees.append(np.arange(width) % top + 1)
        else:
            low = min(int(degrees[-1].min()), top)
            degrees.append(rng.integers(low, top + 1, size=width))
    return degrees


def made_masks(input_order: Sequence[int], hidden_sizes: Sequence[int], *,
               num_params: int = 2, hidden_degrees: str = "natural",
               rng: np.random.Generator | None = None) -> Tuple[np.ndarray, ...]:
    """Connectivity masks of a MADE network.

    A hidden unit of degree m sees inputs of degree <= m; output d (degree m_d)
    sees hidden units of degree < m_d, so output d depends only on inputs that
    come before d in the order.

    Args:
      input_order: see `made_degrees`.
      hidden_sizes: widths of the hidden layers.
      num_params: parameters per dimension; outputs are laid out `[D, num_params]`
        (flattened d-major).
      hidden_degrees: "natural" or "random", see `made_degrees`.
      rng: numpy generator for random degrees.

    Returns:
      Float masks `[D, h_1], [h_1, h_2], ..., [h_L, D * num_params]` (1 = connected).
    """
    degrees = made_degrees(input_order, hidden_sizes, hidden_degrees=hidden_degrees, rng=rng)
    masks = [(m_out[None, :] >= m_in[:, None]).astype(np.float32)
             for m_in, m_out in zip(degrees[:-1], degrees[1:])]
    out = (degrees[0][None, :] > degrees[-1][:, None]).astype(np.float32)  # [h_L, D]
    masks.append(np.repeat(out, num_params, axis=1))
    return tuple(masks)


class MaskedDense(nn.Module):
    """Dense layer whose kernel is multiplied by a fixed 0/1 mask `[d_in, features]`."""
    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> Array:
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return x @ (kernel * mask.astype(kernel.dtype)) + bias


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation (Germain et al., 2015).

    `[..., D] -> [..., D, num_params]`, output `[..., d, :]` a function of the
    inputs earlier than d in the order encoded by `masks` (from `made_masks`).
    Masks are call arguments, not attributes, so layers with different orders
    can share one parameter structure and be stacked with `lax.scan`.

    Attributes:
      hidden_sizes: widths of the hidden layers (must match the masks).
      num_params: parameters per dimension (2: shift and raw log-scale).
      activation: hidden non-linearity.
      zero_init_last: initialise the output layer to zero (identity MAF).
      bias_init_std: standard deviation of the hidden biases at initialisation.
    """
    hidden_sizes: Sequence[int]
    num_params: int = 2
    activation: Callable[[Array], Array] = nn.relu
    zero_init_last: bool = True
    bias_init_std: float = 1.0

    @nn.compact
    def __call__(self, x: Array, masks: Sequence[Array]) -> Array:
        if len(masks) != len(self.hidden_sizes) + 1:
            raise ValueError(f"MADE needs {len(self.hidden_sizes) + 1} masks (one per layer); got {len(masks)}.")
        d = x.shape[-1]
        for width, mask in zip(self.hidden_sizes, masks[:-1]):
            x = self.activation(MaskedDense(width, bias_init=nn.initializers.normal(self.bias_init_std))(x, mask))
        init = nn.initializers.zeros if self.zero_init_last else nn.initializers.lecun_normal()
        out = MaskedDense(d * self.num_params, kernel_init=init)(x, masks[-1])
        return out.reshape(out.shape[:-1] + (d, self.num_params))
