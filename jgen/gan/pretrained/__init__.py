"""StyleGAN2 generators shipped inside the package, so that the GAN pipeline (inversion) runs offline.

    g = pretrained.load("olivetti64")          # Pretrained(config, params, w_avg, meta)
    G = Generator(g.config)
    images = G.apply({"params": g.params}, z, truncation_psi=0.7, w_avg=g.w_avg)
    parts = pretrained.data_splits("olivetti64")   # the exact train / held-out split it was trained on

Each generator is two files in this folder: `<name>.msgpack` (`flax.serialization.to_bytes` of the G_ema
params) and `<name>.json`: `config` (the `stylegan2_config`), `w_avg` (the tracked average w), `dataset`,
`split` (the keyword arguments of `jgen.data.faces.olivetti_splits`: the generator saw only "train"; the
"test" faces are held-out people, the inversion targets), `command` (the training command that made it),
`train_steps`, and `quality`: `fd_classifier` and `fd_classifier_floor` (`evaluate_samples`) at
`num_samples` samples drawn from `jax.random.normal(PRNGKey(sample_seed), (num_samples, z_dim))` with
const noise and truncation_psi 1, metric seed `metric_seed`. `tests/gan/test_pretrained.py` recomputes it.

Shipped: "olivetti64" (Olivetti faces 64 x 64 grey), written by
`python -m experiments.stylegan_train --workdir=DIR --preset=full --config.train_steps=500
--config.export_dir=jgen/gan/pretrained`: an early snapshot (500 of the preset's 3000 steps, all the shared
2-core CPU allowed in this round), undertrained: its json `note` says so and records the classifier FD beside
its floor. Re-running the command with the default train_steps replaces it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen.gan import stylegan2 as sg

__all__ = ["DEFAULT", "Pretrained", "available", "load", "save", "data_splits", "quality_latents"]

DEFAULT = "olivetti64"
_HERE = Path(__file__).resolve().parent


class Pretrained(NamedTuple):
    """A shipped generator: `config` (ConfigDict), `params` (G_ema), `w_avg` [w_dim], `meta` (the json dict)."""

    config: ml_collections.ConfigDict
    params: Any
    w_avg: jax.Array
    meta: dict


def available(folder: str | Path | None = None) -> list[str]:
    """Names of the generators in `folder` (default: the package's)."""
    folder = _HERE if folder is None else Path(folder)
    return sorted(p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.msgpack").is_file())


def load(name: str = DEFAULT, folder: str | Path | None = None) -> Pretrained:
    """Loads generator `name` (see `available()`); raises FileNotFoundError listing what there is."""
    folder = _HERE if folder is None else Path(folder)
    meta_path, weights = folder / f"{name}.json", folder / f"{name}.msgpack"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"no shipped generator {name!r} in {folder} (needs {name}.json and {name}.msgpack); "
                                f"available: {available(folder) or 'none'}")
    meta = json.loads(meta_path.read_text())
    config = sg.stylegan2_config(**meta["config"])
    target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), sg.param_shapes(config))
    params = flax.serialization.from_bytes(target, weights.read_bytes())
    params = jax.tree.map(jnp.asarray, params)
    return Pretrained(config, params, jnp.asarray(meta["w_avg"], jnp.float32), meta)


def save(folder: str | Path, name: str, config: ml_collections.ConfigDict, params: Any, w_avg: Any,
         **meta: Any) -> tuple[Path, Path]:
    """Writes `<name>.msgpack` and `<name>.json` (config, w_avg and every keyword in `meta`) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.msgpack"
    weights.write_bytes(flax.serialization.to_bytes(jax.tree.map(np.asarray, params)))
    record = {"config": config.to_dict(), "w_avg": [float(v) for v in np.asarray(w_avg)], **meta}
    meta_path = folder / f"{name}.json"
    meta_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return weights, meta_path


def data_splits(name: str = DEFAULT, folder: str | Path | None = None, **load_kwargs) -> dict:
    """The {"train", "test"} split the generator was trained on (`olivetti_splits(**meta["split"])`)."""
    from jgen.data import faces

    meta = json.loads(((_HERE if folder is None else Path(folder)) / f"{name}.json").read_text())
    return faces.olivetti_splits(**meta["split"], **load_kwargs)


def quality_latents(meta: dict) -> jax.Array:
    """The latents z [num_samples, z_dim] of a generator's recorded sample quality.

    Drawn with the Threefry key the numbers were recorded with, whatever JAX's default PRNG is.
    """
    q = meta["quality"]
    key = jax.random.key(q["sample_seed"], impl="threefry2x32")
    return jax.random.normal(key, (q["num_samples"], meta["config"]["z_dim"]))
