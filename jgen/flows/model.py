"""Flow models: a standard-normal base distribution pushed through a stack of bijectors.

`Flow` is a Flax Linen module holding the stacked parameters of its K layers
(leading axis K) and building a `distrax.Transformed(base, bijector)` from
them. Layers are listed in sampling order (noise -> data); the bijector is a
`distrax.Chain` (unrolled) or a `ScanChain` (one `lax.scan` over layers, for
compile time) - the two agree up to float rounding.

    flow = CouplingFlow(event_shape=(2,), num_layers=4)
    params = flow.init(key, jnp.zeros((1, 2)))          # init traces log_prob
    log_p = flow.apply(params, x, method="log_prob")         # [batch], nats
    x = flow.apply(params, key, 1000, method="sample")       # [1000, 2]
"""

from typing import Any, Callable, Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jgen.flows.conditioners import MADE, MLP, ConvNet, made_masks
from jgen.flows.coupling import affine_coupling, alternating_masks
from jgen.flows.maf import MaskedAutoregressive
from jgen.flows.scan_chain import ScanChain
from jgen.flows.spline import spline_coupling, spline_params_per_dim

__all__ = ["Flow", "CouplingFlow", "SplineCouplingFlow", "MAF"]

Array = jnp.ndarray
PyTree = Any


class Flow(nn.Module):
    """Base class: standard normal base + K layers of one kind.

    Subclasses define `_layer_init(key)` (parameters of one layer),
    `_layer_constants()` (non-trained per-layer arrays such as masks, stacked on
    a leading K axis) and `_make_layer(params, constants) -> distrax.Bijector`.

    Attributes:
      event_shape: shape of one data point, e.g. `(2,)` or `(7, 7, 1)`.
      num_layers: K.
      scan_layers: apply the layers with one `lax.scan` instead of unrolling.
      log_scale_bound: b in the bounded log-scale `b * tanh(s / b)`.
    """
    event_shape: Tuple[int, ...]
    num_layers: int = 4
    scan_layers: bool = False
    log_scale_bound: float = 3.0

    # --- to be provided by subclasses -------------------------------------------------
    def _layer_init(self, key: Array) -> PyTree:
        raise NotImplementedError

    def _layer_constants(self) -> PyTree:
        raise NotImplementedError

    def _make_layer(self, params: PyTree, constants: PyTree) -> distrax.Bijector:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------
    def setup(self):
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1; got {self.num_layers}.")
        self.layer_params = self.param(
            "layers", lambda key: jax.vmap(self._layer_init)(jax.random.split(key, self.num_layers)))

    def __call__(self, x: Array) -> Array:
        return self.log_prob(x)

    def base_distribution(self) -> distrax.Distribution:
        """Standard normal over `event_shape`."""
        zeros = jnp.zeros(self.event_shape)
        return distrax.Independent(distrax.Normal(zeros, jnp.ones_like(zeros)), len(self.event_shape))

    def layers(self) -> list[distrax.Bijector]:
        """The K layer bijectors in sampling order (noise -> data)."""
        stacked = (self.layer_params, self._layer_constants())
        return [self._make_layer(*jax.tree_util.tree_map(lambda a: a[k], stacked))
                for k in range(self.num_layers)]

    def bijector(self) -> distrax.Bijector:
        """Noise -> data bijector of the whole stack."""
        if self.scan_layers:
            return ScanChain(lambda xs: self._make_layer(*xs),
                             (self.layer_params, self._layer_constants()), len(self.event_shape))
        return distrax.Chain(self.layers()[::-1])

    def distribution(self) -> distrax.Transformed:
        return distrax.Transformed(self.base_distribution(), self.bijector())

    def log_prob(self, x: Array) -> Array:
        """`[..., *event_shape] -> [...]` log-density in nats."""
        self._check_event_shape(x)
        return self.distribution().log_prob(x)

    def sample(self, key: Array, num_samples: int) -> Array:
        """`[num_samples, *event_shape]` samples."""
        return self.distribution().sample(seed=key, sample_shape=(num_samples,))

    def sample_each_layer(self, key: Array, num_samples: int) -> list[Array]:
        """`[z, f_0(z), f_1(f_0(z)), ...]`: K + 1 arrays `[num_samples, *event_shape]`, the
        samples after the prior and after every layer; the last equals `sample`."""
        z = self.base_distribution().sample(seed=key, sample_shape=(num_samples,))
        if self.scan_layers:
            each = self.bijector().forward_each_layer(z)
            return [z] + [each[k] for k in range(self.num_layers)]
        out = [z]
        for layer in self.layers():
            out.append(layer.forward(out[-1]))
        return out

    def forward_and_log_det(self, z: Array) -> Tuple[Array, Array]:
        """Noise -> data and `log|det df/dz|`."""
        self._check_event_shape(z)
        return self.bijector().forward_and_log_det(z)

    def inverse_and_log_det(self, x: Array) -> Tuple[Array, Array]:
        """Data -> noise and `log|det df^{-1}/dx|`."""
        self._check_event_shape(x)
        return self.bijector().inverse_and_log_det(x)

    def _check_event_shape(self, x: Array) -> None:
        k = len(self.event_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != tuple(self.event_shape):
            expected = ", ".join(map(str, self.event_shape))
            raise ValueError(f"expected inputs [..., {expected}]; got shape {x.shape}.")


class CouplingFlow(Flow):
    """RealNVP: K affine coupling layers with alternating masks.

    Attributes:
      mask: "half" (vectors), "checkerboard" or "channel" (images `(H, W, C)`).
      conditioner: "mlp" (flattens the event) or "conv" (images; the mask is
        appended as an input channel so the net knows which pixels are given).
        With "conv" keep `scan_layers=False` on CPU: XLA:CPU differentiates
        convolutions inside a scan about 15x slower than unrolled.
      hidden_sizes: hidden widths (MLP) or channels (conv net).
      activation: hidden non-linearity of the conditioner.
    """
    mask: str = "half"
    conditioner: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: Callable[[Array], Array] = nn.relu

    def _params_per_dim(self) -> int:
        """Conditioner outputs per transformed coordinate: shift and raw log-scale."""
        return 2

    def _net(self) -> nn.Module:
        size, per_dim = int(np.prod(self.event_shape)), self._params_per_dim()
        if self.conditioner == "mlp":
            return MLP(tuple(self.hidden_sizes), per_dim * size, self.activation, parent=None)
        if self.conditioner == "conv":
            if len(self.event_shape) != 3:
                raise ValueError(f"conditioner='conv' needs an image event shape (H, W, C); "
                                 f"got {self.event_shape}.")
            return ConvNet(tuple(self.hidden_sizes), per_dim * self.event_shape[-1], activation=self.activation,
                           parent=None)
        raise ValueError(f"conditioner must be 'mlp' or 'conv'; got {self.conditioner!r}.")

    def _apply_net(self, params: PyTree, mask: Array, z: Array) -> Array:
        net, shape = self._net(), tuple(self.event_shape)
        batch = z.shape[:z.ndim - len(shape)]
        if self.conditioner == "mlp":
            out = net.apply({"params": params}, z.reshape(batch + (-1,)))
        else:
            given = jnp.broadcast_to(mask, z.shape).astype(z.dtype)
            out = net.apply({"params": params}, jnp.concatenate([z, given], axis=-1))
        return out.reshape(batch + shape + (self._params_per_dim(),))

    def _layer_init(self, key: Array) -> PyTree:
        size = int(np.prod(self.event_shape))
        if self.conditioner == "mlp":
            dummy = jnp.zeros((1, size))
        else:
            dummy = jnp.zeros((1,) + tuple(self.event_shape[:-1]) + (2 * self.event_shape[-1],))
        return self._net().init(key, dummy)["params"]

    def _layer_constants(self) -> Array:
        return jnp.asarray(alternating_masks(self.mask, tuple(self.event_shape), self.num_layers))

    def _make_layer(self, params: PyTree, mask: Array) -> distrax.Bijector:
        return affine_coupling(mask, lambda z: self._apply_net(params, mask, z), self.log_scale_bound)


class SplineCouplingFlow(CouplingFlow):
    """Neural spline flow: K coupling layers with rational-quadratic splines (Durkan et al., 2019).

    The same masks and conditioners as `CouplingFlow` (whose attributes it takes), but every transformed
    coordinate goes through a monotone `num_bins`-bin spline on [-boundary, boundary] (the identity
    outside) instead of an affine map; `log_scale_bound` is unused. Zero-initialised conditioners make
    the fresh flow the identity. See `jgen.flows.spline`.

    Attributes:
      num_bins: bins per spline.
      boundary: B, half-width of the spline's range; choose it to cover the data and the base samples.
    """
    num_bins: int = 8
    boundary: float = 4.0

    def _params_per_dim(self) -> int:
        return spline_params_per_dim(self.num_bins)

    def _make_layer(self, params: PyTree, mask: Array) -> distrax.Bijector:
        return spline_coupling(mask, lambda z: self._apply_net(params, mask, z), self.num_bins, self.boundary)


class MAF(Flow):
    """Masked autoregressive flow on vectors: K MADE-conditioned affine layers.

    The autoregressive order alternates between layers: "reverse" uses the
    natural order in even layers and its reversal in odd ones, "random" a fixed
    random permutation per layer (seeded by `order_seed`). Changing the MADE
    order is the same model as inserting that permutation between layers, but
    keeps every layer's output in data coordinates (for `sample_each_layer`).

    Attributes:
      hidden_sizes: MADE hidden widths.
      order: "reverse" or "random".
      hidden_degrees: "natural" or "random" MADE hidden-unit degrees.
      order_seed: seed of the random orders and degrees (fixed, not trained).
      activation: MADE hidden non-linearity.
    """
    hidden_sizes: Sequence[int] = (64, 64)
    order: str = "reverse"
    hidden_degrees: str = "natural"
    order_seed: int = 0
    activation: Callable[[Array], Array] = nn.relu

    def _net(self) -> MADE:
        return MADE(tuple(self.hidden_sizes), 2, self.activation, parent=None)

    def _orders(self) -> list[np.ndarray]:
        if len(self.event_shape) != 1:
            raise ValueError(f"MAF works on vectors (event_shape (D,)); got {self.event_shape}. "
                             "Flatten images first.")
        d = self.event_shape[0]
        if self.order == "reverse":
            return [np.arange(d) if k % 2 == 0 else np.arange(d)[::-1] for k in range(self.num_layers)]
        if self.order == "random":
            rng = np.random.default_rng(self.order_seed)
            return [rng.permutation(d) for _ in range(self.num_layers)]
        raise ValueError(f"order must be 'reverse' or 'random'; got {self.order!r}.")

    def _layer_constants(self) -> Tuple[Array, ...]:
        rng = np.random.default_rng(self.order_seed + 1)
        per_layer = [made_masks(o, self.hidden_sizes, hidden_degrees=self.hidden_degrees, rng=rng)
                     for o in self._orders()]
        return tuple(jnp.asarray(np.stack(m)) for m in zip(*per_layer))

    def _layer_init(self, key: Array) -> PyTree:
        masks = jax.tree_util.tree_map(lambda a: a[0], self._layer_constants())
        return self._net().init(key, jnp.zeros((1,) + tuple(self.event_shape)), masks)["params"]

    def _make_layer(self, params: PyTree, masks: Tuple[Array, ...]) -> distrax.Bijector:
        conditioner = lambda x: self._net().apply({"params": params}, x, masks)
        return MaskedAutoregressive(conditioner, self.log_scale_bound)
