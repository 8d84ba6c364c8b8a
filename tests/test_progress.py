"""scan_with_progress is a lax.scan that also reports progress; on a terminal it must give the same result."""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jgen import progress


def body(c, x):
    return c + x, c * x


def test_scan_with_progress_equals_scan(monkeypatch):
    xs = jnp.arange(10.0)
    ref = jax.lax.scan(body, 0.0, xs)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # take the callback path
    got = jax.jit(lambda xs: progress.scan_with_progress(body, 0.0, xs, desc="t", every=3))(xs)
    np.testing.assert_allclose(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1])
    assert not progress._BARS  # the bar was opened and closed
    quiet = progress.scan_with_progress(body, 0.0, xs, enabled=False)
    np.testing.assert_allclose(quiet[1], ref[1])
