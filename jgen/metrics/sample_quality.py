"""Sample quality in a named feature space: Fréchet distance, KID, precision/recall, density/coverage, class
coverage, inception score, memorisation, squared MMD and a KL estimate.

The metric functions take feature arrays (`[n, d]`, any feature space) or label probabilities and return
plain floats. Which features they are computed in is the caller's choice and belongs in the metric's name:
`evaluate_samples` uses the penultimate layer of an in-project classifier (`jgen.metrics.classifier`), so its
keys read `fd_classifier`, `kid_classifier`, ..., never a bare "FID" (no Inception network is involved).

Every metric here depends on the sample size, and the docstrings say how. A number is only meaningful next
to its floor: the same metric between real test images and real training images at the same sample count,
which `evaluate_samples` returns beside each value as `<metric>_floor`.

References:
  Heusel et al., GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium, 2017 (FD).
  Bińkowski et al., Demystifying MMD GANs, 2018 (KID).
  Kynkäänniemi et al., Improved Precision and Recall Metric for Assessing Generative Models, 2019.
  Naeem et al., Reliable Fidelity and Diversity Metrics for Generative Models, 2020 (density, coverage).
  Salimans et al., Improved Techniques for Training GANs, 2016 (inception score).
  Yoon et al., Diffusion Probabilistic Models Generalize when They Fail to Memorize, 2023 (NN ratio test).
  Gretton et al., A Kernel Two-Sample Test, JMLR 2012 (MMD).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jgen.metrics import classifier as classifier_lib

__all__ = [
    "gaussian_stats", "frechet_distance_from_stats", "frechet_distance", "kid", "precision_recall",
    "density_coverage", "class_coverage", "inception_score", "nearest_neighbour_distances",
    "memorisation_rate", "squared_mmd", "kl_estimate", "evaluate_samples",
]

_CHUNK = 2048  # rows of a pairwise-distance block: bounds memory at _CHUNK * N float64 values


def _features(x: Any, name: str = "features") -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a [n, d] array with n >= 2, got shape {a.shape}")
    return a


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean [d] and covariance [d, d] (unbiased, n - 1) of `features` [n, d], in float64."""
    f = _features(features)
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    FD = |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1^1/2 cov2 cov1^1/2)^1/2). The matrix square root is taken
    through symmetric eigendecompositions, so singular covariances (dead ReLU units) need no jitter.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    s1 = _sqrt_psd(cov1)
    cross = np.linalg.eigvalsh((s1 @ cov2 @ s1 + (s1 @ cov2 @ s1).T) / 2)
    fd = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.sum(np.sqrt(np.clip(cross, 0, None)))
    return float(max(fd, 0.0))


def frechet_distance(x: Any, y: Any) -> float:
    """Fréchet distance between Gaussians fitted to features `x` [n, d] and `y` [m, d].

    Sample-size bias: positive and O(1/n + 1/m) (roughly tr(cov)/n per side for well-conditioned features;
    Chong & Forsyth 2020), so it does not vanish for two samples of one distribution and shrinks as the
    sample grows: compare models only at equal n, next to the real-vs-real floor.
    """
    return frechet_distance_from_stats(*gaussian_stats(x), *gaussian_stats(y))


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(x: Any, y: Any, *, num_subsets: int = 10, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (in whatever features are given): unbiased MMD^2, cubic polynomial kernel.

    k(a, b) = (a.b / d + 1)^3. Both samples are shuffled (from `seed`) and cut into `num_subsets` disjoint
    blocks of m = min(n_x, n_y) // num_subsets points; each block gives the unbiased U-statistic
    MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j).
    Blocks are independent, so the standard error std / sqrt(num_subsets) is honest.

    Sample-size bias: none (each block estimate is unbiased, so the mean can be negative when the
    distributions agree); its variance shrinks with the sample size.

    Returns:
      (kid, standard error).
    """
    x, y = _features(x, "x"), _features(y, "y")
    m = min(len(x), len(y)) // num_subsets
    if num_subsets < 2 or m < 2:
        raise ValueError(f"kid needs num_subsets >= 2 blocks of >= 2 points each; got {len(x)} and {len(y)} "
                         f"points for num_subsets={num_subsets}")
    rng = np.random.default_rng(seed)
    xs, ys = x[rng.permutation(len(x))], y[rng.permutation(len(y))]
    vals = []
    for b in range(num_subsets):
        xb, yb = xs[b * m:(b + 1) * m], ys[b * m:(b + 1) * m]
        kxx, kyy = _poly_kernel(xb, xb), _poly_kernel(yb, yb)
        off = m * (m - 1)
        vals.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                    - 2 * _poly_kernel(xb, yb).mean())
    vals = np.asarray(vals)
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(num_subsets))


def _pairwise_blocks(a: np.ndarray, b: np.ndarray):
    """Yields (row slice, Euclidean distances [rows, len(b)]) in blocks of `_CHUNK` rows of `a`."""
    b2 = np.sum(b * b, 1)
    for s in range(0, len(a), _CHUNK):
        ab = a[s:s + _CHUNK]
        d2 = np.sum(ab * ab, 1)[:, None] + b2[None] - 2 * ab @ b.T
        yield slice(s, s + len(ab)), np.sqrt(np.clip(d2, 0.0, None))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (the point itself excluded)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} nearest neighbours need more than k points, got {len(x)}")
    out = np.empty(len(x))
    for rows, d in _pairwise_blocks(x, x):
        out[rows] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself (distance 0)
    return out


def precision_recall(real: Any, fake: Any, *, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    The real manifold is the union of balls around each real feature with radius its distance to the k-th
    nearest other real feature; precision = fraction of fake features inside it (fidelity). Recall swaps
    the roles: fraction of real features inside the fake manifold (diversity). Strict inequality, as in
    the reference implementation of Naeem et al. Outliers among the real features inflate the real
    manifold, so collapsed samples (even noise mapped to one class) can score a high precision; density is
    robust to that (Naeem et al.), and recall exposes the collapse.

    Sample-size bias: the balls grow as the sample shrinks, so both values rise towards 1 for small n and
    fall as n grows (real vs real at n = 10k, k = 3 is well below 1): compare at equal n, next to the floor.

    Args:
      real: [n, d] real features. fake: [m, d] model features. k: neighbourhood size.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    inside_real = np.zeros(len(fake), bool)
    inside_fake = np.zeros(len(real), bool)
    for rows, d in _pairwise_blocks(fake, real):  # d[j, i] = |fake_j - real_i|
        inside_real[rows] = np.any(d < r_real[None], axis=1)
        inside_fake |= np.any(d < r_fake[rows, None], axis=0)
    return {"precision": float(inside_real.mean()), "recall": float(inside_fake.mean())}


def density_coverage(real: Any, fake: Any, *, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), from k-NN balls around the real features only.

    density = 1 / (k m) sum_j #{i : |fake_j - real_i| < r_i} (may exceed 1; its expectation is 1 when fake
    and real share a distribution); coverage = fraction of real points whose ball holds a fake point.

    Sample-size bias: density is unbiased for identical distributions at any n; coverage of a perfect model
    is 1 - (1/2)^k in expectation for n = m (Naeem et al., Lemma 2) and depends on m / n otherwise.

    Args:
      real: [n, d] real features. fake: [m, d] model features. k: neighbourhood size.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    r_real = _knn_radii(real, k)
    count = 0
    covered = np.zeros(len(real), bool)
    for _, d in _pairwise_blocks(fake, real):
        inside = d < r_real[None]
        count += int(inside.sum())
        covered |= inside.any(axis=0)
    return {"density": float(count / (k * len(fake))), "coverage": float(covered.mean())}


def class_coverage(labels: Any, num_classes: int) -> dict[str, float]:
    """How evenly predicted labels [n] (ints, or probabilities [n, C] that are argmax-ed) spread over classes.

    Returns `class_coverage`: entropy of the label histogram over log(num_classes) (1 = uniform, 0 = one class)
    and `classes_present`: fraction of the classes predicted at least once.

    Sample-size bias: the plug-in entropy is biased low by about (C - 1) / (2 n ln C) (Miller 1955), and
    `classes_present` is biased low when n is not much larger than C; the floor at the same n has the same bias.
    """
    a = np.asarray(labels)
    if a.ndim == 2:
        a = a.argmax(-1)
    if a.ndim != 1 or not len(a):
        raise ValueError(f"labels must be [n] ints or [n, C] probabilities, got shape {np.shape(labels)}")
    counts = np.bincount(a.astype(np.int64), minlength=num_classes)[:num_classes]
    p = counts / counts.sum()
    nz = p[p > 0]
    return {"class_coverage": float(-np.sum(nz * np.log(nz)) / math.log(num_classes)) + 0.0,  # no -0.0
            "classes_present": float(np.mean(counts > 0))}


def inception_score(probs: Any) -> float:
    """Classifier inception score exp(E_x KL(p(y|x) || p(y))) from class probabilities [n, C].

    p(y) is the mean of p(y|x) over the same samples. Between 1 (one class, or uninformative predictions) and
    C. Sample-size bias: biased (the marginal is estimated from the samples and the log is taken after the
    mean), low for small n; Salimans et al. average 10 splits of 5,000, values at other n are not comparable.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be [n, C], got shape {p.shape}")
    marginal = p.mean(0, keepdims=True)
    kl = np.sum(p * (np.log(np.clip(p, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None))), axis=1)
    return float(np.exp(kl.mean()))


def nearest_neighbour_distances(queries: Any, reference: Any, *, num_neighbours: int = 2) -> np.ndarray:
    """Euclidean distances [n, num_neighbours] from each query [n, d] to its nearest rows of `reference`.

    Computed with jitted float32 matrix products over blocks of the reference (a sample of 1,000 against
    the 60,000 MNIST training images in pixels is about 100 GFLOP; on a GPU, a fraction of a second).
    """
    q = jnp.asarray(np.asarray(queries, np.float32).reshape(len(queries), -1))
    ref = np.asarray(reference, np.float32).reshape(len(reference), -1)
    if ref.shape[1] != q.shape[1] or len(ref) < num_neighbours:
        raise ValueError(f"reference [{len(ref)}, {ref.shape[1]}] does not match queries [{q.shape[0]}, "
                         f"{q.shape[1]}] or has fewer than {num_neighbours} rows")
    best = jnp.full((q.shape[0], num_neighbours), jnp.inf, jnp.float32)
    for s in range(0, len(ref), 8192):
        best = _merge_nearest(q, jnp.asarray(ref[s:s + 8192]), best)
    return np.sqrt(np.asarray(best, np.float64))


@jax.jit
def _merge_nearest(q: jax.Array, block: jax.Array, best: jax.Array) -> jax.Array:
    d2 = jnp.sum(q * q, 1)[:, None] + jnp.sum(block * block, 1)[None] - 2 * q @ block.T
    both = jnp.concatenate([best, jnp.maximum(d2, 0.0)], axis=1)
    return -jax.lax.top_k(-both, best.shape[1])[0]


def memorisation_rate(samples: Any, train: Any, *, ratio: float = 1 / 3) -> float:
    """Fraction of samples that copy a training example: nearest-neighbour ratio test (Yoon et al. 2023).

    A sample counts as memorised when its distance to the nearest training example is below `ratio` times
    the distance to the second nearest: it sits on one training point rather than between several. Works in
    any space; `evaluate_samples` uses pixels, where copies are exact.

    Sample-size bias: the rate itself is a proportion (unbiased, standard error sqrt(r (1 - r) / n)), but it
    grows with the training-set size (more near-duplicates to hit); the floor uses the same training set.

    Args:
      samples: [n, ...] samples. train: [N, ...] training examples, same trailing shape.
    """
    d = nearest_neighbour_distances(samples, train, num_neighbours=2)
    return float(np.mean(d[:, 0] < ratio * d[:, 1]))


def squared_mmd(samples: jax.Array, points: jax.Array, bandwidth: float) -> jax.Array:
    """MMD^2 between a sampler and the empirical distribution of `points`, kernel exp(-|u|^2 / (2 h^2)).

    `points` is a fixed set (e.g. the dino), so its self-term is exact (a V-statistic over all pairs,
    diagonal included), while the samples' self-term is the unbiased U-statistic. Sample-size bias: none
    for the MMD^2 to the empirical distribution of `points` (about 0 for a sampler that reproduces the
    points, > 0 otherwise); as an estimate of the MMD^2 to the distribution the points were drawn from it
    is biased upwards by O(1 / m).

    Args:
      samples: [n, d] model samples. points: [m, d] target points. bandwidth: kernel h (data units).
    """
    def k(a, b):
        d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None] - 2 * a @ b.T
        return jnp.exp(-jnp.maximum(d2, 0.0) / (2 * bandwidth**2))

    n = samples.shape[0]
    kxx = k(samples, samples)
    return (kxx.sum() - jnp.trace(kxx)) / (n * (n - 1)) + k(points, points).mean() - 2 * k(samples, points).mean()


def kl_estimate(log_p: Any, log_q: Any) -> dict[str, float]:
    """Monte-Carlo KL(p || q) = E_p[log p - log q] (nats) from both log-densities at samples x ~ p.

    Returns `nll` = -mean log q (held-out NLL), `entropy` = -mean log p, `kl` and its standard error `kl_se`
    (std of log p - log q over sqrt(n)). Sample-size bias: none (a plain mean over independent samples).

    Args:
      log_p: [n] log p(x_i) of the true density. log_q: [n] log q(x_i) of the model, same points.
    """
    log_p, log_q = np.asarray(log_p, np.float64), np.asarray(log_q, np.float64)
    diff = log_p - log_q
    return {"nll": float(-log_q.mean()), "entropy": float(-log_p.mean()), "kl": float(diff.mean()),
            "kl_se": float(diff.std() / math.sqrt(len(diff)))}


def evaluate_samples(samples: Any, dataset: str, *, num_samples: int | None = None, seed: int = 0,
                     clf: Any = None, memorisation: bool = True, keys: Sequence[str] | None = None,
                     suffix: str = "") -> dict[str, float]:
    """Every sample metric of model `samples` with its real-data floor, in one flat dict of numbers.

    Features are the penultimate layer of the dataset's in-project classifier
    (`jgen.metrics.classifier.get_classifier(dataset)`; `clf.describe()` names it). For each metric `m` the
    dict holds the model's `m` and `m_floor`: the same metric with `num_samples` real test images in place of
    the samples, against the same training-set reference. Keys:

      fd_classifier (vs the Gaussian of all training features), kid_classifier (+ _se), precision, recall,
      density, coverage (in classifier features, vs `num_samples` random training features), class_coverage
      (normalised entropy of the predicted labels), classes_present, inception_score_classifier (predicted
      labels), memorisation (NN ratio test against all training images, in pixels; with `memorisation`),
      and num_samples, classifier_test_accuracy. The names are the ones every image experiment reports;
      the feature space of each is named by `clf.describe()` and in the report.

    Args:
      samples: [n, H, W] or [n, H, W, 1] on the dataset's 0..255 scale (uint8 or float); the first
        `num_samples` are used.
      dataset: one of `jgen.metrics.classifier.DATASETS`.
      num_samples: sample count (default: all); at most the test-set size, which the floor needs.
      seed: picks the test images of the floor and the training reference subset.
      clf: a `Classifier` to use instead of the dataset's default one.
      memorisation: also compute the pixel-space memorisation rate (loads the training images).
      keys: report only these metrics (each with its `_floor`, plus num_samples and
        classifier_test_accuracy); default all.
      suffix: appended to every model key (`fd_classifier_ddim10`), not to the floors, num_samples or
        classifier_test_accuracy: a study's rows share one floor.
    """
    clf = classifier_lib.get_classifier(dataset) if clf is None else clf
    ref = classifier_lib.reference(clf)
    samples = np.asarray(samples)
    n = len(samples) if num_samples is None else int(num_samples)
    n_test, n_train = len(ref["test_features"]), len(ref["train_features"])
    if not 20 <= n <= len(samples):
        raise ValueError(f"num_samples={n} must lie in 20..{len(samples)} (the samples given)")
    if n > n_test:
        raise ValueError(f"the floor needs as many real test images as samples: {dataset} has {n_test}; "
                         f"pass num_samples <= {n_test}")
    rng = np.random.default_rng(seed)
    test_idx = rng.choice(n_test, n, replace=False)
    reference_f = ref["train_features"][rng.choice(n_train, n, replace=False)]
    model_f, model_logits = clf.features_and_logits(samples[:n])
    splits = classifier_lib.dataset_splits(dataset) if memorisation else None
    subsets = max(2, min(10, n // 100))

    def scores(f: np.ndarray, probs: np.ndarray, pixels: np.ndarray | None) -> dict[str, float]:
        value, se = kid(f, reference_f, num_subsets=subsets, seed=seed)
        out = {"fd_classifier": frechet_distance_from_stats(*gaussian_stats(f), ref["train_mean"], ref["train_cov"]),
               "kid_classifier": value, "kid_classifier_se": se,
               **precision_recall(reference_f, f), **density_coverage(reference_f, f),
               **class_coverage(probs, clf.num_classes),
               "inception_score_classifier": inception_score(probs)}
        if pixels is not None:
            out["memorisation"] = memorisation_rate(pixels, splits["train_x"] / 255.0)
        return out

    model = scores(model_f, np.asarray(jax.nn.softmax(model_logits, -1)),
                   samples[:n].reshape(n, *clf.image_shape) / 255.0 if memorisation else None)
    floor = scores(ref["test_features"][test_idx], ref["test_probs"][test_idx],
                   splits["test_x"][test_idx] / 255.0 if memorisation else None)
    keys = list(model) if keys is None else list(keys)
    unknown = [k for k in keys if k not in model]
    if unknown:
        raise ValueError(f"evaluate_samples has no metric {unknown}; it computes {sorted(model)}")
    return {**{f"{k}{suffix}": model[k] for k in keys}, **{f"{k}_floor": floor[k] for k in keys},
            "num_samples": float(n), "classifier_test_accuracy": float(clf.test_accuracy)}
