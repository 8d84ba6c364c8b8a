"""Test-wide settings: JAX on CPU, headless matplotlib, the shared data directory when it exists."""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JGEN_OFFLINE", "1")  # tests never download

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "JGEN_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["JGEN_DATA_DIR"] = str(_SHARED)
