"""The restricted unpickler: numpy arrays in, everything else refused by name."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess

import numpy as np
import pytest

from jgen.data.safe_pickle import load_numpy_pickle, loads_numpy_pickle


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("touch /tmp/jgen_safe_pickle_pwned",))


class _RunsSubprocess:
    def __reduce__(self):
        return (subprocess.check_output, (["true"],))


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_containers_round_trip(tmp_path, protocol):
    obj = {"a": [np.arange(5, dtype=np.int16), (np.float32(2.5), np.dtype(">f8"))],
           "b": np.ones((3, 4), np.uint8), "c": np.array([b"x", b"yz"])}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = load_numpy_pickle(path)
    np.testing.assert_array_equal(got["a"][0], obj["a"][0])
    assert got["a"][0].dtype == np.int16 and got["a"][1][1] == np.dtype(">f8") and got["a"][1][0] == 2.5
    np.testing.assert_array_equal(got["b"], obj["b"])
    np.testing.assert_array_equal(got["c"], obj["c"])


def test_python2_protocol0_array_pickle():
    # What the Frey-faces pickle looks like: protocol 0, numpy.core.multiarray._reconstruct, latin-1 payload.
    data = pickle.dumps([np.arange(6, dtype=np.uint8).reshape(2, 3)], protocol=0)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    got = loads_numpy_pickle(data)
    np.testing.assert_array_equal(got[0], np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("payload, refused", [
    (_RunsShell(), "system"), (_RunsSubprocess(), "(subprocess|commands).check_output"),
    # protocols < 3 write Python-2 module names (subprocess -> commands); the message quotes the pickle.
    (collections.OrderedDict(a=1), "collections.OrderedDict"), (np.random.default_rng(0), "numpy.random")])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_malicious_or_foreign_globals_are_refused(tmp_path, payload, refused, protocol):
    marker = "/tmp/jgen_safe_pickle_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(pickle.UnpicklingError, match=rf"refusing to load global .*{refused}"):
        load_numpy_pickle(path)
    assert not os.path.exists(marker)
