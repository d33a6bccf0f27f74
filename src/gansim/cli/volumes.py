"""The command line's volume (3-D CycleGAN) jobs: train, translate, plan, prepare, the built-in brain volumes.

Called by :mod:`gansim.cli.main` once it knows the job is about volumes (a folder with
``trainA/`` and ``trainB/``, a ``cyclegan`` model or config). ``log`` prints progress (stderr),
``say`` the result (stdout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansim.errors import ConfigError, GansimError

__all__ = ["is_volume_data", "train_volumes", "translate_cmd", "plan_cmd", "prepare_cmd", "write_brain_volumes_cmd", "load_cyclegan_config"]

Printer = Callable[[str], Any]


def is_volume_data(path: Path) -> bool:
    """A CycleGAN data set: a folder holding ``trainA/`` and ``trainB/``."""
    return path.is_dir() and (path / "trainA").is_dir() and (path / "trainB").is_dir()


def load_cyclegan_config(config: Path | None, set_values: dict[str, Any], merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]], overrides: dict[str, Any] | None = None) -> Any:
    """gansim's CycleGAN config from a JSON file (or defaults) with ``--set`` values applied."""
    from gansim.config import parse_config, read_config_file
    from gansim.models.cyclegan_config import CycleGANConfig

    raw = read_config_file(config) if config is not None else {}
    if raw.get("family", "cyclegan") != "cyclegan":
        raise ConfigError(f"{config}: a {raw.get('family')!r} config; volumes train the 'cyclegan' family")
    return parse_config(CycleGANConfig, merge(merge(raw, {"family": "cyclegan", **(overrides or {})}), set_values), source=str(config) if config else "config")


def train_volumes(data: Path, config: Path | None, output: Path, *, resume: bool, force: bool, overrides: dict[str, Any], set_values: dict[str, Any],
                  log: Printer, say: Printer, merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]) -> Path:
    """``gansim train DATA_DIR [CONFIG] -o RUN`` for volumes."""
    from gansim.models.cyclegan_train import train_cyclegan

    if resume and (output / "config.json").is_file():
        config = output / "config.json"
    cfg = load_cyclegan_config(config, set_values, merge, overrides)
    model_dir = train_cyclegan(data, cfg, output, resume=resume, force=force, log=log)
    say(f"model written to {model_dir}")
    return model_dir


def _outputs(inputs: list[Path], output: Path, is_folder: bool) -> list[Path]:
    from gansim.io.volumes import split_name

    if not is_folder:
        return [output]
    return [output / (split_name(p)[0] + split_name(p)[1]) for p in inputs]


def translate_cmd(model_path: Path, source: Path, output: Path, *, direction: str, device: str, overlap: float | None, sw_batch_size: int | None,
                  force: bool, say: Printer) -> list[Path]:
    """``gansim translate MODEL IN -o OUT [--direction A2B|B2A]``: a file or every volume of a folder, header-true, names kept whole."""
    from gansim.io.volumes import read_volume, split_name, write_like
    from gansim.models import load_model

    model = load_model(model_path, device=device)
    if model.manifest.get("family") != "cyclegan":
        raise ConfigError(f"{model_path}: a {model.manifest.get('family')!r} model; only CycleGAN models translate volumes")
    if source.is_dir():
        inputs = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".") and _known(p))
        if not inputs:
            raise GansimError(f"{source}: no volumes (.nii, .nii.gz, .mha, .mhd, .nrrd) in the folder")
    else:
        inputs = [source]
        split_name(source)  # a clear error for an unknown suffix before any work
    targets = _outputs(inputs, output, source.is_dir())
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise GansimError(f"{', '.join(existing[:3])}{' ...' if len(existing) > 3 else ''}: already exist(s); pass --force to overwrite")
    for path, target in zip(inputs, targets):
        volume = read_volume(path)
        out = model.translate(volume.data, direction, overlap=overlap, sw_batch_size=sw_batch_size, source=str(path))
        write_like(target, out, volume, force=force)
        say(f"{path} -> {target} ({direction})")
    return targets


def _known(path: Path) -> bool:
    from gansim.errors import DataError
    from gansim.io.volumes import split_name

    try:
        split_name(path)
        return path.suffix.lower() != ".raw"
    except DataError:
        return False


def plan_cmd(config: Path | None, shape: tuple[int, int, int], batch: int, *, set_values: dict[str, Any], merge: Any, amp: bool, device: str, say: Printer) -> dict[str, Any]:
    """``gansim plan CONFIG --shape X Y Z [--batch B]``: valid shapes near it, padding, parameters, memory of training and inference."""
    from gansim.models.volume_plan import format_plan, memory_plan, required_multiple, valid_shapes_near

    cfg = load_cyclegan_config(config, set_values, merge)
    multiple = required_multiple(cfg.model)
    say(f"generator: {cfg.model.generator}, width {cfg.model.width}, {cfg.model.n_down} stride-2 levels -> every axis a multiple of {multiple}")
    for option in valid_shapes_near(shape, cfg.model, k=3):
        say(f"  {option.kind:5s} {'×'.join(map(str, option.shape))}  padding per axis {option.pads}")
    amp = amp or cfg.train.amp != "off"  # the config's mixed precision unless --amp asks for it
    plan = memory_plan(cfg.model, shape, batch, training=True, amp=amp, patch=cfg.inference.window or cfg.data.patch, identity=cfg.loss.lambda_identity > 0,
                       checkpointing=cfg.loss.gradient_checkpointing, pool_size=cfg.loss.pool_size, ema=cfg.train.ema_halflife_rows is not None, device=device)
    say(format_plan(plan))
    return plan


def prepare_cmd(data: Path, output: Path, *, margin_vox: int, margin_mm: float | None, config: Path | None, set_values: dict[str, Any], merge: Any,
                force: bool, say: Printer) -> dict[str, Any]:
    """``gansim prepare DATA -o OUT``: crop pairs to their foreground (affine updated), print the smallest valid input shape."""
    from gansim.data.volume_prepare import prepare_dataset
    from gansim.io.atomic import atomic_path
    from gansim.models.volume_plan import shape_rule

    cfg = load_cyclegan_config(config, set_values, merge)
    rule = shape_rule(cfg.model)
    multiple = rule.multiple
    summary = prepare_dataset(data, output, margin_vox=margin_vox, margin_mm=margin_mm, pairing=cfg.data.pairing, pairs_csv=cfg.data.pairs_csv,
                              multiple=multiple, minimum=rule.minimum, force=force)
    with atomic_path(output / "prepare.json", force=True, suffix=".json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    say(f"cropped volumes written under {output} (boxes in {output / 'prepare.json'})")
    say(f"largest cropped shape {tuple(summary['max_shape'])}; smallest valid whole-volume input for this generator "
        f"(multiple {multiple}, at least {rule.minimum}): {tuple(summary['smallest_valid_shape'])}")
    return summary


def write_brain_volumes_cmd(output: Path, *, seed: int, force: bool, n_train: int | None, n_test: int | None, size: str | None, unpaired: bool, say: Printer) -> dict[str, Any]:
    """``gansim data brain-volumes -o DIR``."""
    from gansim.data.brain_volumes import PRESETS, write_brain_volumes

    preset = size or "default"
    if preset not in PRESETS:
        raise ConfigError(f"--size {preset!r}: expected one of {', '.join(PRESETS)}")
    shape, spacing = PRESETS[preset]
    options = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v is not None}
    summary = write_brain_volumes(output, shape=shape, spacing_mm=spacing, seed=seed, paired=not unpaired, force=force, **options)
    say(f"{'paired' if not unpaired else 'unpaired'} T1w (A) / T2w (B) brain volumes, {'×'.join(map(str, shape))} voxels of {spacing} mm, written to {output} "
        f"(trainA, trainB, testA, testB; parameters in {output / 'dataset.json'})")
    return summary
