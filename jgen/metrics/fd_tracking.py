"""Training time to a given sample quality: a small-sample classifier FD logged against wall-clock seconds.

`FDTracker` is an `eval_fn` for `jgen.train.fit_loss`: at each evaluation it draws samples from the
current params, scores them with `sample_quality.evaluate_samples(..., keys=("fd_classifier",))` and
records the seconds the fit has run so far, evaluations excluded (so a model is not charged for being
measured). Two models tracked with the same sample count, classifier and seed can be compared on the
seconds each needed to reach a fixed FD (`seconds_to_reach`); the FD at a small sample count is biased
upwards (`sample_quality.frechet_distance`), the same way for both, so only equal counts compare.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

__all__ = ["FDTracker", "seconds_to_reach"]


class FDTracker:
    """`eval_fn(params) -> {"fd_track", "train_seconds"}`, keeping every evaluation in `rows`.

    Args:
      sample: `sample(params) -> images` on the dataset's 0..255 scale ([n, H, W] or [n, H, W, 1]).
      dataset: the classifier's dataset (`jgen.metrics.classifier.DATASETS`).
      clf: that classifier (loaded once by the caller), or None to load the default one.
      seed: `evaluate_samples`' seed (the floor's test images and the training reference).

    Call `start()` just before the fit: seconds count from there (compilation of the step included).
    """

    def __init__(self, sample: Callable[[Any], np.ndarray], dataset: str, clf: Any = None, seed: int = 0):
        self.sample, self.dataset, self.clf, self.seed = sample, dataset, clf, seed
        self.rows: list[dict[str, float]] = []
        self.start()

    def start(self) -> None:
        self._t0, self._in_eval = time.perf_counter(), 0.0

    def __call__(self, params) -> dict[str, float]:
        from jgen.metrics import sample_quality

        t = time.perf_counter()
        elapsed = t - self._t0 - self._in_eval
        fd = sample_quality.evaluate_samples(self.sample(params), self.dataset, seed=self.seed, clf=self.clf,
                                             memorisation=False, keys=("fd_classifier",))["fd_classifier"]
        self.rows.append({"train_seconds": elapsed, "fd_track": fd})
        self._in_eval += time.perf_counter() - t
        return {"fd_track": fd, "train_seconds": elapsed}

    def arrays(self) -> dict[str, np.ndarray]:
        """{"seconds": [k], "fd": [k]} of the k evaluations so far (for `Workdir.save_arrays`)."""
        return {"seconds": np.array([r["train_seconds"] for r in self.rows], np.float64),
                "fd": np.array([r["fd_track"] for r in self.rows], np.float64)}


def seconds_to_reach(seconds, fd, threshold: float) -> float:
    """The first logged seconds at which fd <= threshold (`nan` when the curve never gets there)."""
    seconds, fd = np.asarray(seconds, np.float64), np.asarray(fd, np.float64)
    if seconds.shape != fd.shape or seconds.ndim != 1:
        raise ValueError(f"seconds and fd must be 1-D of equal length, got {seconds.shape} and {fd.shape}")
    hit = np.nonzero(fd <= threshold)[0]
    return float(seconds[hit[0]]) if len(hit) else float("nan")
