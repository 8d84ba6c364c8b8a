"""Shared helpers for the flow tests: small flows, perturbed parameters, log|det| of jax.jacfwd."""

import jax
import jax.numpy as jnp

from jgen.flows import MAF, CouplingFlow, SplineCouplingFlow


def perturb(params, key, scale=0.1, dtype=None):
    """Adds N(0, scale^2) noise to every leaf so zero-initialised layers become non-trivial."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    new = [a + scale * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    if dtype is not None:
        new = [a.astype(dtype) for a in new]
    return jax.tree_util.tree_unflatten(treedef, new)


def jacobian_log_det(fn, xs):
    """`[batch]` log|det d fn / dx| at each point of `xs [batch, *event]` (events flattened), jitted."""
    shape = xs.shape[1:]

    def log_det(v):
        flat = lambda u: fn(u.reshape(shape)).reshape(-1)
        return jnp.linalg.slogdet(jax.jacfwd(flat)(v.reshape(-1)))[1]

    return jax.jit(jax.vmap(log_det))(xs)


SMALL = dict(num_layers=3, hidden_sizes=(8, 8))
FLOWS = {
    "coupling": lambda **kw: CouplingFlow(event_shape=(2,), **SMALL, **kw),
    "coupling_scan": lambda **kw: CouplingFlow(event_shape=(2,), scan_layers=True, **SMALL, **kw),
    "maf": lambda **kw: MAF(event_shape=(3,), **SMALL, **kw),
    "maf_scan_random": lambda **kw: MAF(event_shape=(3,), scan_layers=True, order="random",
                                        hidden_degrees="random", **SMALL, **kw),
    "image_conv": lambda **kw: CouplingFlow(event_shape=(3, 3, 1), mask="checkerboard",
                                            conditioner="conv", num_layers=2, hidden_sizes=(4,), **kw),
    # boundary 2: some N(0, 1) test points fall outside the spline range and exercise the identity tails.
    "spline": lambda **kw: SplineCouplingFlow(event_shape=(2,), num_bins=4, boundary=2.0, **SMALL, **kw),
    "image_spline": lambda **kw: SplineCouplingFlow(event_shape=(3, 3, 1), mask="checkerboard", conditioner="conv",
                                                    num_layers=2, hidden_sizes=(4,), num_bins=3, boundary=2.0,
                                                    **kw),
}


def init_flow(name, perturbation=0.0, dtype=None, **kw):
    flow = FLOWS[name](**kw)
    x = jnp.zeros((1,) + tuple(flow.event_shape))
    params = jax.jit(flow.init)(jax.random.key(0), x)
    if perturbation:
        params = perturb(params, jax.random.key(1), perturbation, dtype)
    return flow, params


def points(flow, n, seed=2, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), (n,) + tuple(flow.event_shape), dtype)
