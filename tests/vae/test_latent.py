"""Latent-space measures on constructed posteriors with known answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jgen.vae import latent


def test_active_units_count_dimensions_whose_means_vary():
    rng = np.random.default_rng(0)
    mean = np.concatenate([rng.normal(size=(500, 3)), 0.05 * rng.normal(size=(500, 2))], axis=1)  # var 1 vs 0.0025
    assert latent.active_units(mean) == 3
    np.testing.assert_allclose(latent.posterior_mean_variance(mean), np.var(mean, axis=0, ddof=1))


def test_mutual_information_is_zero_under_collapse_and_log_n_for_separated_posteriors():
    n, d = 256, 4
    key = jax.random.key(0)
    assert abs(latent.mutual_information(key, np.zeros((n, d)), np.zeros((n, d)))) < 1e-5
    far = 100.0 * np.asarray(jax.random.normal(jax.random.key(1), (n, d)))
    np.testing.assert_allclose(latent.mutual_information(key, far, np.full((n, d), -4.0)), math.log(n), atol=1e-3)


def test_pca_plane_and_smoothness_of_a_linear_decoder():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(400, 2)) @ np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) + 5.0
    centre, directions, std = latent.pca_plane(mean)
    np.testing.assert_allclose(np.abs(directions), [[1, 0, 0], [0, 1, 0]], atol=0.05)
    np.testing.assert_allclose(centre, mean.mean(0)) and np.testing.assert_allclose(std, [3.0, 1.0], rtol=0.1)
    a = jnp.asarray(rng.normal(size=(3, 12)), jnp.float32)
    decode = lambda z: (z @ a).reshape(-1, 3, 4, 1)
    z = jnp.asarray(mean, jnp.float32)
    got = latent.latent_smoothness(decode, z, jax.random.key(2), 0.5, features=lambda x: x.reshape(len(x), -1)[:, :6])
    u = jax.random.normal(jax.random.key(2), z.shape)
    u = np.asarray(u / jnp.linalg.norm(u, axis=1, keepdims=True), np.float64)
    np.testing.assert_allclose(got["pixels"], np.mean(np.linalg.norm(u @ np.asarray(a, np.float64), axis=1)), rtol=1e-4)
    np.testing.assert_allclose(got["pixels_rms"], got["pixels"] / math.sqrt(12), rtol=1e-4)
    assert got["features"] < got["pixels"]


def test_unrelated_pairs_ratio_of_a_scaling_decoder_is_its_scale():
    z = np.random.default_rng(0).normal(size=(50, 4))
    z[7] = z[3]  # a repeated latent can be paired with its copy; such pairs are left out
    ratio, mean_dz = latent.unrelated_pairs_ratio(lambda v: 2.5 * v.reshape(len(v), 2, 2), z, seed=1)
    np.testing.assert_allclose(ratio, 2.5, rtol=1e-12)
    assert mean_dz > 1.0
