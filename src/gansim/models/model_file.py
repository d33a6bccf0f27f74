"""Model files are data: ``weights.safetensors`` + ``manifest.json`` in one directory.

The manifest holds everything that is not a weight: format version, family,
architecture hyper-parameters, column keys and units, condition keys by name,
transforms, latent distribution, the training data's hash and row count,
training time, the held-out split seed and metrics. Loading reads JSON and
safetensors only; nothing is ever unpickled. A pickle (a gaga-phsp ``.pth``,
a ``torch.save`` file) is recognised and refused with a pointer to the importer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gansim.errors import ModelFileError, OutputExistsError

__all__ = ["update_manifest", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "MANIFEST_NAME", "WEIGHTS_NAME", "save_model_dir", "read_manifest", "read_model_dir", "sha256_of_file", "resolve_model_dir"]

MODEL_FORMAT = "gansim-model"
MODEL_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.safetensors"
_PICKLE_HINT = (
    "it is a Python pickle (e.g. a gaga-phsp .pth or a torch.save file). gansim never unpickles model files, "
    "because loading a pickle can run arbitrary code; convert a gaga-phsp model with `gansim import-gaga MODEL.pth -o MODEL_DIR`"
)


def sha256_of_file(path: Path, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    if head == b"PK\x03\x04":  # torch.save's zip container holds data.pkl
        try:
            with zipfile.ZipFile(path) as zf:
                return any(name.endswith(".pkl") for name in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def resolve_model_dir(path: str | Path) -> Path:
    """The model directory for ``path`` (the directory, or its manifest); refuses pickles with a clear error."""
    path = Path(path)
    if path.is_file():
        if path.name == MANIFEST_NAME:
            return path.parent
        if _looks_like_pickle(path):
            raise ModelFileError(f"{path}: refusing to load: {_PICKLE_HINT}")
        raise ModelFileError(f"{path}: not a gansim model; expected a directory holding {MANIFEST_NAME} and {WEIGHTS_NAME}")
    if not path.is_dir():
        raise ModelFileError(f"{path}: no such model directory")
    if not (path / MANIFEST_NAME).is_file():
        raise ModelFileError(f"{path}: no {MANIFEST_NAME} inside; not a gansim model directory")
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a model directory, checked for format and version."""
    model_dir = resolve_model_dir(path)
    manifest_path = model_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{manifest_path}: corrupt manifest, not valid JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{manifest_path}: expected a JSON object")
    if manifest.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{manifest_path}: key 'format' is {manifest.get('format')!r}; expected {MODEL_FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{manifest_path}: key 'format_version' is {version!r}; this gansim reads versions up to {MODEL_FORMAT_VERSION} "
            "(upgrade gansim to read newer model files)"
        )
    for key in ("family", "architecture"):
        if key not in manifest:
            raise ModelFileError(f"{manifest_path}: missing key {key!r}")
    return manifest


def read_model_dir(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Manifest and weights (on ``device``) of a model directory; verifies the weights' checksum."""
    model_dir = resolve_model_dir(path)
    manifest = read_manifest(model_dir)
    weights_path = model_dir / WEIGHTS_NAME
    if not weights_path.is_file():
        raise ModelFileError(f"{model_dir}: missing {WEIGHTS_NAME}")
    expected = manifest.get("weights", {}).get("sha256")
    if expected is not None and sha256_of_file(weights_path) != expected:
        raise ModelFileError(f"{weights_path}: checksum differs from the manifest's 'weights.sha256'; the file is corrupt or was replaced")
    try:
        tensors = load_file(str(weights_path), device=str(device))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{weights_path}: corrupt safetensors file ({err})") from err
    return manifest, tensors


def save_model_dir(path: str | Path, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], *, force: bool = False) -> Path:
    """Write a model directory atomically (temporary directory, then rename)."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        weights_path = tmp / WEIGHTS_NAME
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(weights_path), metadata={"format": MODEL_FORMAT})
        document = dict(manifest)
        document["format"] = MODEL_FORMAT
        document["format_version"] = MODEL_FORMAT_VERSION
        document["weights"] = {"file": WEIGHTS_NAME, "sha256": sha256_of_file(weights_path), "tensors": len(tensors)}
        with open(tmp / MANIFEST_NAME, "w") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, backup / "old")
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def update_manifest(path: str | Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` into a model's manifest (top-level keys replaced) and rewrite it atomically.

    The weights are untouched, so their checksum in the manifest stays valid.
    """
    model_dir = resolve_model_dir(path)
    manifest = read_manifest(model_dir)
    manifest.update(updates)
    tmp = model_dir / f".{MANIFEST_NAME}.tmp"
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, model_dir / MANIFEST_NAME)
    return manifest


def network_tensors(name: str, network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A network's state as model-file tensors: ``{"<name>.<key>": tensor}``."""
    return {f"{name}.{k}": v for k, v in network.state_dict().items()}


def load_network_tensors(network: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str, source: str) -> None:
    """Load the ``<name>.*`` tensors of a model file into ``network``.

    Raises:
        ModelFileError: missing, extra or mis-shaped tensors (the file does not match the manifest's architecture).
    """
    prefix = f"{name}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise ModelFileError(f"{source}: {name} weights do not match the manifest's architecture ({err})") from err


def architecture_settings(manifest: dict[str, Any], settings_class: Any, source: str, what: str) -> Any:
    """The manifest's ``architecture`` (less its descriptive ``generator`` text) validated as ``settings_class``.

    Raises:
        ModelFileError: no ``architecture``, or one that is not a ``what``'s (the validation error quoted).
    """
    try:
        arch = dict(manifest["architecture"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{source}: manifest lacks a valid 'architecture' ({err!r})") from err
    arch.pop("generator", None)
    try:
        return settings_class.model_validate(arch)
    except Exception as err:
        raise ModelFileError(f"{source}: manifest 'architecture' is not a {what}'s ({err})") from err
