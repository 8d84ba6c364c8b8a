"""Conditional probability tables for 5x5 binary letters: a fully general autoregressive model fitted by counting.

The 26 letter classes of Binary Alphadigits (39 glyphs each, 20x16) are reduced to 5x5 binary images and split
per letter into train/test (`jgen.data.letters.letter_splits`, the split `lstm_letters` uses too). A conditional
probability table p(x_k = 1 | x_1..x_{k-1}) for each of the 25 pixels (row-major), 2^25 - 1 entries in all, is
fitted by counting with Laplace (add-one) smoothing; unseen contexts get 1/2, so held-out letters, which quickly
reach contexts no training letter had, keep a finite likelihood. Reported: the exact negative log-likelihood of
train and test letters (nats and bits per image) next to an independent-pixel model and the uniform 25 log 2,
how often test pixels hit unseen contexts, a smoothing sweep, 100 samples as a 10x10 collage, and the sampling
throughput of the batched JAX sampler (a lax.scan over the 25 pixels gathering from the flat table). The split's
indices are saved in artifacts/split.npz, so a model compared against this one can check it used the same letters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, viz
from jgen.autoregressive import cpt
from jgen.data.letters import LETTERS, letter_splits
from jgen.metrics.likelihood import LN2, nats_to_bits


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.split_seed = 0
    c.test_fraction = 0.2  # per letter: 8 of 39 glyphs held out
    c.threshold = 0.5  # ink fraction for a 5x5 pixel to be on
    c.smoothing = 1.0  # Laplace pseudo-count
    c.smoothing_sweep = (0.01, 0.1, 0.3, 1.0, 3.0)
    c.smoothing_low = 0.01  # a second sample collage with little smoothing (close to the plain MLE)
    c.num_samples = 100
    c.throughput_batch = 100_000
    c.throughput_repeats = 20 if preset == "full" else 5
    return c


def _independent_nll(train: np.ndarray, test: np.ndarray, smoothing: float) -> float:
    """Mean NLL (nats) of ``test`` under independent Bernoulli pixels fitted to ``train`` (add-``smoothing``)."""
    p = (train.reshape(len(train), -1).sum(0) + smoothing) / (len(train) + 2 * smoothing)
    t = test.reshape(len(test), -1)
    return float(-(t * np.log(p) + (1 - t) * np.log1p(-p)).sum(1).mean())


def _sampling_throughput(probs: jax.Array, key: jax.Array, batch: int, repeats: int) -> float:
    """Images per second of `cpt.sample` drawing `batch` samples per call (compiled, median of `repeats`)."""
    return batch / experiment.time_compiled(lambda p, k: cpt.sample(p, k, batch), probs, key, repeats=repeats)


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    split = letter_splits(test_fraction=config.test_fraction, split_seed=config.split_seed,
                          threshold=config.threshold)
    train, test = split["train"], split["test"]
    n = train.shape[1] * train.shape[2]

    probs_np = cpt.fit_counts(train, smoothing=config.smoothing)
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
    samples = np.asarray(cpt.sample(probs, key_sample, config.num_samples)).reshape(-1, 5, 5)
    sample_in_train = np.mean([bytes(r) in train_codes for r in samples.reshape(len(samples), -1)])
    grid = dict(nrow=10, cmap="gray_r", separator_color="0.6", width=5.0)  # ink black, tiles outlined
    viz.image_grid(samples, title=f"CPT samples, smoothing={config.smoothing:g} (Laplace)",
                   path=wd.figure_path("samples"), **grid)
    probs_low = jnp.asarray(cpt.fit_counts(train, smoothing=config.smoothing_low))
    samples_low = np.asarray(cpt.sample(probs_low, key_sample, config.num_samples)).reshape(-1, 5, 5)
    low_in_train = np.mean([bytes(r) in train_codes for r in samples_low.reshape(len(samples_low), -1)])
    viz.image_grid(samples_low, title=f"CPT samples, smoothing={config.smoothing_low:g} (memorises)",
                   path=wd.figure_path("samples_smoothing_low"), **grid)
    order = np.argsort(split["train_labels"], kind="stable")
    shown = order[np.linspace(0, len(order) - 1, 100).astype(int)]
    viz.image_grid(train[shown], title="training letters (5x5, binarised)", path=wd.figure_path("train_letters"),
                   **grid)

    images_per_s = _sampling_throughput(probs, key_bench, config.throughput_batch, config.throughput_repeats)

    sweep = []
    for smoothing in config.smoothing_sweep:
        p = jnp.asarray(cpt.fit_counts(train, smoothing=smoothing))
        sweep.append({"smoothing": smoothing, "train_nll_nats": float(-cpt.log_prob(p, train).mean()),
                      "test_nll_nats": float(-cpt.log_prob(p, test).mean()),
                      "test_nll_independent_nats": _independent_nll(train, test, smoothing)})
    wd.save_table("smoothing_sweep", sweep)
    per_letter = [{"letter": LETTERS[c], "num_test": int((split["test_labels"] == c).sum()),
                   "test_nll_nats": float(-test_lp[split["test_labels"] == c].mean())} for c in range(26)]
    wd.save_table("test_nll_per_letter", per_letter)
    wd.save_arrays("split", train_idx=split["train_idx"], test_idx=split["test_idx"],
                   train_log_prob=train_lp, test_log_prob=test_lp)

    return {
        "train_nll_nats": float(-train_lp.mean()),
        "test_nll_nats": float(-test_lp.mean()),
        "train_nll_bits_per_image": float(nats_to_bits(-train_lp.mean())),
        "test_nll_bits_per_image": float(nats_to_bits(-test_lp.mean())),
        "test_nll_independent_nats": _independent_nll(train, test, config.smoothing),
        "uniform_nll_nats": n * LN2,
        "best_sweep_test_nll_nats": min(r["test_nll_nats"] for r in sweep),
        "best_sweep_smoothing": min(sweep, key=lambda r: r["test_nll_nats"])["smoothing"],
        "test_unseen_context_fraction": float(1.0 - test_seen.mean()),
        "test_first_unseen_pixel_mean": float(np.where(test_seen.all(1), n, np.argmin(test_seen, 1)).mean()),
        "test_in_train_fraction": float(test_in_train),
        "samples_in_train_fraction": float(sample_in_train),
        "samples_in_train_fraction_smoothing_low": float(low_in_train),
        "sampling_images_per_s": float(images_per_s),
        "num_train": int(len(train)),
        "num_test": int(len(test)),
        "table_entries": int(probs_np.size),
        "contexts_visited": int(visited.sum()),
    }


if __name__ == "__main__":
    experiment.main(get_config, run)
