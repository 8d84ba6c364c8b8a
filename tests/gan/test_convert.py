"""Checkpoint converters: the restricted torch reader never runs code, and jgen <-> public layouts round trip.

Synthetic checkpoints (tests/gan/synthetic_checkpoints.py) carry the public key names and shapes; the round
trips use a small generator (16 px) whose own random params are written in the public layouts; the 1024-px
config-f key set is checked by shapes, and one full-size file is written and converted.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.gan import convert, stylegan2, torch_reader
from tests.gan import synthetic_checkpoints as sc


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path, marker):
    """The same command-running payload as a plain pickle, inside a torch zip and inside a legacy torch.save."""
    evil = pickle.dumps({"g_ema": _RunsShell(marker)}, protocol=2)
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(evil)
    zipped = tmp_path / "evil_zip.pt"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", evil)
        z.writestr("archive/version", "3\n")
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(sc._legacy_header() + evil + pickle.dumps([], protocol=2))
    return [plain, zipped, legacy]


def test_reader_refuses_a_command_and_never_runs_it(tmp_path):
    marker = tmp_path / "pwned"
    for path in _evil_files(tmp_path, marker):
        with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (os|posix)\.system"):
            torch_reader.load_torch_file(path)
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            convert.load_checkpoint(path)
        # Placeholder mode reads it as inert data; the command still does not run.
        obj = torch_reader.load_torch_file(path, unknown_globals="placeholder")
        assert isinstance(obj["g_ema"], torch_reader.OpaqueObject)
        assert obj["g_ema"].pickled_global in ("os.system", "posix.system")
        assert obj["g_ema"].args == (f"touch {marker}",)
    assert not marker.exists()


def test_a_pickle_cannot_alter_the_shared_allow_list():
    def text(t):
        return b"X" + len(t).to_bytes(4, "little") + t.encode()
    for target in (b"torch\nFloatStorage\n", b"torch\nfloat32\n", b"torch\nTensor\n"):
        # GLOBAL target, {"dtype": "f2"}, BUILD: would retype every later FloatStorage if it were allowed.
        data = b"\x80\x02c" + target + b"}" + text("dtype") + text("f2") + b"sb."
        with pytest.raises(pickle.UnpicklingError, match="refusing to set the state"):
            torch_reader.loads_torch_pickle(data)
    for target in (b"argparse\nNamespace\n", b"torch._utils\n_rebuild_tensor_v2\n"):  # a class, a function
        with pytest.raises(pickle.UnpicklingError, match="refusing to set the state"):
            torch_reader.loads_torch_pickle(b"\x80\x02c" + target + b"}" + text("__init__") + text("x") + b"sb.")
    assert torch_reader.ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == np.float32


def test_nvlabs_module_source_is_never_executed(tmp_path):
    marker = tmp_path / "pwned_src"
    src = f"import os\nos.system('touch {marker}')\nclass Generator: pass\n"
    config = stylegan2.stylegan2_config(resolution=8, z_dim=4, w_dim=4, mapping_layers=1, channel_base=32,
                                        channel_max=4)
    state = sc.random_state(sc.nvlabs_layout(8, 3, 4, 4, 1, 32, 4))
    sc.write_nvlabs_pkl(tmp_path / "snap.pkl", state, module_src=src)
    snap = torch_reader.load_torch_file(tmp_path / "snap.pkl")
    g = snap["G_ema"]
    assert isinstance(g, torch_reader.PersistentObject) and g.class_name == "Generator" and g.module_src == src
    assert g.mapping.fc0.class_name == "FullyConnectedLayer" and isinstance(g.mapping.fc0.weight_gain, np.floating)
    assert snap["G_ema"].synthesis.b8.conv0.up == 2
    flat = torch_reader.module_state_dict(g)
    assert list(flat) == list(state) and all(np.array_equal(flat[k], state[k]) for k in state)
    got, _, _ = convert.from_nvlabs_pkl(tmp_path / "snap.pkl")
    assert got == config
    assert not marker.exists()


def test_reader_rejects_views_outside_their_storage_and_tensorflow_pickles(tmp_path):
    bad = sc.Call(sc.GlobalRef("torch._utils", "_rebuild_tensor_v2"),
                  (sc._Storage(np.zeros(4, np.float32), "0"), 2, (3,), (1,), False, {}))
    data, storages = sc._dumps({"x": bad}, 2, "zip")
    with zipfile.ZipFile(tmp_path / "oob.pt", "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
    with pytest.raises(pickle.UnpicklingError, match="reads element 4 of a storage of 4"):
        torch_reader.load_torch_file(tmp_path / "oob.pt")
    tf, _ = sc._dumps({"G": sc.Call(sc.GlobalRef("dnnlib.tflib.network", "Network"), ())}, 2, "bytes")
    (tmp_path / "tf.pkl").write_bytes(tf)
    with pytest.raises(pickle.UnpicklingError, match="TensorFlow StyleGAN pickle.*legacy.py"):
        convert.load_checkpoint(tmp_path / "tf.pkl")


def test_config_f_1024_key_sets_and_shapes():
    config_f = stylegan2.stylegan2_config(resolution=1024)  # the defaults are config-f
    nv = sc.nvlabs_layout()  # 1024 px, written from the public networks.py
    assert {k: s for k, (s, _) in nv.items()} == dict(convert.nvlabs_state_shapes(config_f))
    assert sum(np.prod(s, dtype=np.int64) for s, kind in nv.values() if kind == "param") == 30_370_060
    assert stylegan2.num_ws(1024) == 18
    # rosinality's 1024 key set, as zero-stride arrays (no memory), renamed to the NVlabs names.
    ros = sc.rosinality_layout()
    assert len(ros) == 171 and ros["convs.15.conv.weight"] == (1, 32, 32, 3, 3) and ros["noises.noise_16"] == (
        1, 1, 1024, 1024)
    virtual = {k: np.broadcast_to(sc._FIR * 4 if k.endswith("kernel") else np.float32(0), s) for k, s in ros.items()}
    renamed = convert.rosinality_to_nvlabs_names(virtual)
    expect = {k: s for k, (s, _) in nv.items() if not k.endswith("resample_filter") and k != "mapping.w_avg"}
    assert {k: v.shape for k, v in renamed.items()} == expect
    config, params, _ = convert.nvlabs_state_to_jgen(renamed, dtype=None)
    assert config == config_f  # the conversion itself checks every leaf against stylegan2.param_shapes
    # jgen keeps the 2,796,176 noise_const entries (buffers in PyTorch) among its params.
    assert stylegan2.num_params(params) == 30_370_060 + sum(r * r for r in [4] + [2 ** k for k in range(3, 11)
                                                                               for _ in range(2)])


def test_full_size_config_f_rosinality_file(tmp_path):
    # One full-size file (float16 values to halve its 60 MB; the converter widens to float32).
    ros = sc.random_state(sc.rosinality_layout(), seed=1, dtype=np.float16)
    latent_avg = np.linspace(-1, 1, 512).astype(np.float32)
    sc.write_torch_zip(tmp_path / "550000.pt", sc.rosinality_checkpoint(ros, latent_avg, train=False))
    config, params, w_avg = convert.load_checkpoint(tmp_path / "550000.pt")
    assert config == stylegan2.stylegan2_config(resolution=1024)
    b1024 = params["synthesis_network"]["b1024"]
    assert b1024["conv0"]["weight"].shape == (3, 3, 64, 32) and b1024["conv0"]["weight"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(b1024["conv0"]["weight"]),
                                  ros["convs.14.conv.weight"][0].transpose(2, 3, 1, 0).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(b1024["torgb"]["bias"]), ros["to_rgbs.7.bias"].reshape(3))
    np.testing.assert_array_equal(np.asarray(params["mapping_network"]["fc7"]["weight"]), ros["style.8.weight"].T)
    np.testing.assert_array_equal(np.asarray(w_avg), latent_avg)


def _small_generator(seed=0):
    """16 px, C = {4: 16, 8: 16, 16: 8}, every leaf random (noise strengths and biases too)."""
    config = stylegan2.stylegan2_config(resolution=16, z_dim=12, w_dim=12, mapping_layers=2, channel_base=128,
                                        channel_max=16, mapping_lr_mul=0.05)
    shapes = stylegan2.param_shapes(config)
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_unflatten(treedef, [rng.standard_normal(s.shape).astype(np.float32) for s in leaves])
    return config, params, rng.standard_normal(12).astype(np.float32)


def _numpy_mapping(params, z, lr_mul):
    """The official mapping in numpy: pixel norm, then x <- lrelu(x W lr_mul / sqrt(in) + b lr_mul) sqrt 2."""
    x = z / np.sqrt(np.mean(z ** 2, -1, keepdims=True) + 1e-8)
    for i in range(len(params["mapping_network"])):
        fc = params["mapping_network"][f"fc{i}"]
        x = x @ (fc["weight"] * lr_mul / np.sqrt(x.shape[-1])) + fc["bias"] * lr_mul
        x = np.where(x >= 0, x, 0.2 * x) * np.sqrt(2)
    return x


def _assert_same_tree(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype == np.float32
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def small():
    """The 16-px generator, distinct per-layer ws, and jgen's images of them (one compilation for the file)."""
    config, params, w_avg = _small_generator()
    g = stylegan2.Generator(config)
    synth = jax.jit(lambda p, ws: g.apply({"params": p}, ws, method=g.synthesis))
    ws = jax.random.normal(jax.random.PRNGKey(1), (2, stylegan2.num_ws(16), config.w_dim))
    images = np.asarray(synth(params, ws))
    assert images.shape == (2, 16, 16, 3) and np.isfinite(images).all()
    return config, params, w_avg, synth, ws, images


def test_round_trips_through_both_layouts_give_identical_params_and_images(tmp_path, small):
    config, params, w_avg, synth, ws, images = small
    sc.write_nvlabs_pkl(tmp_path / "snap.pkl", sc.jgen_to_nvlabs(config, params, w_avg), mapping_lr_mul=0.05)
    ros = sc.jgen_to_rosinality(config, params)
    sc.write_torch_zip(tmp_path / "train.pt", sc.rosinality_checkpoint(ros))  # train.py: g, d, optim, args
    sc.write_torch_legacy(tmp_path / "converted.pt", sc.rosinality_checkpoint(ros, w_avg, train=False))

    nv_config, nv_params, nv_w_avg = convert.from_nvlabs_pkl(tmp_path / "snap.pkl")
    assert nv_config == config  # mapping_lr_mul 0.05 read from the pickled fc0.bias_gain
    _assert_same_tree(nv_params, params)
    np.testing.assert_array_equal(np.asarray(nv_w_avg), w_avg)

    r_config, r_params, r_w_avg = convert.load_checkpoint(tmp_path / "converted.pt", mapping_lr_mul=0.05)
    assert r_config == config
    _assert_same_tree(r_params, params)
    np.testing.assert_array_equal(np.asarray(r_w_avg), w_avg)

    t_config, t_params, t_w_avg = convert.from_rosinality_pt(tmp_path / "train.pt", mapping_lr_mul=0.05,
                                                             w_avg_samples=64)
    _assert_same_tree(t_params, params)
    # No latent_avg in a train.py checkpoint: w_avg is the mapping's mean over 64 z from PRNGKey(0).
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (64, config.z_dim)))
    np.testing.assert_allclose(np.asarray(t_w_avg), _numpy_mapping(params, z, 0.05).mean(0), rtol=1e-4, atol=1e-5)

    for converted in (nv_params, r_params):
        np.testing.assert_array_equal(np.asarray(synth(converted, ws)), images)


def _torch_official_synthesis(torch, state, ws, resolution):
    """The public StyleGAN2 synthesis computed in PyTorch from NVlabs-named arrays (NCHW, OIHW), written from
    the official formulas: per-sample modulated/demodulated kernels, up layers as a stride-2 transposed
    convolution of the unflipped kernel then the [1, 3, 3, 1] blur (padding 1, gain 4), the image skip as
    zero insertion, padding (2, 1) and the blur; styles = w A^T / sqrt(w_dim) + b; toRGB styles / sqrt(I)."""
    F = torch.nn.functional
    t = lambda k: torch.from_numpy(np.asarray(state[k], np.float32))  # noqa: E731
    fir = torch.from_numpy(sc._FIR * 4)
    lrelu = lambda x: F.leaky_relu(x, 0.2) * np.sqrt(2)  # noqa: E731

    def blur(x, pad0, pad1):
        c = x.shape[1]
        return F.conv2d(F.pad(x, (pad0, pad1, pad0, pad1)), fir.expand(c, 1, 4, 4).contiguous(), groups=c)

    def up2(x):
        n, c, h, w = x.shape
        y = x.new_zeros(n, c, 2 * h, 2 * w)
        y[:, :, ::2, ::2] = x
        return blur(y, 2, 1)

    def affine(p, w):
        return w @ (t(f"{p}.affine.weight") / np.sqrt(w.shape[1])).T + t(f"{p}.affine.bias")

    def layer(p, x, w, up):
        s, kernel, out = affine(p, w), t(f"{p}.weight"), []
        for b in range(x.shape[0]):
            kb = kernel * s[b][None, :, None, None]
            kb = kb * torch.rsqrt((kb ** 2).sum([1, 2, 3]) + 1e-8)[:, None, None, None]
            xb = x[b:b + 1]
            out.append(blur(F.conv_transpose2d(xb, kb.transpose(0, 1), stride=2), 1, 1) if up
                       else F.conv2d(xb, kb, padding=1))
        y = torch.cat(out) + t(f"{p}.noise_const")[None, None] * t(f"{p}.noise_strength")
        return lrelu(y + t(f"{p}.bias")[None, :, None, None])

    def torgb(p, x, w):
        s, kernel = affine(p, w) / np.sqrt(x.shape[1]), t(f"{p}.weight")
        y = torch.cat([F.conv2d(x[b:b + 1], kernel * s[b][None, :, None, None]) for b in range(x.shape[0])])
        return y + t(f"{p}.bias")[None, :, None, None]

    ws = torch.from_numpy(np.array(ws))
    x = t("synthesis.b4.const")[None].repeat(ws.shape[0], 1, 1, 1)
    x = layer("synthesis.b4.conv1", x, ws[:, 0], False)
    img = torgb("synthesis.b4.torgb", x, ws[:, 1])
    for k, r in enumerate(stylegan2.block_resolutions(resolution)[1:], 1):
        x = layer(f"synthesis.b{r}.conv0", x, ws[:, 2 * k - 1], True)
        x = layer(f"synthesis.b{r}.conv1", x, ws[:, 2 * k], False)
        img = up2(img) + torgb(f"synthesis.b{r}.torgb", x, ws[:, 2 * k + 1])
    return img.permute(0, 2, 3, 1).numpy()


def test_converted_generator_matches_a_pytorch_forward_of_the_public_layout(tmp_path, small):
    # The round trip cannot see a wrong transpose or kernel flip that the inverse mapping repeats; this can.
    torch = pytest.importorskip("torch")
    config, params, w_avg, synth, ws, images = small
    state = sc.jgen_to_nvlabs(config, params, w_avg)
    with torch.no_grad():
        ref = _torch_official_synthesis(torch, state, ws, config.resolution)
    np.testing.assert_allclose(images, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_unsupported_generators_get_clear_errors():
    state = sc.random_state(sc.nvlabs_layout(8, 3, 4, 4, 1, 32, 4))
    for extra, message in [("synthesis.input.affine.weight", "StyleGAN3"), ("mapping.embed.weight", "conditional"),
                           ("synthesis.b8.skip.weight", "resnet")]:
        with pytest.raises(convert.CheckpointError, match=message):
            convert.nvlabs_state_to_jgen({**state, extra: np.zeros((1, 1), np.float32)})
    with pytest.raises(convert.CheckpointError, match="no synthesis.b8.conv0.noise_const"):
        convert.nvlabs_state_to_jgen({k: v for k, v in state.items() if k != "synthesis.b8.conv0.noise_const"})
    with pytest.raises(convert.CheckpointError, match="not the \\[1, 3, 3, 1\\] FIR"):
        convert.nvlabs_state_to_jgen({**state, "synthesis.b8.resample_filter": np.ones((4, 4), np.float32) / 16})
    with pytest.raises(convert.CheckpointError, match="unexpected key synthesis.b8.extra"):
        convert.nvlabs_state_to_jgen({**state, "synthesis.b8.extra": np.zeros(1, np.float32)})
    with pytest.raises(convert.CheckpointError, match="not min\\(channel_base // r, channel_max\\)"):
        convert._channel_base_max({4: 8, 8: 16})


def test_float16_trained_generators_warn():
    block = torch_reader.PersistentObject({"type": "class", "class_name": "SynthesisBlock",
                                           "state": {"use_fp16": True, "_modules": {}}})
    g = torch_reader.PersistentObject({"type": "class", "class_name": "Generator",
                                       "state": {"conv_clamp": 256, "_modules": {"b8": block}}})
    with pytest.warns(UserWarning, match=r"conv_clamp \[256\], float16 blocks: True"):
        convert._float16_warning(g)


def test_user_weights_path(tmp_path, monkeypatch):
    monkeypatch.delenv(convert.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("JGEN_CACHE_DIR", str(tmp_path))
    assert convert.user_weights_path() is None
    folder = tmp_path / "stylegan2"
    folder.mkdir()
    (folder / "ffhq.pkl").write_bytes(b"")
    assert convert.user_weights_path() == folder / "ffhq.pkl"
    (folder / "550000.pt").write_bytes(b"")
    with pytest.raises(convert.CheckpointError, match="several checkpoints"):
        convert.user_weights_path()
    monkeypatch.setenv(convert.WEIGHTS_ENV, str(folder / "550000.pt"))
    assert convert.user_weights_path() == folder / "550000.pt"
    monkeypatch.setenv(convert.WEIGHTS_ENV, str(folder / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="JGEN_STYLEGAN2_WEIGHTS"):
        convert.user_weights_path()


def test_real_torch_files_read_and_written_files_load_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.randn(4, 5)
    sd = {"w": base, "t": base.t(), "view": base.view(-1)[3:9], "h": torch.arange(6, dtype=torch.float16),
          "bf": torch.arange(4, dtype=torch.bfloat16), "i": torch.arange(3), "p": torch.nn.Parameter(torch.ones(2)),
          "lin": torch.nn.Linear(3, 2).state_dict(), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}
    for zip_format in (True, False):
        torch.save(sd, tmp_path / "real.pt", _use_new_zipfile_serialization=zip_format)
        got = torch_reader.load_torch_file(tmp_path / "real.pt")
        for k in ("w", "t", "view", "h", "i", "p", "scalar", "empty"):
            np.testing.assert_array_equal(got[k], sd[k].detach().numpy())
            assert got[k].shape == tuple(sd[k].shape) and got[k].dtype == sd[k].detach().numpy().dtype
        np.testing.assert_array_equal(got["bf"].astype(np.float32), sd["bf"].float().numpy())
        assert list(got["lin"]) == ["weight", "bias"] and got["lin"]._metadata == sd["lin"]._metadata
    # A torch module pickled as NVlabs pickles modules (tensors as _load_from_bytes), read inertly.
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    obj = torch_reader.loads_torch_pickle(pickle.dumps(m), unknown_globals="placeholder")
    flat = torch_reader.module_state_dict(obj)
    assert list(flat) == list(m.state_dict())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(flat[k], v.numpy())

    # The writers' files are real torch files.
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "h": np.ones(3, np.float16)}
    sc.write_torch_zip(tmp_path / "ours.pt", {"g_ema": arrays, "n": 1})
    sc.write_torch_legacy(tmp_path / "ours_legacy.pt", {"g_ema": arrays, "n": 1})
    for name in ("ours.pt", "ours_legacy.pt"):
        back = torch.load(tmp_path / name, weights_only=True)
        for k, v in arrays.items():
            np.testing.assert_array_equal(back["g_ema"][k].numpy(), v)

    class _TorchWithoutNVlabsCode(pickle.Unpickler):  # real torch globals; the persistence hook returns its meta
        def find_class(self, module, name):
            if module == "torch_utils.persistence":
                return lambda meta: meta
            if module.startswith("dnnlib"):
                return type("EasyDict", (dict,), {})
            return super().find_class(module, name)

    state = sc.random_state(sc.nvlabs_layout(8, 3, 4, 4, 1, 32, 4))
    sc.write_nvlabs_pkl(tmp_path / "snap.pkl", state)
    snap = _TorchWithoutNVlabsCode(io.BytesIO((tmp_path / "snap.pkl").read_bytes())).load()
    fc0 = snap["G_ema"]["state"]["_modules"]["mapping"]["state"]["_modules"]["fc0"]["state"]
    assert isinstance(fc0["_parameters"]["weight"], torch.nn.Parameter)
    np.testing.assert_array_equal(fc0["_parameters"]["weight"].detach().numpy(), state["mapping.fc0.weight"])
