"""Conditional probability tables for 5x5 binary letters: a fully general autoregressive model fitted by counting.

The 26 letter classes of Binary Alphadigits (39 glyphs each, 20x16) are reduced to 5x5 binary images
(`jgen.data.preprocess.letters_5x5`) and split per letter into train/test. A conditional probability table
p(x_k = 1 | x_1..x_{k-1}) for each of the 25 pixels (row-major), 2^25 - 1 entries in all, is fitted by counting
with Laplace (add-one) smoothing; unseen contexts get 1/2, so held-out letters, which quickly reach contexts no
training letter had, keep a finite likelihood. Reported: the exact negative log-likelihood of train and test
letters (nats and bits per image) next to an independent-pixel model and the uniform 25 log 2, how often test
pixels hit unseen contexts, a smoothing sweep, 100 samples as a 10x10 collage, and the sampling throughput of
the batched JAX sampler (a lax.scan over the 25 pixels gathering from the flat table). The split is saved in
artifacts/split.npz (and reproduced by `load_letter_split`) so the LSTM experiment compares on the same letters.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import data, experiment, viz
from jgen.autoregressive import cpt
from jgen.data import preprocess

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.split_seed = 0
    c.test_fraction = 0.2  # per letter: 8 of 39 glyphs held out
    c.threshold = 0.5  # ink fraction for a 5x5 pixel to be on
    c.alpha = 1.0  # Laplace pseudo-count
    c.alpha_sweep = (0.01, 0.1, 0.3, 1.0, 3.0)
    c.alpha_low = 0.01  # a second sample collage with little smoothing (close to the plain MLE)
    c.num_samples = 100
    c.throughput_batch = 100_000
    c.throughput_repeats = 20 if preset == "full" else 5
    return c


def split_letters(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: ``round(test_fraction * count)`` glyphs of each letter go to the test set.

    Returns:
      ``(train_idx, test_idx)`` sorted int64 index arrays into ``labels``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def load_letter_split(*, test_fraction: float = 0.2, split_seed: int = 0, threshold: float = 0.5) -> dict:
    """The 5x5 letters and this experiment's train/test split (for models compared against the CPT).

    Returns:
      dict with ``train``/``test`` uint8 ``[N, 5, 5]``, ``train_labels``/``test_labels`` (0..25 for A..Z) and
      ``train_idx``/``test_idx`` (indices into the 1,014 letters of ``letters_5x5``).
    """
    raw = data.load("binary_alphadigits")
    letters, labels = preprocess.letters_5x5(raw["image"], raw["label"], threshold=threshold)
    train_idx, test_idx = split_letters(labels, test_fraction, split_seed)
    return {"train": letters[train_idx], "test": letters[test_idx], "train_labels": labels[train_idx],
            "test_labels": labels[test_idx], "train_idx": train_idx, "test_idx": test_idx}


def _independent_nll(train: np.ndarray, test: np.ndarray, alpha: float) -> float:
    """Mean NLL (nats) of ``test`` under independent Bernoulli pixels fitted to ``train`` (add-alpha)."""
    p = (train.reshape(len(train), -1).sum(0) + alpha) / (len(train) + 2 * alpha)
    t = test.reshape(len(test), -1)
    return float(-(t * np.log(p) + (1 - t) * np.log1p(-p)).sum(1).mean())


def _sampling_throughput(probs: jax.Array, key: jax.Array, batch: int, repeats: int) -> float:
    """Images per second of `cpt.sample` (compiled, timed over `repeats` calls of `batch` samples)."""
    cpt.sample(key, probs, batch).block_until_ready()  # compile
    keys = jax.random.split(key, repeats)
    start = time.perf_counter()
    for k in keys:
        out = cpt.sample(k, probs, batch)
    out.block_until_ready()
    return batch * repeats / (time.perf_counter() - start)


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    split = load_letter_split(test_fraction=config.test_fraction, split_seed=config.split_seed,
                              threshold=config.threshold)
    train, test = split["train"], split["test"]
    n = train.shape[1] * train.shape[2]

    probs_np = cpt.fit_counts(train, alpha=config.alpha)
    probs = jnp.asarray(probs_np)
    train_lp = np.asarray(cpt.log_prob(probs, train), np.float64)
    test_lp = np.asarray(cpt.log_prob(probs, test), np.float64)

    # How far into each held-out letter the CPT still has training data for the context.
    visited = np.zeros(probs_np.size, bool)
    visited[np.asarray(cpt.context_nodes(train)).ravel()] = True
    test_seen = visited[np.asarray(cpt.context_nodes(test))]  # [num_test, 25]
    train_codes = {bytes(r) for r in train.reshape(len(train), -1)}
    test_in_train = np.mean([bytes(r) in train_codes for r in test.reshape(len(test), -1)])

    key_sample, key_bench = jax.random.split(jax.random.key(config.seed))
    samples = np.asarray(cpt.sample(key_sample, probs, config.num_samples)).reshape(-1, 5, 5)
    sample_in_train = np.mean([bytes(r) in train_codes for r in samples.reshape(len(samples), -1)])
    grid = dict(nrow=10, cmap="gray_r", separator_color="0.6", width=5.0)  # ink black, tiles outlined
    viz.image_grid(samples, title=f"CPT samples, alpha={config.alpha:g} (Laplace)",
                   path=wd.figure_path("samples"), **grid)
    probs_low = jnp.asarray(cpt.fit_counts(train, alpha=config.alpha_low))
    samples_low = np.asarray(cpt.sample(key_sample, probs_low, config.num_samples)).reshape(-1, 5, 5)
    low_in_train = np.mean([bytes(r) in train_codes for r in samples_low.reshape(len(samples_low), -1)])
    viz.image_grid(samples_low, title=f"CPT samples, alpha={config.alpha_low:g} (memorises)",
                   path=wd.figure_path("samples_alpha_low"), **grid)
    order = np.argsort(split["train_labels"], kind="stable")
    shown = order[np.linspace(0, len(order) - 1, 100).astype(int)]
    viz.image_grid(train[shown], title="training letters (5x5, binarised)", path=wd.figure_path("train_letters"),
                   **grid)

    images_per_s = _sampling_throughput(probs, key_bench, config.throughput_batch, config.throughput_repeats)

    sweep = []
    for alpha in config.alpha_sweep:
        p = jnp.asarray(cpt.fit_counts(train, alpha=alpha))
        sweep.append({"alpha": alpha, "train_nll_nats": float(-cpt.log_prob(p, train).mean()),
                      "test_nll_nats": float(-cpt.log_prob(p, test).mean()),
                      "test_nll_independent_nats": _independent_nll(train, test, alpha)})
    wd.save_table("alpha_sweep", sweep)
    per_letter = [{"letter": LETTERS[c], "num_test": int((split["test_labels"] == c).sum()),
                   "test_nll_nats": float(-test_lp[split["test_labels"] == c].mean())} for c in range(26)]
    wd.save_table("test_nll_per_letter", per_letter)
    wd.save_arrays("split", train_idx=split["train_idx"], test_idx=split["test_idx"],
                   train_log_prob=train_lp, test_log_prob=test_lp)

    ln2 = np.log(2.0)
    return {
        "train_nll_nats": float(-train_lp.mean()),
        "test_nll_nats": float(-test_lp.mean()),
        "train_nll_bits_per_image": float(-train_lp.mean() / ln2),
        "test_nll_bits_per_image": float(-test_lp.mean() / ln2),
        "test_nll_independent_nats": _independent_nll(train, test, config.alpha),
        "uniform_nll_nats": n * ln2,
        "best_sweep_test_nll_nats": min(r["test_nll_nats"] for r in sweep),
        "best_sweep_alpha": min(sweep, key=lambda r: r["test_nll_nats"])["alpha"],
        "test_unseen_context_fraction": float(1.0 - test_seen.mean()),
        "test_first_unseen_pixel_mean": float(np.where(test_seen.all(1), n, np.argmin(test_seen, 1)).mean()),
        "test_in_train_fraction": float(test_in_train),
        "samples_in_train_fraction": float(sample_in_train),
        "samples_in_train_fraction_alpha_low": float(low_in_train),
        "sampling_images_per_s": float(images_per_s),
        "num_train": int(len(train)),
        "num_test": int(len(test)),
        "table_entries": int(probs_np.size),
        "contexts_visited": int(visited.sum()),
    }


if __name__ == "__main__":
    experiment.main(get_config, run)
