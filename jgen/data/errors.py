"""Errors raised by `jgen.data`: every message says what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["DatasetError", "UnknownDatasetError", "UnknownSplitError", "MissingDataError", "DataFormatError"]


class DatasetError(Exception):
    """Base class of every error raised while locating, preparing or reading a dataset."""


class UnknownDatasetError(DatasetError, ValueError):
    """The dataset name is not one jgen knows; the message lists the known names."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, list(known)
        super().__init__(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(known))}")


class UnknownSplitError(DatasetError, ValueError):
    """The split is not one the dataset has."""

    def __init__(self, name: str, split: str, known: list[str]):
        self.name, self.split, self.known = name, split, list(known)
        super().__init__(f"dataset {name!r} has no split {split!r}; available splits: {', '.join(known)}")


class MissingDataError(DatasetError, FileNotFoundError):
    """The raw files are not on disk and downloading is not allowed (or failed).

    The message names the dataset, every expected file, the directory to put them in, and how to point
    `JGEN_DATA_DIR` at a directory holding `<subdir>/<file>`.
    """

    def __init__(self, name: str, files: list[str], directory: str, reason: str = "downloading is disabled"):
        self.name, self.files, self.directory = name, list(files), directory
        listing = "\n".join(f"  - {f}" for f in files)
        super().__init__(
            f"raw files for dataset {name!r} not found and {reason}.\n"
            f"Expected these files:\n{listing}\n"
            f"in the directory {directory}/\n"
            f"Put them there, or set the environment variable JGEN_DATA_DIR to a directory that holds them "
            f"under the same sub-directory (e.g. `export JGEN_DATA_DIR=/path/to/data`), or pass "
            f"data_dir=... to jgen.data.load. Downloading is attempted only when download=True and "
            f"JGEN_OFFLINE is not set.")


class DataFormatError(DatasetError, ValueError):
    """A raw file exists but does not have the expected format; the message names the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")
