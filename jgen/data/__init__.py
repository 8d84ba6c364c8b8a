"""Datasets and input pipelines: TFDS builders without TensorFlow, preprocessing, batching, 2-D toys.

* `load(name, split)` / `data_source(name, split)`: datasets prepared once with TFDS into array_record files
  (`jgen.data.builders`, raw-format readers in `jgen.data.raw`).
* `BatchIterator`: deterministic shuffled batches on device, sharded along the `data` mesh axis, exact resume.
* `stream.StreamingBatches`: the same contract for data too large to hold (STL-10), streamed from the
  prepared array_record files through grain (import `jgen.data.stream` explicitly).
* `preprocess`: pure array transforms (area resize, dequantisation, logit transform, binarisation, ...).
* `toy2d`: 2-D toy densities with samplers and exact log-densities.
* `safe_pickle`: a restricted unpickler for legacy numpy pickles.
* `mnist7`: MNIST at 7x7, 8-bit, with the one train/val/test split the likelihood table uses.
* `faces`: Olivetti and Frey faces with train/test splits by image or by person.
"""

from jgen.data import builders, mnist7, preprocess, raw, safe_pickle, toy2d
from jgen.data import faces
from jgen.data.errors import DataFormatError, DatasetError, MissingDataError, UnknownDatasetError, UnknownSplitError
from jgen.data.iterator import BatchIterator
from jgen.data.loading import builder, data_source, default_cache_dir, known_datasets, load

__all__ = [
    "load", "data_source", "builder", "known_datasets", "default_cache_dir", "BatchIterator",
    "DatasetError", "UnknownDatasetError", "UnknownSplitError", "MissingDataError", "DataFormatError",
    "builders", "mnist7", "preprocess", "raw", "safe_pickle", "toy2d",
    "faces",
]
