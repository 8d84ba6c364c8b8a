"""One likelihood and sample-quality table across model families on 8-bit 7x7 MNIST.

Every model here was evaluated on the same images: MNIST test split (10,000 digits), 4x4 area means rounded
to 8 bits, with the train/val/test split of `jgen.data.mnist7`, in bits per dimension on the 256-level scale. The table
collects the numbers from the metrics of the experiments in `REQUIRES` (read with `Workdir.sibling`; a
model whose experiment has not run yet is listed as not yet available, its number cells left empty) and
says what each number is:

* per-pixel independent categorical: exact discrete NLL (computed here from the data, and compared with
  `flows_mnist7`'s own value as a check that both used the same data);
* RealNVP, MAF and the rational-quadratic spline flow (`flows_mnist7`): continuous densities of uniformly
  dequantised pixels, an upper bound on the discrete NLL in expectation over the noise (Theis et al., 2016);
* WaveNet and gated PixelCNN (`ar_mnist7`): exact discrete NLL (autoregressive categoricals);
* VAE (`vae_mnist`, its discretised-logistic model on the same 7x7 images): importance-weighted bound, an
  upper bound;
* DDPM (`ddpm_mnist`): the variational bound (sum of the KL terms and the discrete decoder), an upper bound.

Lower is better; a bound can only overstate a model's true NLL.

Sample quality, beside the bits/dim: each model's samples in the feature space of the in-project 7x7
MNIST classifier (`jgen.metrics.classifier.get_classifier("mnist7")`, penultimate layer), through
`jgen.metrics.sample_quality.evaluate_samples`: classifier Fréchet distance to the training features
(`fd_classifier`), improved precision and recall (k-NN manifolds), and class coverage (normalised entropy of
the predicted labels), each beside its real-data floor (the same metric for as many real test images). The
metrics depend on the sample count, so every model is scored on the first `num_samples` of its samples and
the floor is computed at that count; a model that saved fewer is scored on what it saved, with its own
floor and a warning in its row.

Sample convention (the experiments write, this table reads): every experiment that trains an MNIST 7x7
model saves its samples with `wd.save_arrays("samples_mnist7", ...)` as uint8 `[n, 7, 7]` on 0..255, one
array per model: `images_<model>` where one experiment trains several (`flows_mnist7`: `images_realnvp`,
`images_maf`, `images_spline`; `ar_mnist7`: `images_wavenet`, `images_pixelcnn`), plain `images` where it
trains one (`vae_mnist`, `ddpm_mnist`). The metrics are computed here once, from those arrays, so every
model is scored at one sample count, with one classifier and one floor, and no experiment repeats the
plumbing.

Goal (the full presets'): every model's samples with class coverage >= `goal.min_class_coverage` (0.9) and
a classifier FD within `goal.max_fd_ratio` (3x) of the floor. `checks.json` holds one check per model with
samples (`Workdir.write_checks`), so the report marks a model that misses it; the quick presets train
briefly and are expected to miss it.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from jgen import experiment, viz
from jgen.data.mnist7 import mnist7_splits
from jgen.metrics.likelihood import independent_pixel_bits_per_dim

EXACT = "exact discrete NLL"
DEQUANT_BOUND = "upper bound: continuous density of uniformly dequantised pixels (Jensen), one noise draw"

REQUIRES = ("flows_mnist7", "ar_mnist7", "vae_mnist", "ddpm_mnist")

SAMPLES = "samples_mnist7"  # the artifact every MNIST 7x7 experiment saves its samples under

# (model key: metrics `test_bpd_<key>`, model, family, what the number is, experiment that writes it,
#  array of its samples in the experiment's `samples_mnist7` artifact or None)
ROWS = (
    ("independent", "per-pixel independent categorical", "baseline", EXACT, "flows_mnist7", None),
    ("realnvp", "RealNVP", "normalizing flow", DEQUANT_BOUND, "flows_mnist7", "images_realnvp"),
    ("maf", "MAF", "normalizing flow", DEQUANT_BOUND, "flows_mnist7", "images_maf"),
    ("spline", "rational-quadratic spline flow", "normalizing flow", DEQUANT_BOUND, "flows_mnist7",
     "images_spline"),
    ("wavenet", "WaveNet", "autoregressive", EXACT, "ar_mnist7", "images_wavenet"),
    ("pixelcnn", "gated PixelCNN", "autoregressive", EXACT, "ar_mnist7", "images_pixelcnn"),
    ("vae", "VAE", "latent variable", "upper bound: importance-weighted ELBO (IWAE), discrete likelihood",
     "vae_mnist", "images"),
    ("ddpm", "DDPM", "diffusion", "upper bound: variational bound (sum of KL terms + discrete decoder)",
     "ddpm_mnist", "images"),
)
NUM_TEST = 10000
# The sample metrics of the table, as `evaluate_samples` names them (each with `<key>_floor`).
QUALITY_KEYS = ("fd_classifier", "precision", "recall", "class_coverage")


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # picks the floor's test images and the precision/recall reference subset
    c.smoothing = 1.0  # Laplace pseudo-count of the independent baseline
    c.num_samples = 1000 if preset == "quick" else 10000  # samples scored per model (as the experiments save)
    c.goal = ml_collections.ConfigDict()
    c.goal.min_class_coverage = 0.9
    c.goal.max_fd_ratio = 3.0  # fd_classifier <= ratio * fd_classifier_floor
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    if not 20 <= config.num_samples <= NUM_TEST:
        raise experiment.ConfigError(f"config.num_samples={config.num_samples} must lie in 20..{NUM_TEST} (the "
                                     "floor needs as many real test images); e.g. --config.num_samples=1000")


def _classifier():
    from jgen.metrics import classifier

    return classifier.get_classifier("mnist7")


def _bar_chart(rows: list[dict], wd: experiment.Workdir) -> None:
    shown = [r for r in rows if r["test_bits_per_dim"] is not None]
    missing = [r["model"] for r in rows if r not in shown]
    exact = [r["kind"] == EXACT for r in shown]
    viz.bar_chart([r["model"] for r in shown], [r["test_bits_per_dim"] for r in shown], horizontal=True,
                  annotate=True, colors=["tab:blue" if e else "tab:orange" for e in exact],
                  hatches=[None if e else "//" for e in exact],
                  title="Likelihood across families (blue: exact, orange hatched: upper bound)",
                  xlabel="test bits/dim (8-bit 7x7 MNIST, 10,000 test images; lower is better)"
                  + ("\nnot yet available: " + ", ".join(missing) if missing else ""),
                  path=wd.figure_path("test_bpd"))


def _sample_rows(samples: dict[str, np.ndarray], wd: experiment.Workdir) -> None:
    """The first 10 samples of every model, one labelled row each, under 10 test images."""
    rows = {"test images": mnist7_splits()["test"][:10], **{m: x[:10] for m, x in samples.items()}}
    viz.collage([x.reshape(10, 7, 7).astype(np.float32) for x in rows.values()], list(rows),
                title="First 10 samples of each model (8-bit 7x7 MNIST)", path=wd.figure_path("samples"),
                vmin=0.0, vmax=255.0)


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    splits = mnist7_splits()  # the baseline fits the 55,000 training images, never the 5,000 validation ones
    train, test = splits["train"], splits["test"]
    own_independent = independent_pixel_bits_per_dim(train, test, smoothing=config.smoothing)
    siblings = {s.name: s for s in (wd.sibling(name) for name in REQUIRES) if s.done}
    sources = {name: s.metrics() for name, s in siblings.items()}
    artifacts = {name: s.load_arrays(SAMPLES) or {} for name, s in siblings.items()}

    metrics: dict[str, float] = {"test_bpd_independent_computed": own_independent, "num_test": len(test)}
    rows, samples, clf = [], {}, None
    for key, model, family, kind, expected, array in ROWS:
        bpd_key = f"test_bpd_{key}"
        # The expected experiment first, then any other required one that reports the key.
        names = ([expected] if expected in sources else []) + [n for n in sources if n != expected]
        source = next((n for n in names if sources[n].get(bpd_key) is not None), None)
        value = float(sources[source][bpd_key]) if source else None
        if key == "independent" and source is None:
            value, source = own_independent, "computed here"
        status = "ok" if value is not None else ("not yet available" if expected not in sources else
                                                 f"{expected} reports no {bpd_key}")
        row = {"model": model, "family": family, "test_bits_per_dim": value}
        warnings = []
        if source in sources:
            num_test = sources[source].get("num_test")
            row["test_images"] = int(num_test) if num_test is not None else None
            if num_test is not None and int(num_test) != NUM_TEST:
                warnings.append(f"evaluated on {int(num_test)} test images, not {NUM_TEST}")
        images = artifacts.get(expected, {}).get(array) if array else None
        quality = {}
        if images is not None:
            images = np.asarray(images)
            n = min(config.num_samples, len(images))
            if n < 20:
                warnings.append(f"only {len(images)} samples saved; at least 20 are needed for the metrics")
            else:
                if clf is None:
                    clf = _classifier()
                from jgen.metrics import sample_quality

                scores = sample_quality.evaluate_samples(images, "mnist7", num_samples=n, seed=config.seed, clf=clf,
                                                         memorisation=False, keys=QUALITY_KEYS, suffix=f"_{key}")
                quality = {q: scores[f"{q}_{key}"] for q in QUALITY_KEYS}
                quality.update({f"{q}_floor": scores[f"{q}_floor"] for q in QUALITY_KEYS})
                quality["quality_samples"] = n
                samples[model] = images
                if n < config.num_samples:
                    warnings.append(f"scored on the {n} samples saved, not {config.num_samples} (its own floor)")
        elif array and expected in sources:
            warnings.append(f"{expected} saved no {array!r} in artifacts/{SAMPLES}.npz (run it again)")
        for q in QUALITY_KEYS:
            row[q] = quality.get(q)
            row[f"{q}_floor"] = quality.get(f"{q}_floor")
        row["quality_samples"] = quality.get("quality_samples")
        row.update({"kind": kind, "status": status, "source": source or expected,
                    "source_preset": sources[source].get("preset") if source in sources else None,
                    "warning": "; ".join(warnings)})
        rows.append(row)
        if value is not None:
            metrics[bpd_key] = value
        if quality:
            metrics.update({f"{q}_{key}": quality[q] for q in QUALITY_KEYS})
            metrics[f"num_samples_{key}"] = float(quality["quality_samples"])
            if quality["quality_samples"] == config.num_samples:  # one floor per sample count: the shared one
                metrics.update({f"{q}_floor": quality[f"{q}_floor"] for q in QUALITY_KEYS})
                metrics["num_samples"] = float(config.num_samples)  # the floor's sample count
    for name in REQUIRES:
        metrics[f"found_{name}"] = float(name in sources)
    metrics["num_models_available"] = float(sum(r["test_bits_per_dim"] is not None for r in rows))
    metrics["num_models_with_samples"] = float(len(samples))
    flows_indep = sources.get("flows_mnist7", {}).get("test_bpd_independent")
    if flows_indep is not None:
        # Same data and split give the same exact baseline (up to the training images used for counting).
        metrics["independent_abs_diff_vs_flows"] = abs(float(flows_indep) - own_independent)

    goal = config.goal
    checks = {}
    for (key, *_), r in zip(ROWS, rows):
        if r["fd_classifier"] is None:
            continue
        ratio = r["fd_classifier"] / max(r["fd_classifier_floor"], 1e-12)
        passed = r["class_coverage"] >= goal.min_class_coverage and ratio <= goal.max_fd_ratio
        checks[f"{r['model']} samples reach the goal"] = (
            passed, f"class coverage {r['class_coverage']:.3f} (goal >= {goal.min_class_coverage:g}, floor "
                    f"{r['class_coverage_floor']:.3f}); fd_classifier {r['fd_classifier']:.2f} = {ratio:.1f}x the "
                    f"floor {r['fd_classifier_floor']:.2f} (goal <= {goal.max_fd_ratio:g}x); {r['quality_samples']} "
                    f"samples, {r['source_preset']} preset")
        metrics[f"fd_ratio_{key}"] = ratio
    metrics["num_models_reaching_goal"] = float(sum(passed for passed, _ in checks.values()))
    wd.write_checks(checks)

    wd.save_table("likelihood_and_samples", rows)
    _bar_chart(rows, wd)
    if samples:
        _sample_rows(samples, wd)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
