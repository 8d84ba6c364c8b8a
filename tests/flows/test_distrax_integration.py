"""Integration of distrax and JAX: distrax.Transformed over jgen bijectors, jitted and trained.

Fails when a distrax or JAX release breaks the pieces jgen.flows relies on."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

from jgen.flows import CouplingFlow, affine_coupling


def test_distrax_transformed_jitted_log_prob_sample_and_training():
    """Integration: distrax.Transformed over jgen bijectors, jitted and differentiated by JAX."""
    base = distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.ones(2))
    # An affine coupling with a linear conditioner has a closed-form density.
    a, b = 0.5, -1.0
    only_second = jnp.array([0.0, 1.0])  # parameters of coordinate 2, functions of x1 = z[..., 0]
    bij = affine_coupling(jnp.array([True, False]),
                          lambda z: jnp.stack([b * z[..., :1] * only_second, a * z[..., :1] * only_second], -1))
    dist = distrax.Transformed(base, bij)
    x = jnp.array([[0.3, -1.2], [1.5, 0.4]])
    # x2 = z2 * exp(s) + b x1 with s = 3 tanh(a x1 / 3)  =>  z2 = (x2 - b x1) exp(-s), log|dz/dx| = -s.
    s = 3.0 * np.tanh(a * x[:, 0] / 3.0)  # the default bounded log-scale, bound 3
    z2 = (x[:, 1] - b * x[:, 0]) * np.exp(-s)
    expected = stats.norm.logpdf(x[:, 0]) + stats.norm.logpdf(z2) - s
    np.testing.assert_allclose(jax.jit(dist.log_prob)(x), expected, rtol=1e-5)
    samples, log_p = jax.jit(lambda k: dist.sample_and_log_prob(seed=k, sample_shape=(4,)))(jax.random.key(0))
    np.testing.assert_allclose(log_p, dist.log_prob(samples), rtol=1e-5)

    # A few jitted Adam steps on a flow model decrease the NLL of a shifted Gaussian.
    flow = CouplingFlow(event_shape=(2,), num_layers=2, hidden_sizes=(8,))
    data = jax.random.normal(jax.random.key(1), (256, 2)) * 0.5 + 2.0
    params = flow.init(jax.random.key(2), data[:1])
    tx = optax.adam(1e-2)
    nll = lambda p: -jnp.mean(flow.apply(p, data))

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            g = jax.grad(nll)(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, (p, tx.init(p)), None, length=50)[0][0]

    before, after = nll(params), nll(train(params))
    assert after < before - 1.0
