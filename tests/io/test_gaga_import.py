"""Importing gaga-phsp .pth models: same particles as gaga-phsp for the same latent input; pickles never run."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.errors import ModelFileError, OutputExistsError
from gansim.io.gaga import import_gaga, read_gaga_pth
from gansim.models import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "gaga"


def _generate(model, z: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    c_norm = None
    if c is not None:
        c_norm = torch.from_numpy(model.c_pipeline.forward({k: c[:, i] for i, k in enumerate(model.cond_keys)}))
    with torch.inference_mode():
        table = model.x_pipeline.inverse(model.generator(torch.from_numpy(z), c_norm))
    return np.stack([table[k].numpy() for k in model.gan_keys], axis=1)


def test_read_gaga_pth_structure() -> None:
    doc = read_gaga_pth(FIXTURES / "gaga_nc.pth")
    assert set(doc) == {"params", "optim", "g_model_state", "d_model_state"}
    params = doc["params"]
    assert type(params) is dict and params["keys_list"] == ["Ekine", "X", "Y"] and type(params["keys_list"]) is list
    assert params["x_mean"].shape == (1, 3) and params["x_mean"].dtype == np.float32
    w = doc["g_model_state"]["net.first_layer.weight"]
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32 and w.shape == (16, 3)
    assert doc["optim"]["current_epoch"] == [2] and len(doc["optim"]["g_model_state"]) == 1


def test_import_non_conditional_matches_gaga(tmp_path: Path) -> None:
    out = import_gaga(FIXTURES / "gaga_nc.pth", tmp_path / "nc")
    model = load_model(out, device="cpu")
    assert model.gan_keys == ["Ekine", "X", "Y"] and model.cond_keys == []
    assert model.latent == {"dim": 3, "distribution": "uniform", "low": 0.0, "high": 1.0}
    assert model.manifest["architecture"]["generator"]["activation"] == "leaky_relu"
    assert model.manifest["architecture"]["generator"]["leaky_slope"] == 0.01
    z = np.load(FIXTURES / "nc_z.npy")
    expected = np.load(FIXTURES / "nc_expected.npy")
    np.testing.assert_allclose(_generate(model, z), expected, rtol=1e-5, atol=1e-6)
    # sampling through the public API works too
    sample = model.sample(10, seed=1)
    assert set(sample) == {"Ekine", "X", "Y"} and sample["X"].shape == (10,)


def test_import_conditional_matches_gaga(tmp_path: Path) -> None:
    out = import_gaga(FIXTURES / "gaga_cond.pth", tmp_path / "cond")
    model = load_model(out, device="cpu")
    assert model.gan_keys == ["X", "Y"] and model.cond_keys == ["cx"]
    assert model.latent["distribution"] == "normal"
    assert model.manifest["architecture"]["generator"]["activation"] == "relu"
    z = np.load(FIXTURES / "cond_z.npy")
    c = np.load(FIXTURES / "cond_c.npy")
    expected = np.load(FIXTURES / "cond_expected.npy")
    np.testing.assert_allclose(_generate(model, z, c), expected, rtol=1e-5, atol=1e-5)
    sample = model.sample(5, cond={"cx": 1.0}, seed=3)
    assert set(sample) == {"X", "Y"}


def test_manifest_and_discriminator(tmp_path: Path) -> None:
    out = import_gaga(FIXTURES / "gaga_cond.pth", tmp_path / "m")
    manifest = json.loads((out / "manifest.json").read_text())
    imported = manifest["training"]["imported_from"]
    assert imported["format"] == "gaga-phsp .pth" and imported["params"]["cond_keys"] == ["cx"]
    assert manifest["transforms"]["x"]["steps"][0]["kind"] == "zscore"
    assert manifest["transforms"]["c"]["keys"] == ["cx"]
    from safetensors.torch import load_file

    tensors = load_file(str(out / "weights.safetensors"))
    doc = read_gaga_pth(FIXTURES / "gaga_cond.pth")
    assert torch.equal(tensors["discriminator.mlp.net.0.weight"], doc["d_model_state"]["net.1st_layer.weight"])
    assert torch.equal(tensors["discriminator.mlp.net.6.bias"], doc["d_model_state"]["net.last_layer.bias"])
    assert torch.equal(tensors["generator.mlp.net.4.weight"], doc["g_model_state"]["net.layer_1.weight"])


def test_import_refuses_existing_out_dir(tmp_path: Path) -> None:
    out = import_gaga(FIXTURES / "gaga_nc.pth", tmp_path / "m")
    with pytest.raises(OutputExistsError):
        import_gaga(FIXTURES / "gaga_nc.pth", out)
    assert import_gaga(FIXTURES / "gaga_nc.pth", out, force=True) == out


def test_import_epoch_snapshot(tmp_path: Path) -> None:
    out = import_gaga(FIXTURES / "gaga_nc.pth", tmp_path / "e2", epoch=2)
    assert load_model(out, device="cpu").manifest["training"]["imported_from"]["epoch"] == 2
    with pytest.raises(ModelFileError, match="epoch 7"):
        import_gaga(FIXTURES / "gaga_nc.pth", tmp_path / "e7", epoch=7)


class _Payload:
    """Pickles as os.system('touch MARKER')."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


def _torch_like_zip(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", payload)
        zf.writestr("evil/byteorder", "little")
        zf.writestr("evil/version", "3\n")


@pytest.mark.parametrize("payload_cls, refused", [(_Payload, "posix.system"), (_EvalPayload, "builtins.eval")])
def test_malicious_pickle_in_zip_is_refused_and_never_runs(tmp_path: Path, payload_cls, refused: str) -> None:
    marker = tmp_path / "PWNED"
    # the payload hides inside an otherwise plausible gaga dict
    evil = pickle.dumps({"params": {"keys": "X Y"}, "g_model_state": payload_cls(marker)}, protocol=2)
    # protocol 2 names Python 3's builtins module "__builtin__" (fix_imports)
    refused_names = {"posix.system", "nt.system", "os.system"} if refused == "posix.system" else {refused, "__builtin__.eval"}
    path = tmp_path / "evil.pth"
    _torch_like_zip(path, evil)
    with pytest.raises(ModelFileError) as info:
        read_gaga_pth(path)
    assert str(path) in str(info.value)
    assert any(name in str(info.value) for name in refused_names)
    with pytest.raises(ModelFileError):
        import_gaga(path, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_plain_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(ModelFileError, match="not a gaga-phsp/torch .pth zip"):
        read_gaga_pth(path)
    # the restricted unpickler itself refuses it by name too
    from gansim.io.gaga import _restricted_loads

    with pytest.raises(ModelFileError, match=r"(posix|nt|os)\.system"):
        _restricted_loads(path.read_bytes(), str(path))
    for global_name in (b"subprocess\nPopen", b"builtins\nexec", b"torch\nload"):
        with pytest.raises(ModelFileError, match=global_name.decode().replace("\n", ".")):
            _restricted_loads(b"\x80\x02c" + global_name + b"\n)R.", "x.pth")
    assert not marker.exists()


def test_corrupt_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ModelFileError, match="garbage.pth"):
        read_gaga_pth(garbage)
    good = (FIXTURES / "gaga_nc.pth").read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError):
        read_gaga_pth(truncated)
    # a zip whose pickle is cut short
    with zipfile.ZipFile(FIXTURES / "gaga_nc.pth") as zf:
        pkl = zf.read("gaga_nc/data.pkl")
    cut = tmp_path / "cut.pth"
    _torch_like_zip(cut, pkl[: len(pkl) // 2])
    with pytest.raises(ModelFileError, match="corrupt"):
        read_gaga_pth(cut)
    # a zip without data.pkl
    empty = tmp_path / "empty.pth"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("a/version", "3")
    with pytest.raises(ModelFileError, match="data.pkl"):
        read_gaga_pth(empty)
    # a storage missing from the zip
    missing = tmp_path / "missing.pth"
    with zipfile.ZipFile(FIXTURES / "gaga_nc.pth") as src, zipfile.ZipFile(missing, "w") as dst:
        for name in src.namelist():
            if name != "gaga_nc/data/3":
                dst.writestr(name.replace("gaga_nc/", "missing/"), src.read(name))
    with pytest.raises(ModelFileError, match="missing"):
        read_gaga_pth(missing)
    with pytest.raises(ModelFileError, match="no such file"):
        read_gaga_pth(tmp_path / "absent.pth")


def test_box7_boxlist_with_appends_and_numpy1_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-box <= 7 pickles BoxList items with APPENDS (box 8: inside BUILD); numpy 1.x names numpy.core.multiarray."""
    import sys
    import types

    from gansim.io.gaga import _restricted_loads, _to_plain

    # Stand-ins of python-box 7's classes, pickled with Python's default protocol-2 reduction:
    # NEWOBJ, SETITEMS/APPENDS, then BUILD with the instance __dict__.
    box_mod, list_mod = types.ModuleType("box.box"), types.ModuleType("box.box_list")

    class Box(dict):
        pass

    class BoxList(list):
        pass

    Box.__module__, Box.__qualname__ = "box.box", "Box"
    BoxList.__module__, BoxList.__qualname__ = "box.box_list", "BoxList"
    box_mod.Box, list_mod.BoxList = Box, BoxList
    pkg = types.ModuleType("box")
    pkg.__path__ = []  # a package, so "box.box" can be imported by the pickler
    pkg.box, pkg.box_list = box_mod, list_mod
    monkeypatch.setitem(sys.modules, "box", pkg)
    monkeypatch.setitem(sys.modules, "box.box", box_mod)
    monkeypatch.setitem(sys.modules, "box.box_list", list_mod)
    keys = BoxList(["A", "B"])
    keys.box_class, keys.box_options = Box, {"frozen_box": False}
    params = Box(keys_list=keys, m=np.float64(1.5), x_mean=np.arange(3, dtype=np.float32).reshape(1, 3))
    params._box_config = {"box_class": Box, "__created": True}
    data = pickle.dumps({"params": params}, protocol=2)
    import pickletools

    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert {"NEWOBJ", "APPENDS", "SETITEMS", "BUILD"} <= ops
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    for name in ("box", "box.box", "box.box_list"):
        monkeypatch.delitem(sys.modules, name)
    obj = _to_plain(_restricted_loads(data, "box7.pth"), "box7.pth")
    assert obj["params"]["keys_list"] == ["A", "B"] and type(obj["params"]["keys_list"]) is list
    assert type(obj["params"]) is dict and obj["params"]["m"] == 1.5
    np.testing.assert_array_equal(obj["params"]["x_mean"], [[0.0, 1.0, 2.0]])


def test_import_gaga_command_line(tmp_path):  # type: ignore[no-untyped-def]
    """`gansim import-gaga` writes a model that `gansim generate` uses; `gansim generate` refuses the .pth itself."""
    from typer.testing import CliRunner

    from gansim.cli.main import app
    from gansim.io.phsp import read_table

    runner = CliRunner()
    pth = FIXTURES / "gaga_nc.pth"
    result = runner.invoke(app, ["generate", str(pth), "-n", "10", "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == 2 and "import-gaga" in result.output
    result = runner.invoke(app, ["import-gaga", str(pth), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["generate", str(tmp_path / "m"), "-n", "1000", "-o", str(tmp_path / "g.npy"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len(read_table(tmp_path / "g.npy")["Ekine"]) == 1000
