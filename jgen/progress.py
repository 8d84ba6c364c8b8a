"""Progress bars: tqdm on the host, and a bar that advances from inside `jax.lax.scan`.

Bars are silent when stderr is not a terminal (batch jobs, CI), through tqdm's `disable=None`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

__all__ = ["bar", "scan_with_progress"]


def bar(total: int | None = None, desc: str | None = None, initial: int = 0, enabled: bool = True):
    """A tqdm bar that is quiet unless stderr is a terminal."""
    return tqdm(total=total, desc=desc, initial=initial, disable=None if enabled else True,
                dynamic_ncols=True, file=sys.stderr, leave=False)


_BARS: dict[int, Any] = {}


def _open(uid, total, desc):
    _BARS[int(uid)] = bar(total=int(total), desc=desc)


def _advance(uid, n):
    b = _BARS.get(int(uid))
    if b is not None:
        b.update(int(n))


def _close(uid):
    b = _BARS.pop(int(uid), None)
    if b is not None:
        b.close()


_next_uid = [0]


def scan_with_progress(f: Callable, init: Any, xs: Any = None, length: int | None = None, *,
                       desc: str = "scan", every: int | None = None, enabled: bool = True):
    """`jax.lax.scan(f, init, xs, length)` that advances a host progress bar every `every` steps.

    The bar is driven by `jax.debug.callback`, so it works under `jit`. Call this outside of any `vmap`
    (vmap inside `f` instead) so the callback fires once per step rather than once per batch element.
    With `enabled=False` or a non-terminal stderr it is a plain scan: no callbacks are traced.
    """
    if length is None:
        length = len(jax.tree.leaves(xs)[0])
    if not enabled or not sys.stderr.isatty():
        return jax.lax.scan(f, init, xs, length=length)
    every = every or max(1, length // 100)
    uid = _next_uid[0] = _next_uid[0] + 1

    def body(carry, inp):
        i, c = carry
        jax.lax.cond(i == 0, lambda: jax.debug.callback(_open, uid, length, desc), lambda: None)
        c, out = f(c, inp)
        jax.lax.cond((i + 1) % every == 0, lambda: jax.debug.callback(_advance, uid, every), lambda: None)
        jax.lax.cond(i == length - 1, lambda: jax.debug.callback(_close, uid), lambda: None)
        return (i + 1, c), out

    (_, carry), ys = jax.lax.scan(body, (jnp.zeros((), jnp.int32), init), xs, length=length)
    return carry, ys
