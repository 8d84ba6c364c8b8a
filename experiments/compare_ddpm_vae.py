"""Comparing DDPM and VAE on MNIST: one table from `ddpm_mnist`'s and `vae_mnist`'s results, and the answers.

Nothing is trained here. The table reads the two experiments' metrics and artifacts (`Workdir.sibling`):

* Sample quality (classifier FD, precision, density) and diversity (recall, coverage, class coverage):
  recomputed here from both experiments' saved samples (`artifacts/samples.npz`, uint8 28x28) at one
  sample count (the smaller of the two, or `num_samples`) with one classifier and one floor
  (`jgen.metrics.sample_quality.evaluate_samples`), because these metrics depend on the count and the two
  experiments may have scored different counts. The VAE's samples are its decoder's Bernoulli means, the
  DDPM's its sampler's x_0.
* Likelihood: `test_bpd_ddpm` (variational bound) and `test_bpd_vae` (IWAE bound) on 8-bit MNIST 7x7, both
  upper bounds on the discrete NLL in bits/dim; the DDPM's on a test subset when `num_test_mnist7` < 10,000.
* Training time to a fixed quality: each experiment logs a small-sample classifier FD (`fd_track_samples`
  samples) with the seconds its fit had run (`artifacts/fd_curve.npz`, `jgen.metrics.fd_tracking`). The
  fixed quality is `fd_threshold`, or by default the best FD the slower-improving model reached (the
  largest FD both reached); the table gives each model's first logged time at or below it and the FD each
  had at equal wall-clock checkpoints (`tables/fd_vs_time`). The two runs may have run under different
  machine load: their `train_seconds` are each run's own wall clock.
* Sampling seconds per image (compilation excluded; the DDPM's with its experiment's sampler and steps)
  and parameter counts.

`tables/comparison` holds the table, `figures/samples_side_by_side` 50 samples of each, `figures/fd_vs_time`
the two curves, and `tables/answers` (and `answers.md`) the exercise's three questions, read as: which
model's samples are better and more diverse, which assigns the test digits a higher likelihood, and what
each costs to train and to sample; each answer is a sentence built from the table's numbers.
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np

from jgen import experiment, viz
from jgen.metrics.fd_tracking import seconds_to_reach

REQUIRES = ("ddpm_mnist", "vae_mnist")
MODELS = {"ddpm": "ddpm_mnist", "vae": "vae_mnist"}
LOWER_IS_BETTER = ("fd_classifier", "num_params")  # and test_bpd*, *seconds*
NO_DIRECTION = ("latent_smoothness",)  # how fast images change per unit latent: a property, not a score
QUALITY = ("fd_classifier", "precision", "density")
DIVERSITY = ("recall", "coverage", "class_coverage")


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_samples = None  # None: the smaller of the two experiments' saved sample counts
    c.fd_threshold = None  # None: the largest FD both models reached during training
    c.num_time_checkpoints = 6
    return c


def validate_config(config) -> None:
    if config.num_samples is not None and not 20 <= config.num_samples <= 10000:
        raise experiment.ConfigError(f"config.num_samples={config.num_samples} must be None (automatic) or in "
                                     "20..10000")
    if config.fd_threshold is not None and not config.fd_threshold > 0:
        raise experiment.ConfigError(f"config.fd_threshold={config.fd_threshold} must be > 0 (or None: automatic)")


def _classifier():
    from jgen.metrics import classifier

    return classifier.get_classifier("mnist")


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def _better(key: str, a: float, b: float) -> str:
    if key in NO_DIRECTION:
        return "n/a"
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return "neither"
    lower = key in LOWER_IS_BETTER or key.startswith("test_bpd") or "seconds" in key
    return "DDPM" if (a < b) == lower else "VAE"


def _samples(sib) -> np.ndarray:
    arrays = sib.load_arrays("samples")
    if arrays is None or "images" not in arrays:
        raise experiment.ExperimentError(f"{sib.name} saved no samples (artifacts/samples.npz with `images`); "
                                         f"re-run it with this version of jgen")
    return np.asarray(arrays["images"])


def _time_rows(curves: dict, threshold: float, k: int) -> tuple[list[dict], dict]:
    ends = [c["seconds"][-1] for c in curves.values() if len(c["seconds"])]
    rows = []
    for t in np.linspace(0, min(ends), k + 1)[1:] if ends else []:
        row = {"seconds": float(t)}
        for m, c in curves.items():
            done = np.nonzero(c["seconds"] <= t + 1e-9)[0]
            row[f"fd_{m}"] = float(c["fd"][done[-1]]) if len(done) else float("nan")
        rows.append(row)
    reach = {m: seconds_to_reach(c["seconds"], c["fd"], threshold) for m, c in curves.items()}
    return rows, reach


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    from jgen.metrics import sample_quality

    sibs = {m: wd.sibling(name) for m, name in MODELS.items()}
    sm = {m: s.metrics() for m, s in sibs.items()}
    samples = {m: _samples(s) for m, s in sibs.items()}
    n = config.num_samples if config.num_samples is not None else min(len(v) for v in samples.values())
    if n > min(len(v) for v in samples.values()):
        raise experiment.ConfigError(f"config.num_samples={n}: the experiments saved "
                                     f"{ {m: len(v) for m, v in samples.items()} } samples; pass at most the smaller")
    clf = _classifier()
    q = {m: sample_quality.evaluate_samples(samples[m][:n], "mnist", seed=config.seed, clf=clf, memorisation=False,
                                            keys=QUALITY + DIVERSITY) for m in MODELS}
    metrics: dict[str, float] = {"num_samples": n}
    rows = []

    def add(group, key, label, a, b, floor=None):
        rows.append({"group": group, "metric": label, "DDPM": a, "VAE": b, "real-data floor": floor,
                     "better": _better(key, a, b)})
        metrics[f"{key}_ddpm"], metrics[f"{key}_vae"] = a, b
        if floor is not None:
            metrics[f"{key}_floor"] = floor

    for group, keys in (("sample quality", QUALITY), ("diversity", DIVERSITY)):
        for k in keys:
            add(group, k, k, q["ddpm"][k], q["vae"][k], q["ddpm"][f"{k}_floor"])
    nan = float("nan")
    add("likelihood (MNIST 7x7, bits/dim, upper bounds)", "test_bpd", "test bits/dim",
        sm["ddpm"].get("test_bpd_ddpm", nan),
        sm["vae"].get("test_bpd_vae", nan))

    curves = {}
    for m, s in sibs.items():
        c = s.load_arrays("fd_curve")
        if c is not None and len(c["seconds"]):
            curves[m] = {"seconds": np.asarray(c["seconds"], np.float64), "fd": np.asarray(c["fd"], np.float64),
                         "num_samples": int(c["num_samples"])}
    threshold = nan
    if len(curves) == 2:
        counts = {m: c["num_samples"] for m, c in curves.items()}
        if len(set(counts.values())) != 1:
            raise experiment.ExperimentError(f"the FD curves were logged with different sample counts {counts}; "
                                             "set fd_track_samples equal in both experiments")
        threshold = config.fd_threshold
        if threshold is None:
            threshold = max(float(c["fd"].min()) for c in curves.values())
        time_rows, reach = _time_rows(curves, threshold, config.num_time_checkpoints)
        wd.save_table("fd_vs_time", time_rows)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for m, c in curves.items():
            ax.plot(c["seconds"], c["fd"], "o-", label=m.upper())
        ax.axhline(threshold, color="grey", ls="--", label=f"fixed quality FD = {threshold:.3g}")
        ax.set(xlabel="training seconds (evaluations excluded)", ylabel=f"classifier FD ({counts['ddpm']} samples)",
               title="sample quality against training time", yscale="log")
        ax.legend()
        wd.save_figure(fig, "fd_vs_time")
        add("training time", "seconds_to_fd_threshold", f"seconds to FD <= {threshold:.3g} "
            f"({counts['ddpm']}-sample FD)", reach["ddpm"], reach["vae"])
        metrics["fd_threshold"] = threshold
    add("training time", "train_seconds", "training seconds (whole run)", sm["ddpm"].get("train_seconds", nan),
        sm["vae"].get("train_seconds", nan))
    add("sampling", "sampling_seconds_per_image", "sampling seconds per image",
        sm["ddpm"].get("sampling_seconds_per_image", nan),
        sm["vae"].get("sampling_seconds_per_image", nan))
    add("size", "num_params", "parameters", float(sm["ddpm"]["num_params"]), float(sm["vae"]["num_params"]))
    add("latent space", "latent_smoothness", "pixel distance per unit latent distance",
        sm["ddpm"].get("latent_smoothness", nan), sm["vae"].get("latent_smoothness", nan))
    wd.save_table("comparison", rows)

    grid = {m: samples[m][:50].reshape(-1, 28, 28) for m in MODELS}
    viz.collage([grid[m][i * 10:(i + 1) * 10] for m in MODELS for i in range(5)], ["DDPM"] * 5 + ["VAE"] * 5,
                title="samples: DDPM (top five rows) and VAE (bottom five rows)",
                path=wd.figure_path("samples_side_by_side"))

    answers = _answers(metrics, sm, n)
    wd.save_table("answers", [{"question": k, "answer": v} for k, v in answers.items()])
    (wd.path / "answers.md").write_text("".join(f"**{k}** {v}\n\n" for k, v in answers.items()))
    return metrics


def _answers(m: dict, sm: dict, n: int) -> dict[str, str]:
    """The three questions, answered in sentences built from the numbers (nothing here is a fixed claim)."""
    def pair(key):
        return m[f"{key}_ddpm"], m[f"{key}_vae"]

    fd_d, fd_v = pair("fd_classifier")
    better_q = _better("fd_classifier", fd_d, fd_v)
    q1 = (f"Classifier FD on {n} samples: DDPM {_fmt(fd_d)}, VAE {_fmt(fd_v)} (real-data floor "
          f"{_fmt(m['fd_classifier_floor'])}), so {better_q} has the samples closer to the data in the classifier's "
          f"features; precision DDPM {_fmt(m['precision_ddpm'])} vs VAE {_fmt(m['precision_vae'])}, density "
          f"{_fmt(m['density_ddpm'])} vs {_fmt(m['density_vae'])}. Diversity: recall {_fmt(m['recall_ddpm'])} vs "
          f"{_fmt(m['recall_vae'])}, coverage {_fmt(m['coverage_ddpm'])} vs {_fmt(m['coverage_vae'])}, class "
          f"coverage {_fmt(m['class_coverage_ddpm'])} vs {_fmt(m['class_coverage_vae'])} (floors "
          f"{_fmt(m['recall_floor'])}, {_fmt(m['coverage_floor'])}, {_fmt(m['class_coverage_floor'])}).")
    b_d, b_v = pair("test_bpd")
    q2 = (f"On 8-bit MNIST 7x7 the DDPM's variational bound is {_fmt(b_d)} bits/dim (T = "
          f"{int(sm['ddpm'].get('num_diffusion_steps_mnist7', 0))}, {int(sm['ddpm'].get('num_test_mnist7', 0))} test "
          f"digits) and the VAE's IWAE bound {_fmt(b_v)} bits/dim: {_better('test_bpd', b_d, b_v)} gives the lower "
          f"bound. Both are upper bounds on the NLL, so the gap is between bounds, not between true likelihoods.")
    s_d, s_v = pair("sampling_seconds_per_image")
    p_d, p_v = pair("num_params")
    q3 = (f"Sampling costs DDPM {_fmt(s_d)} s per image against the VAE's {_fmt(s_v)} s "
          f"({_fmt(s_d / s_v if s_v else float('nan'))}x; one network call per step against one decoder call); "
          f"parameters {int(p_d)} vs {int(p_v)}.")
    if "seconds_to_fd_threshold_ddpm" in m:
        r_d, r_v = pair("seconds_to_fd_threshold")
        q3 += (f" To reach a {int(sm['ddpm'].get('fd_track_samples', 0))}-sample FD of {_fmt(m['fd_threshold'])} "
               f"the DDPM trained {_fmt(r_d)} s and the VAE {_fmt(r_v)} s, so {_better('seconds', r_d, r_v)} gets "
               f"there first.")
    t_d, t_v = pair("train_seconds")
    q3 += f" Whole training runs: DDPM {_fmt(t_d)} s, VAE {_fmt(t_v)} s (each under its own machine load)."
    return {"Which model's samples are better and more diverse?": q1,
            "Which model assigns the test digits a higher likelihood?": q2,
            "What does each cost to train and to sample?": q3}


if __name__ == "__main__":
    experiment.main(get_config, run)
