"""One likelihood table across model families: test bits/dim on 8-bit 7x7 MNIST.

Every model here was evaluated on the same images: MNIST test split (10,000 digits), 4x4 area means rounded
to 8 bits, with the train/val/test split of `jgen.data.mnist7`, in bits per dimension on the 256-level scale. The table
collects the numbers from the metrics of the experiments in `REQUIRES` (read with `Workdir.sibling`; a
model whose experiment has not run yet is listed as not yet available) and says what each number is:

* per-pixel independent categorical: exact discrete NLL (computed here from the data, and compared with
  `flows_mnist7`'s own value as a check that both used the same data);
* RealNVP and MAF (`flows_mnist7`): continuous densities of uniformly dequantised pixels, an upper bound on
  the discrete NLL in expectation over the noise (Theis et al., 2016);
* WaveNet and gated PixelCNN (`ar_mnist7`): exact discrete NLL (autoregressive categoricals);
* VAE (`vae_mnist`, its discretised-logistic model on the same 7x7 images): importance-weighted bound, an
  upper bound;
* DDPM (variational bound): an upper bound, listed as "not yet available" until an experiment writes
  `test_bpd_ddpm`.

Lower is better; a bound can only overstate a model's true NLL.
"""

from __future__ import annotations

import ml_collections

from jgen import experiment, viz
from jgen.data.mnist7 import mnist7_splits
from jgen.metrics.likelihood import independent_pixel_bits_per_dim

EXACT = "exact discrete NLL"
DEQUANT_BOUND = "upper bound: continuous density of uniformly dequantised pixels (Jensen), one noise draw"

REQUIRES = ("flows_mnist7", "ar_mnist7", "vae_mnist")

# (metrics key, model, family, what the number is, experiment expected to write it)
ROWS = (
    ("test_bpd_independent", "per-pixel independent categorical", "baseline", EXACT, "flows_mnist7"),
    ("test_bpd_realnvp", "RealNVP", "normalizing flow", DEQUANT_BOUND, "flows_mnist7"),
    ("test_bpd_maf", "MAF", "normalizing flow", DEQUANT_BOUND, "flows_mnist7"),
    ("test_bpd_wavenet", "WaveNet", "autoregressive", EXACT, "ar_mnist7"),
    ("test_bpd_pixelcnn", "gated PixelCNN", "autoregressive", EXACT, "ar_mnist7"),
    ("test_bpd_vae", "VAE", "latent variable",
     "upper bound: importance-weighted ELBO (IWAE), discrete likelihood", "vae_mnist"),
    ("test_bpd_ddpm", "DDPM", "diffusion", "upper bound: variational bound (sum of KL terms + decoder)", None),
)
NUM_TEST = 10000


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # nothing random; kept for the experiment contract
    c.smoothing = 1.0  # Laplace pseudo-count of the independent baseline
    return c


def _read_metrics(wd: experiment.Workdir) -> dict[str, dict]:
    """{experiment name: metrics} for every experiment in REQUIRES that has finished."""
    siblings = [wd.sibling(name) for name in REQUIRES]
    return {s.name: s.metrics() for s in siblings if s.done}


def _bar_chart(rows: list[dict], wd: experiment.Workdir) -> None:
    shown = [r for r in rows if isinstance(r["test_bits_per_dim"], float)]
    missing = [r["model"] for r in rows if r not in shown]
    exact = [r["kind"] == EXACT for r in shown]
    viz.bar_chart([r["model"] for r in shown], [r["test_bits_per_dim"] for r in shown], horizontal=True,
                  annotate=True, colors=["tab:blue" if e else "tab:orange" for e in exact],
                  hatches=[None if e else "//" for e in exact],
                  title="Likelihood across families (blue: exact, orange hatched: upper bound)",
                  xlabel="test bits/dim (8-bit 7x7 MNIST, 10,000 test images; lower is better)"
                  + ("\nnot yet available: " + ", ".join(missing) if missing else ""),
                  path=wd.figure_path("test_bpd"))


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    splits = mnist7_splits()  # the baseline fits the 55,000 training images, never the 5,000 validation ones
    train, test = splits["train"], splits["test"]
    own_independent = independent_pixel_bits_per_dim(train, test, smoothing=config.smoothing)
    sources = _read_metrics(wd)

    metrics: dict[str, float] = {"test_bpd_independent_computed": own_independent, "num_test": len(test)}
    rows = []
    for key, model, family, kind, expected in ROWS:
        # The expected experiment first, then any other required one that reports the key.
        names = ([expected] if expected in sources else []) + [n for n in sources if n != expected]
        source = next((n for n in names if sources[n].get(key) is not None), None)
        value = float(sources[source][key]) if source else None
        if key == "test_bpd_independent" and source is None:
            value, source = own_independent, "computed here"
        row = {"model": model, "family": family,
               "test_bits_per_dim": value if value is not None else "not yet available",
               "kind": kind, "source": source or (expected or "not yet run")}
        if source and source in sources:
            src = sources[source]
            row["source_preset"] = src.get("preset", "?")
            num_test = src.get("num_test")
            row["test_images"] = int(num_test) if num_test is not None else "not reported"
            if num_test is not None and int(num_test) != NUM_TEST:
                row["warning"] = f"evaluated on {int(num_test)} test images, not {NUM_TEST}"
        rows.append(row)
        if value is not None:
            metrics[key] = value
    for name in REQUIRES:
        metrics[f"found_{name}"] = float(name in sources)
    metrics["num_models_available"] = float(sum(isinstance(r["test_bits_per_dim"], float) for r in rows))
    flows_indep = sources.get("flows_mnist7", {}).get("test_bpd_independent")
    if flows_indep is not None:
        # Same data and split give the same exact baseline (up to the training images used for counting).
        metrics["independent_abs_diff_vs_flows"] = abs(float(flows_indep) - own_independent)

    wd.save_table("test_bits_per_dim", rows)
    _bar_chart(rows, wd)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
