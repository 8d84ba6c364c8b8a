"""An LSTM trained on 5x5 letters: exact held-out likelihood next to the conditional probability table.

The 5x5 binary letters of `cpt_letters` (Binary Alphadigits A-Z) are read in raster order by an LSTM
(`jgen.autoregressive.lstm`) that predicts each pixel from the previous ones, trained by teacher forcing on the
exact log-likelihood. The train/test split is the CPT experiment's (`jgen.data.letters.letter_splits`: per
letter, a fixed permutation holds out 20%), checked against the CPT run's saved indices when that run is
present. A tenth of the training letters (fixed seed) is held back for early stopping; the test letters are
used only for the reported numbers. Reported: loss curves, 100 samples as a 10x10 collage, train/test NLL in
nats per image and, when `cpt_letters` has run in the same suite directory, its test NLL and the difference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, viz
from jgen.autoregressive import lstm
from jgen.data import BatchIterator
from jgen.data.letters import letter_splits
from jgen.metrics.likelihood import LN2, nats_to_bits

# Compared against when it has run (the suite runs it first); lstm_letters also runs on its own.
REQUIRES = ("cpt_letters",)


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.split_seed = 0  # must match cpt_letters
    c.test_fraction = 0.2  # must match cpt_letters
    c.threshold = 0.5  # must match cpt_letters
    c.val_fraction = 0.1  # of the training letters, for early stopping
    c.hidden_size = 64 if preset == "quick" else 128
    c.num_layers = 1 if preset == "quick" else 2
    c.batch_size = 64
    # Decoupled weight decay 0.3: the 725 training letters overfit quickly.
    c.optim = optim.optim_config(name="adamw", learning_rate=1e-3, weight_decay=0.3)
    c.num_steps = 1500 if preset == "quick" else 4000
    c.eval_every = 50
    c.num_samples = 100
    return c


def _nll(model, params, x) -> float:
    return float(-lstm.log_prob(model, params, jnp.asarray(x)).mean())


def _cpt_reference(wd: experiment.Workdir, test_idx: np.ndarray) -> dict:
    """The CPT run's test NLL and whether it used these test letters (empty when it has not run)."""
    cpt = wd.sibling("cpt_letters")
    if not cpt.done:
        return {}
    out = {}
    if cpt.metrics().get("test_nll_nats") is not None:
        out["cpt_test_nll_nats"] = float(cpt.metrics()["test_nll_nats"])
    split = cpt.load_arrays("split")
    if split is not None:
        out["same_split_as_cpt"] = float(np.array_equal(split["test_idx"], test_idx))
    return out


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    split = letter_splits(test_fraction=config.test_fraction, split_seed=config.split_seed,
                          threshold=config.threshold)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(split["train"]))
    num_val = int(round(config.val_fraction * len(order)))
    fit_x = split["train"][np.sort(order[num_val:])].astype(np.int32)
    val_x = split["train"][np.sort(order[:num_val])].astype(np.int32)
    test_x = split["test"].astype(np.int32)
    num_pixels = fit_x.shape[1] * fit_x.shape[2]

    model = lstm.PixelLSTM(hidden_size=config.hidden_size, num_layers=config.num_layers)
    key_init, key_train, key_sample = jax.random.split(jax.random.key(config.seed), 3)
    params = model.init(key_init, jnp.asarray(fit_x[:1]))

    def loss_fn(params, batch, rng):
        nll = -lstm.log_prob(model, params, batch["x"]).mean()
        return nll, {}

    val_jnp = jnp.asarray(val_x)
    eval_fn = lambda p: {"val_nll_nats": _nll(model, p, val_jnp)}
    tx = optim.make_optimizer(config.optim, config.num_steps)
    result = train.fit_loss(loss_fn, params, tx, BatchIterator({"x": fit_x}, config.batch_size, seed=config.seed),
                            config.num_steps, key=key_train, wd=wd, name="lstm", log_every=config.eval_every,
                            eval_fn=eval_fn, eval_every=config.eval_every, keep_best=True)
    params = result.params
    best_step = int(result.state.best_step)

    viz.loss_curves(
        {"train NLL (minibatch)": experiment.curve(result, "loss"),
         "validation NLL": experiment.curve(result, "val_nll_nats")},
        mark_best={"validation NLL": best_step}, title="LSTM on 5x5 letters",
        ylabel="NLL (nats per image)", path=wd.figure_path("loss"))

    samples = np.asarray(lstm.sample(model, params, key_sample, config.num_samples, num_pixels))
    samples = samples.reshape(-1, *fit_x.shape[1:])
    viz.image_grid(samples, nrow=10, title=f"{config.num_samples} LSTM samples (5x5 letters)",
                   cmap="gray_r", path=wd.figure_path("samples"))  # ink black, as in cpt_letters
    train_codes = {bytes(r) for r in split["train"].reshape(len(split["train"]), -1).astype(np.uint8)}
    in_train = np.mean([bytes(r) in train_codes for r in samples.reshape(len(samples), -1).astype(np.uint8)])

    test_nll = _nll(model, params, jnp.asarray(test_x))
    metrics = {
        "train_nll_nats": _nll(model, params, jnp.asarray(fit_x)),
        "val_nll_nats": _nll(model, params, val_jnp),
        "test_nll_nats": test_nll,
        "test_nll_bits_per_image": nats_to_bits(test_nll),
        "uniform_nll_nats": num_pixels * LN2,
        "best_step": best_step,
        "samples_in_train_fraction": float(in_train),
        "num_fit": len(fit_x), "num_val": len(val_x), "num_test": len(test_x),
    }
    cpt = _cpt_reference(wd, split["test_idx"])
    metrics.update(cpt)
    if "cpt_test_nll_nats" in cpt:
        metrics["lstm_minus_cpt_test_nll_nats"] = test_nll - cpt["cpt_test_nll_nats"]
    rows = [{"model": "LSTM (this run)", "test_nll_nats": test_nll, "test_nll_bits": nats_to_bits(test_nll)}]
    if "cpt_test_nll_nats" in cpt:
        rows.append({"model": "CPT (cpt_letters)", "test_nll_nats": cpt["cpt_test_nll_nats"],
                     "test_nll_bits": nats_to_bits(cpt["cpt_test_nll_nats"])})
    else:
        rows.append({"model": "CPT (cpt_letters)", "test_nll_nats": "not run in this suite directory"})
    rows.append({"model": "uniform", "test_nll_nats": num_pixels * LN2, "test_nll_bits": num_pixels})
    wd.save_table("test_nll", rows)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
