"""Import gaga-phsp (OpenGATE) GAN model files (``.pth``) without running their pickle.

A gaga-phsp ``.pth`` is a ``torch.save`` zip whose ``data.pkl`` pickles a dict
``{"params": Box, "optim": dict, "g_model_state": OrderedDict, "d_model_state": OrderedDict}``.
Loading it with ``torch.load`` (or ``gaga.load``) unpickles arbitrary globals and can run
arbitrary code. :func:`read_gaga_pth` reads it with a restricted unpickler instead: only
an allow-list of globals (containers, NumPy arrays and scalars, torch tensors and
storages, python-box's ``Box``/``BoxList`` read as plain ``dict``/``list``) can be named;
any other global (``os.system``, ``builtins.eval``, ...) is refused before it is looked up,
so nothing from the file is ever imported or called. ``torch.load`` is never used.

:func:`import_gaga` converts such a file into a gansim model directory
(``manifest.json`` + ``weights.safetensors``) that
:func:`gansim.models.load_model` reads as a :class:`~gansim.models.phsp_gan.PhaseSpaceModel`.

Mapping of gaga-phsp 0.7.6 (``model: "v3"``) onto gansim:

- G ``net.first_layer``, ``net.layer_0 .. layer_{g_layers-1}``, ``net.last_layer`` ->
  ``generator.mlp.net.{0, 2, ..., 2*(g_layers+1)}`` (gansim's MLP interleaves the
  activations at the odd indices, like gaga's ``activation_i`` modules). D likewise
  (``net.1st_layer`` ...) -> ``discriminator.mlp.net.*``.
- gaga's ``leaky_relu`` is ``nn.LeakyReLU()``: slope 0.01.
- Conditions are the last ``len(cond_keys)`` columns of gaga's ``keys`` by position;
  gansim names them (the names of those columns).
- ``x_mean``/``x_std`` (population std, over all columns incl. conditions) become one
  z-score step per side: ``x`` over the generated columns, ``c`` over the conditions.
- ``z_rand_type`` ``"rand"`` -> latent uniform on [0, 1); anything else -> standard normal
  (gaga's ``init_z_rand`` falls back to ``randn`` too).
"""

from __future__ import annotations

import collections
import io
import json
import math
import pickle
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ModelFileError

__all__ = ["read_gaga_pth", "import_gaga", "ALLOWED_GLOBALS"]


# ----------------------------------------------------------------------------- stand-ins
class _BoxStandIn(dict):
    """Receives a pickled ``box.box.Box``: NEWOBJ, SETITEMS, then BUILD with ``_box_config``."""

    def __setstate__(self, state: Any) -> None:  # the Box's options are dropped: only the items matter
        pass


class _BoxListStandIn(list):
    """Receives a pickled ``box.box_list.BoxList``.

    python-box <= 7 appends the items (APPENDS) and BUILDs options; python-box 8 keeps
    them in the BUILD state as ``{"box_options": ..., "items": [...]}``.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict) and "items" in state and not len(self):
            items = state["items"]
            if not isinstance(items, (list, tuple)):
                raise pickle.UnpicklingError(f"BoxList state 'items' is a {type(items).__name__}; expected a list")
            self.extend(items)


class _StorageType:
    """Stands for ``torch.<Type>Storage`` in a pickle: only its dtype is used."""

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, np.dtype(dtype)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_STORAGE_TYPES = {name: _StorageType(name, dt) for name, dt in _STORAGE_DTYPES.items()}


class _Storage:
    """A storage read from the zip: a flat 1-D tensor."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v2: expected a storage, got {type(storage).__name__}")
    if not (isinstance(storage_offset, int) and isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)):
        raise pickle.UnpicklingError("_rebuild_tensor_v2: malformed offset, size or stride")
    if any(not isinstance(v, int) or v < 0 for v in (storage_offset, *size, *stride)):
        raise pickle.UnpicklingError("_rebuild_tensor_v2: negative or non-integer offset, size or stride")
    numel = storage.flat.numel()
    if math.prod(size) > 0:
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        if last >= numel:
            raise pickle.UnpicklingError(f"_rebuild_tensor_v2: tensor of size {size} reaches element {last} of a storage of {numel}")
    return storage.flat.as_strided(size, stride, storage_offset).clone()


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to what pickle protocol 2 uses for bytes: str -> latin-1 bytes."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode is only accepted as encode(str, 'latin1'); got encoding {encoding!r}")
    return obj.encode("latin1")


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"numpy _reconstruct of {subtype!r}; only numpy.ndarray is accepted")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r}; object dtypes are refused")
    return np._core.multiarray.scalar(dtype, data) if hasattr(np, "_core") else np.core.multiarray.scalar(dtype, data)  # type: ignore[attr-defined]


def _numpy_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(obj, str):
        raise pickle.UnpicklingError(f"numpy dtype from {type(obj).__name__}; expected a type code string")
    dt = np.dtype(obj, align, copy)
    if dt.hasobject:
        raise pickle.UnpicklingError(f"numpy dtype {obj!r}: object dtypes are refused")
    return dt


#: ("module", "name") -> what the restricted unpickler hands the pickle for that global.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("box.box", "Box"): _BoxStandIn,
    ("box", "Box"): _BoxStandIn,
    ("box.box_list", "BoxList"): _BoxListStandIn,
    ("box", "BoxList"): _BoxListStandIn,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numpy_dtype,
}
for _np_mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
    ALLOWED_GLOBALS[(_np_mod, "_reconstruct")] = _numpy_reconstruct
    ALLOWED_GLOBALS[(_np_mod, "scalar")] = _numpy_scalar
for _name, _st in _STORAGE_TYPES.items():
    ALLOWED_GLOBALS[("torch", _name)] = _st


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS`; storages come from ``load_storage``."""

    def __init__(self, file: Any, source: str, load_storage: Any = None) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise ModelFileError(
                f"{self._source}: refusing to load: the pickle names the global {module}.{name}, which is not an "
                "allowed gaga-phsp model component (it could run arbitrary code); nothing from the file was executed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._load_storage is None:
            raise pickle.UnpicklingError("persistent id in a pickle that is not inside a torch zip file")
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.200}")
        _, storage_type, key, _location, numel = pid
        return self._load_storage(storage_type, key, numel)


def _restricted_loads(data: bytes, source: str, load_storage: Any = None) -> Any:
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source, load_storage).load()
    except ModelFileError:
        raise
    except Exception as err:  # truncated or malformed pickles raise many types
        raise ModelFileError(f"{source}: corrupt model file: cannot read its pickle ({type(err).__name__}: {err})") from err


def _to_plain(obj: Any, source: str, path: str = "") -> Any:
    """Box/BoxList stand-ins -> dict/list (recursively); refuses object arrays."""
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise ModelFileError(f"{source}: refusing object array at {path or 'top level'}")
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _to_plain(v, source, f"{path}/{k}")) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _to_plain(v, source, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v, source, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return tuple(_to_plain(v, source, f"{path}[{i}]") for i, v in enumerate(obj))
    return obj


def read_gaga_pth(path: str | Path) -> dict[str, Any]:
    """Read a gaga-phsp ``.pth`` (a ``torch.save`` zip) safely, without ``torch.load``.

    Returns the top-level dict (``params``, ``optim``, ``g_model_state``, ``d_model_state``)
    with ``Box``/``BoxList`` as plain ``dict``/``list``, arrays as NumPy arrays and weights
    as CPU tensors. Raises :class:`~gansim.errors.ModelFileError` for a file that is not a
    torch zip, is corrupt, or whose pickle names a global outside :data:`ALLOWED_GLOBALS`
    (the message names the file and the refused ``module.name``).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelFileError(f"{source}: no such file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFileError(f"{source}: not a gaga-phsp/torch .pth zip file ({err}); files from torch.save before torch 1.6 (not zip) are not supported") from err
    with zf:
        pkl_names = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl_names) != 1:
            raise ModelFileError(f"{source}: not a torch .pth zip (expected one '<name>/data.pkl' entry, found {len(pkl_names)})")
        prefix = pkl_names[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in zf.namelist():
            order = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise ModelFileError(f"{source}: unknown byteorder {order!r}")
            big_endian = order == "big"
        storages: dict[str, _Storage] = {}

        def load_storage(storage_type: _StorageType, key: str, numel: Any) -> _Storage:
            if key in storages:
                return storages[key]
            if not re.fullmatch(r"[0-9A-Za-z_.-]+", key):
                raise pickle.UnpicklingError(f"bad storage key {key!r}")
            try:
                raw = zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key!r} is missing from the zip") from None
            dtype = storage_type.dtype.newbyteorder(">" if big_endian else "<") if storage_type.dtype.itemsize > 1 else storage_type.dtype
            if len(raw) % dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key!r} holds {len(raw)} bytes, not a multiple of {dtype.itemsize}")
            arr = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype.newbyteorder("="), copy=True)
            if isinstance(numel, int) and numel != arr.size:
                raise pickle.UnpicklingError(f"storage {key!r} holds {arr.size} elements; the pickle says {numel}")
            storages[key] = _Storage(torch.from_numpy(arr))
            return storages[key]

        try:
            data = zf.read(pkl_names[0])
        except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as err:
            raise ModelFileError(f"{source}: corrupt zip entry {pkl_names[0]} ({err})") from err
        obj = _restricted_loads(data, source, load_storage)
    obj = _to_plain(obj, source)
    if not isinstance(obj, dict):
        raise ModelFileError(f"{source}: the pickle holds a {type(obj).__name__}; expected a dict (a gaga-phsp model)")
    return obj


# ----------------------------------------------------------------------------- import
_GAGA_UNITS = {"Ekine": "MeV", "E": "MeV", "X": "mm", "Y": "mm", "Z": "mm", "dX": "1", "dY": "1", "dZ": "1", "t": "ns", "T": "ns", "w": "1", "weight": "1"}


def _unit(name: str) -> str:
    from gansim.io.phsp.columns import unit_of

    unit = unit_of(name)
    return unit if unit != "?" else _GAGA_UNITS.get(name, "?")


def _json_safe(value: Any) -> Any:
    """A plain-JSON copy of a gaga parameter value (numpy scalars/arrays to numbers/lists), or None if impossible."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def _linear_layers(state: dict[str, torch.Tensor], first: str, n_inner: int, source: str, what: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    names = [first] + [f"layer_{i}" for i in range(n_inner)] + ["last_layer"]
    expected = {f"net.{n}.{p}" for n in names for p in ("weight", "bias")}
    got = set(state)
    if got != expected:
        extra, missing = sorted(got - expected), sorted(expected - got)
        raise ModelFileError(f"{source}: {what} state does not have gaga-phsp v3's layers (unexpected {extra[:6]}, missing {missing[:6]})")
    out = []
    for n in names:
        w, b = state[f"net.{n}.weight"], state[f"net.{n}.bias"]
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ModelFileError(f"{source}: {what} layer {n} has weight {tuple(w.shape)} and bias {tuple(b.shape)}")
        out.append((w.float(), b.float()))
    return out


def _mlp_tensors(layers: list[tuple[torch.Tensor, torch.Tensor]], prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for i, (w, b) in enumerate(layers):
        out[f"{prefix}.mlp.net.{2 * i}.weight"] = w.contiguous()
        out[f"{prefix}.mlp.net.{2 * i}.bias"] = b.contiguous()
    return out


def _zscore_pipeline(keys: list[str], mean: np.ndarray, std: np.ndarray, source: str) -> dict[str, Any]:
    from gansim.data.transforms import TablePipeline, ZScoreTransform

    for k, m, s in zip(keys, mean, std):
        if not (math.isfinite(float(m)) and math.isfinite(float(s)) and float(s) > 0):
            raise ModelFileError(
                f"{source}: column {k!r} has x_mean {float(m)!r} and x_std {float(s)!r}; gaga-phsp divides by x_std, "
                "so a constant (std 0) or non-finite column made its training NaN; this model cannot be imported"
            )
    pipe = TablePipeline(keys, [ZScoreTransform(keys, [float(v) for v in mean], [float(v) for v in std])])
    return pipe.to_dict()


def import_gaga(pth: str | Path, out_dir: str | Path, *, force: bool = False, epoch: int | None = None) -> Path:
    """Convert a gaga-phsp ``.pth`` into a gansim model directory; returns ``out_dir``.

    Args:
        pth: the gaga-phsp model file (read with :func:`read_gaga_pth`; nothing in it runs).
        out_dir: the model directory to write (``manifest.json`` + ``weights.safetensors``).
        force: overwrite an existing ``out_dir`` (otherwise :class:`~gansim.errors.OutputExistsError`).
        epoch: take the G snapshot stored at this epoch (``optim["current_epoch"]``) instead of
            the final ``g_model_state`` (gaga's ``load(..., epoch=N)``).
    """
    from gansim.models.model_file import save_model_dir, sha256_of_file

    pth = Path(pth)
    source = str(pth)
    doc = read_gaga_pth(pth)
    try:
        params = doc["params"]
        g_state = doc["g_model_state"]
    except KeyError as err:
        raise ModelFileError(f"{source}: not a gaga-phsp model: missing top-level key {err.args[0]!r}") from None
    if not isinstance(params, dict):
        raise ModelFileError(f"{source}: 'params' is a {type(params).__name__}; expected a dict")

    def param(name: str, default: Any = ...) -> Any:
        if name in params:
            return params[name]
        if default is ...:
            raise ModelFileError(f"{source}: gaga params lack {name!r}")
        return default

    model_kind = param("model", "v3")
    if model_kind != "v3":
        raise ModelFileError(f"{source}: gaga-phsp model {model_kind!r} is not supported; only 'v3' (plain MLP) can be imported")
    keys = param("keys_list", None)
    if keys is None:
        keys = str(param("keys")).replace("#", " ").split()
    keys = [str(k) for k in keys]
    gaga_cond = param("cond_keys", [])
    if isinstance(gaga_cond, str):
        gaga_cond = gaga_cond.split()
    gaga_cond = [str(k) for k in gaga_cond]
    n_cond = len(gaga_cond)
    x_dim = int(param("x_dim", len(keys)))
    if x_dim != len(keys) or n_cond >= x_dim:
        raise ModelFileError(f"{source}: x_dim {x_dim} does not match keys {keys} with {n_cond} condition(s)")
    x_keys, c_keys = keys[: x_dim - n_cond], keys[x_dim - n_cond :]
    notes = []
    if c_keys != gaga_cond:
        notes.append(f"gaga's cond_keys {gaga_cond} differ from the last {n_cond} keys {c_keys}; gaga conditions by position, so the last columns are the conditions")
    x_mean = np.asarray(param("x_mean"), dtype=np.float64).reshape(-1)
    x_std = np.asarray(param("x_std"), dtype=np.float64).reshape(-1)
    if x_mean.shape != (x_dim,) or x_std.shape != (x_dim,):
        raise ModelFileError(f"{source}: x_mean/x_std have {x_mean.size}/{x_std.size} values; expected {x_dim}")
    activation = str(param("activation", "relu"))
    if activation == "leaky_relu":
        slope = 0.01  # gaga builds nn.LeakyReLU() with its default slope
    elif activation == "relu":
        slope = 0.0
    else:
        raise ModelFileError(f"{source}: gaga activation {activation!r} is not supported (relu, leaky_relu)")
    z_dim, g_dim, g_layers = int(param("z_dim")), int(param("g_dim")), int(param("g_layers"))
    if epoch is not None:
        optim = doc.get("optim") or {}
        epochs = list(optim.get("current_epoch", []))
        if epoch not in epochs:
            raise ModelFileError(f"{source}: no G snapshot at epoch {epoch}; stored epochs: {epochs}")
        g_state = optim["g_model_state"][epochs.index(epoch)]
    g_layers_w = _linear_layers(dict(g_state), "first_layer", g_layers, source, "G")
    if g_layers_w[0][0].shape != (g_dim, z_dim + n_cond) or g_layers_w[-1][0].shape != (x_dim - n_cond, g_dim):
        raise ModelFileError(f"{source}: G weights do not match z_dim {z_dim}, g_dim {g_dim}, {n_cond} condition(s), {x_dim - n_cond} outputs")
    tensors = _mlp_tensors(g_layers_w, "generator")
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{source}: generator weight {name} holds NaN/Inf values (the gaga training diverged)")

    d_info: dict[str, Any] | None = None
    d_state = doc.get("d_model_state")
    if isinstance(d_state, dict) and not param("spectral_norm", False) and param("loss", "wasserstein") != "non-saturating-bce":
        try:
            d_layers_w = _linear_layers(dict(d_state), "1st_layer", int(param("d_layers")), source, "D")
        except ModelFileError:
            d_layers_w = None
        if d_layers_w is not None and d_layers_w[0][0].shape[1] == x_dim and d_layers_w[-1][0].shape[0] == 1:
            tensors.update(_mlp_tensors(d_layers_w, "discriminator"))
            d_info = {"kind": "mlp", "width": int(param("d_dim")), "depth": int(param("d_layers")), "activation": activation, "leaky_slope": slope, "spectral_norm": False}
    if d_info is None:
        notes.append("discriminator not imported (spectral norm, non-saturating-bce or an unexpected layout)")

    z_rand = params.get("z_rand_type")
    if z_rand == "rand" or (z_rand not in ("rand", "randn") and params.get("z_rand") == "uniform"):
        latent: dict[str, Any] = {"dim": z_dim, "distribution": "uniform", "low": 0.0, "high": 1.0}
    else:
        latent = {"dim": z_dim, "distribution": "normal"}
    if n_cond and latent["distribution"] == "uniform":
        notes.append("gaga's generate_samples3 (conditional sampling, used by opengate) always draws randn, ignoring z_rand_type 'rand'; gansim uses the training latent (uniform)")

    optim = doc.get("optim") if isinstance(doc.get("optim"), dict) else {}
    imported_params = {k: _json_safe(v) for k, v in params.items() if k not in ("x_mean", "x_std", "current_gpu_device")}
    manifest = {
        "family": "phsp",
        "architecture": {
            "generator": {"kind": "mlp", "width": g_dim, "depth": g_layers, "activation": activation, "leaky_slope": slope, "inputs": z_dim + n_cond, "outputs": x_dim - n_cond},
            "discriminator": d_info,
            "sampling_weights": "last" if epoch is None else f"epoch {epoch}",
        },
        "keys": [{"name": k, "unit": _unit(k)} for k in x_keys],
        "cond_keys": [{"name": k, "unit": _unit(k)} for k in c_keys],
        "constants": {},
        "output_keys": list(x_keys),
        "transforms": {
            "x": _zscore_pipeline(x_keys, x_mean[: x_dim - n_cond], x_std[: x_dim - n_cond], source),
            "c": _zscore_pipeline(c_keys, x_mean[x_dim - n_cond :], x_std[x_dim - n_cond :], source) if n_cond else None,
        },
        "latent": latent,
        "training": {
            "imported_from": {
                "format": "gaga-phsp .pth",
                "file": pth.name,
                "sha256": sha256_of_file(pth),
                "epoch": epoch,
                "last_epoch": _json_safe(optim.get("last_epoch")),
                "notes": notes,
                "params": imported_params,
            }
        },
        "metrics": {},
    }
    json.dumps(manifest)  # fail here, not half-way through writing, if something is not JSON
    return save_model_dir(out_dir, manifest, tensors, force=force)
