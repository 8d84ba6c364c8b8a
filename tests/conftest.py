"""Test-wide settings: JAX on CPU, headless matplotlib, the shared data directory when it exists."""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JGEN_OFFLINE", "1")  # tests never download
# Tests compile far more than they run (tiny models, many shapes): XLA's backend optimisation passes cost more
# than they save here (suite 629 s -> 388 s on the idle 2-core machine, every test passing both ways).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "JGEN_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["JGEN_DATA_DIR"] = str(_SHARED)

# The files that take longest, slowest first (seconds on the idle 2-core machine, in a full run with two
# workers). With `--dist loadfile --no-loadscope-reorder` (pyproject) a worker takes the next file in
# collection order as it gets free, so the long end-to-end runs start first and the many short files fill in
# around them: both workers finish together instead of one starting a minute-long file at the end.
SLOW_FIRST = (
    "tests/experiments/test_ddpm_mnist.py",  # 43 s
    "tests/experiments/test_ebm_usps.py",  # 33
    "tests/experiments/test_vae_stl10.py",  # 33
    "tests/experiments/test_vae_mnist.py",  # 32
    "tests/experiments/test_dino_ddpm.py",  # 29
    "tests/experiments/test_flows_mnist7.py",  # 27
    "tests/experiments/test_ar_mnist7.py",  # 27
    "tests/experiments/test_stylegan_train.py",  # 22
    "tests/experiments/test_compare_ddpm_vae.py",  # 20
    "tests/gan/test_invert.py",  # 20
    "tests/experiments/test_stylegan_inversion.py",  # 17
    "tests/experiments/test_bench_inversion.py",  # 17
    "tests/experiments/test_flows_toy2d.py",  # 16
    "tests/flows/test_model.py",  # 16
    "tests/experiments/test_ppca_faces.py",  # 14
)
_EARLY_DIRS = ("tests/experiments/", "tests/gan/")  # end-to-end runs, not yet in SLOW_FIRST: after it


def pytest_collection_modifyitems(config, items):
    """Orders the collected tests by file: SLOW_FIRST, then the rest of _EARLY_DIRS, then everything else,
    each group in collection order (a stable sort; the tests inside a file keep their order)."""
    root = Path(str(config.rootpath))
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def key(item) -> int:
        try:
            rel = Path(str(item.path)).resolve().relative_to(root).as_posix()
        except ValueError:
            return len(rank) + 1
        if rel in rank:
            return rank[rel]
        return len(rank) if rel.startswith(_EARLY_DIRS) else len(rank) + 1

    items.sort(key=key)
