"""Test-wide settings: JAX on CPU, headless matplotlib, the shared data directory when it exists."""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JGEN_OFFLINE", "1")  # tests never download
# Tests compile far more than they run (tiny models, many shapes): XLA's backend optimisation passes cost more
# than they save here (suite 629 s -> 388 s on the idle 2-core machine, every test passing both ways).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# At that level XLA:CPU's newer fusion emitters take twice the compile time of the loop emitters, for the same
# run time (a tiny U-Net's training step 3.0 s -> 1.7 s; ddpm_mnist's tiny run 47 s -> 36 s). The flag is
# known to the jaxlib versions named here; an XLA that does not know a flag aborts, so others go without it.
import jaxlib.version  # noqa: E402  (only the version string: the backend is not started)

if jaxlib.version.__version__.startswith("0.10."):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_use_fusion_emitters=false".strip()

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "JGEN_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["JGEN_DATA_DIR"] = str(_SHARED)

# The files that take longest, slowest first (seconds on the 2-core machine of 2026-12-02, in a full run with two
# workers). With `--dist loadfile --no-loadscope-reorder` (pyproject) a worker takes the next file in
# collection order as it gets free, so the long end-to-end runs start first and the many short files fill in
# around them: both workers finish together instead of one starting a minute-long file at the end.
SLOW_FIRST = (
    "tests/experiments/test_ddpm_mnist.py",  # 49 s
    "tests/experiments/test_vae_mnist.py",  # 43
    "tests/experiments/test_ar_mnist7.py",  # 39
    "tests/experiments/test_vae_stl10.py",  # 38
    "tests/experiments/test_stylegan_train.py",  # 37
    "tests/experiments/test_ebm_usps.py",  # 36
    "tests/experiments/test_compare_ddpm_vae.py",  # 29 (its classifier)
    "tests/experiments/test_dino_ddpm.py",  # 27
    "tests/test_experiment.py",  # 18
    "tests/experiments/test_bench_inversion.py",  # 17
    "tests/experiments/test_flows_mnist7.py",  # 17
    "tests/experiments/test_flows_toy2d.py",  # 15
    "tests/gan/test_invert.py",  # 14
    "tests/experiments/test_stylegan_inversion.py",  # 12
    "tests/experiments/test_ppca_faces.py",  # 12
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
