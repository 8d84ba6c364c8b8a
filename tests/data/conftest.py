"""Fixtures for jgen.data tests: an isolated TFDS cache, offline mode, the shared raw data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Prepared data goes to a temporary directory, never to ~/.cache; downloads are disabled."""
    old = {k: os.environ.get(k) for k in ("JGEN_TFDS_DIR", "JGEN_OFFLINE")}
    os.environ["JGEN_TFDS_DIR"] = str(tmp_path_factory.mktemp("tfds_default_cache"))
    os.environ["JGEN_OFFLINE"] = "1"
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    d = os.environ.get("JGEN_DATA_DIR")
    if not d or not Path(d, "mnist").is_dir():
        pytest.skip("JGEN_DATA_DIR does not point at the shared raw data")
    return Path(d)
