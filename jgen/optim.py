"""One optimizer builder from one config block, so no experiment hard-codes an optimizer setting.

Every experiment's config carries an `optim` block (`optim_config(...)` makes one with the experiment's own
defaults) and builds its optimizer with `make_optimizer(config.optim, num_steps)`:

    c.optim = optim.optim_config(name="adam", learning_rate=1e-3, schedule="cosine", clip_grad_norm=1.0)
    tx = optim.make_optimizer(config.optim, config.train_steps)
    --config.optim.learning_rate=3e-4 --config.optim.schedule=constant    # overrides on the command line

The chain is: gradient clipping by global norm (when `clip_grad_norm` > 0), then the optimizer with its
learning-rate schedule (and decoupled weight decay for AdamW). The EMA decay lives in the same block
(`ema_decay`, 0 for none) and is read by `jgen.train` (`ema_decay(config.optim)`).
"""

from __future__ import annotations

from typing import Any

import ml_collections
import optax

__all__ = ["OPTIMIZERS", "SCHEDULES", "optim_config", "make_schedule", "make_optimizer", "ema_decay"]

OPTIMIZERS = ("adam", "adamw", "sgd", "lamb", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "exponential")


def optim_config(*, name: str = "adam", learning_rate: float = 1e-3, schedule: str = "constant",
                 warmup_steps: int = 0, final_lr_fraction: float = 0.0, decay_rate: float = 0.1,
                 clip_grad_norm: float = 0.0, weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8, momentum: float = 0.0, ema_decay: float = 0.0) -> ml_collections.ConfigDict:
    """The `optim` config block with an experiment's defaults (every field can be overridden by flags).

    Args:
      name: one of `OPTIMIZERS`.
      learning_rate: peak learning rate (after warm-up).
      schedule: one of `SCHEDULES`: constant; cosine decay to `final_lr_fraction * learning_rate`; linear
        decay to the same; exponential decay by `decay_rate` over the run.
      warmup_steps: linear warm-up from 0 over this many steps (0: none).
      final_lr_fraction: end of the cosine and linear decays, as a fraction of `learning_rate`.
      decay_rate: total decay factor of the exponential schedule over the run.
      clip_grad_norm: clip gradients to this global norm first (0: no clipping).
      weight_decay: decoupled weight decay (AdamW; also accepted by lamb); must be 0 for the others.
      b1, b2, eps: Adam-family moments and stability epsilon (b1 = 0 for the usual EBM/GAN setting).
      momentum: SGD / RMSprop momentum.
      ema_decay: decay of an exponential moving average of the parameters (0: none).
    """
    return ml_collections.ConfigDict(dict(
        name=name, learning_rate=float(learning_rate), schedule=schedule, warmup_steps=int(warmup_steps),
        final_lr_fraction=float(final_lr_fraction), decay_rate=float(decay_rate),
        clip_grad_norm=float(clip_grad_norm), weight_decay=float(weight_decay), b1=float(b1), b2=float(b2),
        eps=float(eps), momentum=float(momentum), ema_decay=float(ema_decay)))


def _check(cfg: Any) -> None:
    def bad(key: str, expected: str) -> ValueError:
        return ValueError(f"config.optim.{key}={cfg[key]!r} is not valid: expected {expected}. "
                          f"Set --config.optim.{key}=... to a valid value.")

    if cfg.name not in OPTIMIZERS:
        raise bad("name", f"one of {', '.join(OPTIMIZERS)}")
    if cfg.schedule not in SCHEDULES:
        raise bad("schedule", f"one of {', '.join(SCHEDULES)}")
    if not cfg.learning_rate > 0:
        raise bad("learning_rate", "a positive number")
    if cfg.warmup_steps < 0:
        raise bad("warmup_steps", "a number of steps >= 0")
    if not 0 <= cfg.final_lr_fraction <= 1:
        raise bad("final_lr_fraction", "a fraction in [0, 1]")
    if not 0 < cfg.decay_rate <= 1:
        raise bad("decay_rate", "a factor in (0, 1]")
    if cfg.clip_grad_norm < 0:
        raise bad("clip_grad_norm", "0 (no clipping) or a positive norm")
    if cfg.weight_decay < 0 or (cfg.weight_decay > 0 and cfg.name not in ("adamw", "lamb")):
        raise bad("weight_decay", "0, or a positive value with name=adamw or lamb")
    if not 0 <= cfg.ema_decay < 1:
        raise bad("ema_decay", "0 (no EMA) or a decay in (0, 1)")


def make_schedule(cfg: Any, num_steps: int) -> optax.Schedule:
    """The learning-rate schedule of an `optim` block over a run of `num_steps` optimizer steps."""
    _check(cfg)
    peak, warmup = cfg.learning_rate, min(int(cfg.warmup_steps), max(int(num_steps) - 1, 0))
    decay_steps = max(int(num_steps) - warmup, 1)
    if cfg.schedule == "constant":
        main = optax.constant_schedule(peak)
    elif cfg.schedule == "cosine":
        main = optax.cosine_decay_schedule(peak, decay_steps, alpha=cfg.final_lr_fraction)
    elif cfg.schedule == "linear":
        main = optax.linear_schedule(peak, peak * cfg.final_lr_fraction, decay_steps)
    else:
        main = optax.exponential_decay(peak, decay_steps, cfg.decay_rate)
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def make_optimizer(cfg: Any, num_steps: int) -> optax.GradientTransformation:
    """The optax transformation of an `optim` block (see `optim_config`) for a run of `num_steps` steps."""
    lr = make_schedule(cfg, num_steps)
    if cfg.name == "adam":
        opt = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "adamw":
        opt = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    elif cfg.name == "lamb":
        opt = optax.lamb(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    elif cfg.name == "rmsprop":
        opt = optax.rmsprop(lr, eps=cfg.eps, momentum=cfg.momentum or None)
    else:
        opt = optax.sgd(lr, momentum=cfg.momentum or None)
    if cfg.clip_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.clip_grad_norm), opt)
    return opt


def ema_decay(cfg: Any) -> float | None:
    """The block's EMA decay, or None when no EMA is tracked (`ema_decay` = 0)."""
    _check(cfg)
    return float(cfg.ema_decay) or None
