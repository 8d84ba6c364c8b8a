"""FDTracker charges a fit only for its own seconds (not the evaluations), and seconds_to_reach finds the
first logged time at or below a quality."""

import math
import time

import numpy as np
import pytest

from jgen.metrics import fd_tracking, sample_quality


def test_seconds_to_reach_is_the_first_time_at_or_below():
    assert fd_tracking.seconds_to_reach([1.0, 2.0, 3.0], [9.0, 4.0, 5.0], 5.0) == 2.0
    assert math.isnan(fd_tracking.seconds_to_reach([1.0, 2.0], [9.0, 8.0], 4.0))
    with pytest.raises(ValueError, match="equal length"):
        fd_tracking.seconds_to_reach([1.0, 2.0], [9.0], 4.0)


def test_tracker_excludes_its_own_evaluation_time(monkeypatch):
    def slow_metrics(samples, dataset, **kw):
        time.sleep(0.2)
        return {"fd_classifier": float(np.mean(samples))}

    monkeypatch.setattr(sample_quality, "evaluate_samples", slow_metrics)
    tracker = fd_tracking.FDTracker(lambda p: np.full((20, 28, 28), p, np.uint8), "mnist")
    tracker.start()
    out = [tracker(p) for p in (3, 2, 1)]
    # Three evaluations took >= 0.6 s of wall clock; none of it is charged to the fit.
    assert out[-1]["train_seconds"] < 0.1 and [o["fd_track"] for o in out] == [3.0, 2.0, 1.0]
    a = tracker.arrays()
    assert a["fd"].tolist() == [3.0, 2.0, 1.0] and np.all(np.diff(a["seconds"]) >= 0)
