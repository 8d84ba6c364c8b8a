"""Langevin and MALA samplers of exp(-E): closed-form Gaussian moments, one compilation for new parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import ebm

TRACES = []


def quadratic_energy(params, x):
    """E(x) = a |x|^2 / 2: the Gaussian N(0, I / a). Counts its traces."""
    TRACES.append(1)
    return 0.5 * params["a"] * jnp.sum(x ** 2, axis=-1)


@pytest.fixture(scope="module")
def ula_runs():
    """ULA with noise sqrt(2 h) from 0 for a = 1 and a = 4 (same compiled sampler)."""
    cfg = ebm.LangevinConfig(num_steps=400, step_size=0.05, noise_scale=None, clip_value=None, bounds=None)
    x0 = jnp.zeros((2000, 2))
    TRACES.clear()
    out = {a: ebm.langevin(quadratic_energy, {"a": jnp.float32(a)}, x0, jax.random.key(int(a)), cfg) for a in (1.0, 4.0)}
    return cfg, out, len(TRACES)


def test_langevin_with_new_params_compiles_once(ula_runs):
    _, _, traces = ula_runs
    assert traces == 1


def test_langevin_reaches_the_gaussian_moments_of_its_discretisation(ula_runs):
    cfg, out, _ = ula_runs
    h = cfg.step_size
    for a, (x, info) in out.items():
        x = np.asarray(x)
        # ULA on a Gaussian of precision a is an AR(1) chain with stationary variance 1 / (a (1 - a h / 2)).
        var = 1.0 / (a * (1 - a * h / 2))
        np.testing.assert_allclose(x.mean(0), 0.0, atol=4 * np.sqrt(var / len(x)))
        np.testing.assert_allclose(x.var(0), var, rtol=0.08)
        # The mean energy per step ends near its stationary value a var d / 2 (d = 2).
        np.testing.assert_allclose(float(info.energy[-50:].mean()), a * var, rtol=0.08)
        assert info.energy.shape == (cfg.num_steps,) and float(info.clipped_fraction.max()) == 0.0


def linear_energy(params, x):
    """E(x) = a sum(x): the gradient is a everywhere."""
    return params["a"] * jnp.sum(x, axis=-1)


def test_clamping_and_gradient_clipping_bound_every_step():
    cfg = ebm.LangevinConfig(num_steps=3, step_size=10.0, noise_scale=1e-3, clip_value=0.03, bounds=(-1.0, 1.0))
    x0 = jnp.full((4, 3), 0.5)
    x, info = ebm.langevin(linear_energy, {"a": jnp.float32(50.0)}, x0, jax.random.key(0), cfg)
    # grad E = 50 per coordinate is clipped to 0.03: each step moves by h * 0.03 = 0.3 (plus tiny noise).
    np.testing.assert_allclose(np.asarray(x), 0.5 - 0.9, atol=0.01)
    assert float(info.clipped_fraction.min()) == 1.0
    far, _ = ebm.langevin(linear_energy, {"a": jnp.float32(-50.0)}, x0, jax.random.key(0), cfg)
    np.testing.assert_array_equal(np.asarray(far), 1.0)  # pushed outwards, clamped to the data range


def test_mala_is_exact_for_a_gaussian_and_reports_acceptance():
    x0 = jnp.zeros((1000, 2))
    x, info = ebm.mala(quadratic_energy, {"a": jnp.float32(1.0)}, x0, jax.random.key(3), num_steps=300, step_size=0.8)
    assert info.acceptance_rate.shape == (1000,) and 0.5 < float(info.acceptance_rate.mean()) < 1.0
    np.testing.assert_allclose(np.asarray(x).var(0), 1.0, rtol=0.1)  # ULA at h = 0.8 would give 1.67
    _, small = ebm.mala(quadratic_energy, {"a": jnp.float32(1.0)}, x0, jax.random.key(3), num_steps=20,
                        step_size=0.01)
    assert float(small.acceptance_rate.mean()) > float(info.acceptance_rate.mean())


def test_langevin_path_records_chain_states():
    cfg = ebm.LangevinConfig(num_steps=5, step_size=0.05, noise_scale=None, clip_value=None, bounds=None)
    path = ebm.langevin_path(quadratic_energy, {"a": jnp.float32(1.0)}, jnp.zeros((3, 2)), jax.random.key(0), cfg, 4)
    assert path.shape == (4, 3, 2) and not np.allclose(path[0], path[-1])


def test_bad_langevin_settings_are_refused():
    with pytest.raises(ValueError, match="num_steps"):
        ebm.LangevinConfig(num_steps=0)
    with pytest.raises(ValueError, match="step_size"):
        ebm.LangevinConfig(step_size=-1.0)
    cfg = ebm.LangevinConfig.from_config({"num_steps": 7, "bounds": [-2, 2], "unrelated": 1})
    assert cfg.num_steps == 7 and cfg.bounds == (-2.0, 2.0) and hash(cfg)
