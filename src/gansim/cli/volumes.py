"""The command line's volume (3-D CycleGAN) jobs: train, translate, plan, prepare, the built-in brain volumes.

Called by :mod:`gansim.cli.main` once it knows the job is about volumes (a folder with
``trainA/`` and ``trainB/``, a ``cyclegan`` model or config). ``log`` prints progress (stderr),
``say`` the result (stdout).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansim.cli.text import number
from gansim.errors import ConfigError, DataError, OutputExistsError

__all__ = ["cyclegan_info_rows", "is_volume_data", "translation_targets", "check_translation_targets", "train_volumes", "translate_cmd", "plan_cmd", "prepare_cmd", "write_brain_volumes_cmd", "load_cyclegan_config"]

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


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (resolved paths; for existing files, also hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _companions(target: Path) -> list[Path]:
    """Files written with ``target``: a .mhd header's .raw data file (what SimpleITK names it when writing uncompressed)."""
    from gansim.io.volumes import split_name

    stem, suffix = split_name(target)
    return [target.with_name(stem + ".raw")] if suffix.lower() == ".mhd" else []


def translation_targets(source: Path, output: Path) -> tuple[list[Path], list[Path]]:
    """The (inputs, outputs) of ``gansim translate ... SOURCE -o OUTPUT``, in order, nothing read or written.

    A folder ``source``: its volume files (sorted by name), each to ``OUTPUT/<its name>`` (names
    kept whole: ``ing01.nii.gz`` stays ``ing01.nii.gz``); ``output`` must not be a file. A file
    ``source``: to ``output``, or to ``OUTPUT/<its name>`` when ``output`` is an existing folder.

    Raises:
        DataError: no volume in the folder, an input or output name without a volume suffix,
            ``output`` an existing file for a folder ``source``.
    """
    from gansim.io.volumes import VOLUME_SUFFIXES, split_name, volume_files

    if source.is_dir():
        if output.exists() and not output.is_dir():
            raise DataError(f"{output}: an existing file, but {source} is a folder; give -o a folder (new or existing) for the translated volumes")
        inputs = volume_files(source)
        if not inputs:
            raise DataError(f"{source}: no volumes ({', '.join(VOLUME_SUFFIXES)}) in the folder")
        return inputs, [output / p.name for p in inputs]
    split_name(source)  # a clear error for an unknown suffix before any work
    if not source.is_file():
        raise DataError(f"{source}: no such file or folder")
    if output.is_dir():
        return [source], [output / source.name]
    try:
        split_name(output)
    except DataError:
        raise DataError(f"{output}: not a volume file name (expected {', '.join(VOLUME_SUFFIXES)}) and not an existing folder; "
                        "name the output file, e.g. out.nii.gz, or give a folder that exists") from None
    return [source], [output]


def check_translation_targets(inputs: list[Path], targets: list[Path], force: bool) -> None:
    """Refuse, before anything is translated, outputs that would overwrite an input (even with ``force``),
    that are folders, or that exist (without ``force``).

    Raises:
        DataError: an output (or a .mhd output's .raw file) is one of the inputs, or an existing folder.
        OutputExistsError: outputs exist and not ``force``; the message names them and says to pass --force.
    """
    for target in targets:
        for written in (target, *_companions(target)):
            clash = next((p for p in inputs if _same_file(p, written)), None)
            if clash is not None:
                raise DataError(f"{written}: the output would overwrite the input {clash}; choose another -o (--force never overwrites an input)")
            if written.is_dir():
                raise DataError(f"{written}: an output would replace this folder; choose another -o")
    existing = [str(w) for t in targets for w in (t, *_companions(t)) if w.exists()]
    if existing and not force:
        more = f" ... ({len(existing)} in all)" if len(existing) > 3 else ""
        raise OutputExistsError(f"{', '.join(existing[:3])}{more}: already exist(s); nothing was translated; pass --force to overwrite")


def translate_cmd(model_path: Path, source: Path, output: Path, *, direction: str, device: str, overlap: float | None, sw_batch_size: int | None,
                  force: bool, say: Printer, log: Printer | None = None) -> list[Path]:
    """``gansim translate MODEL IN -o OUT [--direction A2B|B2A]``: a file or every volume of a folder, header-true, names kept whole.

    Everything that can be checked is checked before the first output is written: the outputs
    (:func:`translation_targets`, :func:`check_translation_targets`) and, for a folder, every input
    volume (each read once in full and dropped: a corrupt, 4-D, NaN or empty volume is named
    before any output exists; that costs one more read per volume, small beside a translation).
    ``log`` (default ``say``) gets the progress of that check.
    """
    from gansim.io.volumes import read_volume, write_like
    from gansim.models import load_model

    log = log or say
    if direction not in ("A2B", "B2A"):
        raise ConfigError(f"--direction {direction!r}: expected A2B or B2A")
    inputs, targets = translation_targets(source, output)
    check_translation_targets(inputs, targets, force)
    model = load_model(model_path, device=device)
    if model.manifest.get("family") != "cyclegan":
        raise ConfigError(f"{model_path}: a {model.manifest.get('family')!r} model; only CycleGAN models translate volumes")
    if len(inputs) > 1:
        log(f"checking the {len(inputs)} volumes of {source} before writing any output ...")
        for path in inputs:
            read_volume(path)
    for path, target in zip(inputs, targets):
        volume = read_volume(path)
        out = model.translate(volume.data, direction, overlap=overlap, sw_batch_size=sw_batch_size, source=str(path))
        write_like(target, out, volume, force=force)
        say(f"{path} -> {target} ({direction})")
    return targets


def plan_cmd(config: Path | None, shape: tuple[int, int, int], batch: int, *, set_values: dict[str, Any], merge: Any, amp: bool, device: str, say: Printer) -> dict[str, Any]:
    """``gansim plan CONFIG --shape X Y Z [--batch B]``: valid shapes near it, padding, parameters, memory of training and inference."""
    from gansim.models.volume_plan import config_memory_plan, format_plan, required_multiple, valid_shapes_near

    cfg = load_cyclegan_config(config, set_values, merge)
    multiple = required_multiple(cfg.model)
    say(f"generator: {cfg.model.generator}, width {cfg.model.width}, {cfg.model.n_down} stride-2 levels -> every axis a multiple of {multiple}")
    for option in valid_shapes_near(shape, cfg.model, k=3):
        say(f"  {option.kind:5s} {'×'.join(map(str, option.shape))}  padding per axis {option.pads}")
    amp = amp or cfg.train.amp != "off"  # the config's mixed precision unless --amp asks for it
    # training steps on data.patch; translation slides windows of inference.window (null: the patch)
    plan = config_memory_plan(cfg, shape, batch, amp=amp, device=device)
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


def write_brain_volumes_cmd(output: Path, *, seed: int, force: bool, n_train: int | None, n_test: int | None, preset: str | None, unpaired: bool,
                            say: Printer) -> dict[str, Any]:
    """``gansim data brain-volumes -o DIR [--preset NAME] [--subjects N] [--test-subjects M]`` (M may be 0: no testA/testB)."""
    from gansim.data.brain_volumes import PRESETS, write_brain_volumes

    name = preset or "default"
    if name not in PRESETS:
        known = "; ".join(f"{key!r} ({'×'.join(map(str, shape))} voxels of {'×'.join(f'{s:g}' for s in spacing)} mm)" for key, (shape, spacing) in PRESETS.items())
        raise ConfigError(f"--preset {name!r}: expected one of {known}")
    shape, spacing = PRESETS[name]
    options = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v is not None}
    summary = write_brain_volumes(output, shape=shape, spacing_mm=spacing, seed=seed, paired=not unpaired, force=force, **options)
    folders = "trainA, trainB, testA, testB" if "test" in summary else "trainA, trainB; no test set (--test-subjects 0)"
    say(f"{'paired' if not unpaired else 'unpaired'} T1w (A) / T2w (B) brain volumes, {'×'.join(map(str, shape))} voxels of {spacing} mm, written to {output} "
        f"({folders}; parameters in {output / 'dataset.json'})")
    return summary


def _shape(value: Any) -> str:
    return "×".join(str(v) for v in value) if isinstance(value, (list, tuple)) and value else "?"


#: headline scores of ``gansim info``: manifest key, label, format, unit
_SCORES = (("mae", "MAE", ".4g", ""), ("psnr", "PSNR", ".2f", " dB"), ("ssim", "SSIM", ".3f", ""), ("nmi", "NMI", ".3f", ""))


def cyclegan_info_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """``gansim info`` rows of a CycleGAN model: networks, paired or not, training data, intensity scaling,
    inference settings, training length and the test scores per direction (when the run was scored).

    Every value is read with ``.get``: a manifest missing a key (an older or hand-edited one) shows '?'.
    """
    arch = manifest.get("architecture") or {}
    training = manifest.get("training") or {}
    data = training.get("data") or {}
    config = training.get("config") or {}
    loss = config.get("loss") or {}
    if arch.get("generator") == "unet":
        generator = f"3-D U-Net, width {arch.get('width')}, depth {arch.get('n_down')}"
    else:
        generator = f"3-D ResNet, width {arch.get('width')}, {arch.get('n_down')} stride-2 levels, {arch.get('n_blocks')} residual blocks"
    rows = [
        ("generators", f"{generator}, norm {arch.get('norm')}, {arch.get('channels')} channel(s) (G_AB and G_BA)"),
        ("critics", f"PatchGAN, width {arch.get('d_width')}, {arch.get('d_layers')} stride-2 layers (D_A and D_B)"),
        ("domains", ", ".join(f"{k}: {v}" for k, v in (manifest.get("domains") or {}).items()) or "?"),
    ]
    paired = manifest.get("paired")
    objective = f"paired L1 λ {number(loss.get('lambda_paired'), 'g')}" if paired else "no paired L1"
    rows.append(("paired", f"{'yes' if paired else 'no' if paired is not None else '?'} ({objective}; {loss.get('loss', '?')} loss, "
                           f"cycle λ {number(loss.get('lambda_cycle'), 'g')}, identity {number(loss.get('lambda_identity'), 'g')}·λ)"))
    if data:
        shapes = data.get("shapes") or {}
        counts = ", ".join(f"{len(shapes.get(side) or [])} {side}" for side in ("A", "B")) if shapes else f"{len(data.get('train') or [])} pairs"
        pairing = data.get("pairing", "?")
        rows.append(("training data", f"{data.get('path')} ({counts} volumes; pairing {pairing}, "
                                      f"{'paired' if data.get('paired') else 'unpaired' if data.get('paired') is not None else '?'} data; "
                                      f"generator multiple {_shape(data.get('required_multiple'))})"))
    intensity = manifest.get("intensity") or {}
    if intensity:
        domains = intensity.get("domains") or {}
        ranges = "; ".join(f"{side} {number(d.get('lo'))}..{number(d.get('hi'))}" for side, d in domains.items() if isinstance(d, dict))
        rows.append(("intensity", f"{intensity.get('mode', '?')}, percentiles {intensity.get('percentiles')} -> [-1, 1]" + (f"; domain ranges from training {ranges}" if ranges else "")))
    inference = manifest.get("inference") or {}
    if inference:
        rows.append(("inference", f"sliding windows of {_shape(inference.get('window'))}, overlap {inference.get('overlap')}, "
                                  f"{inference.get('sw_batch_size')} per forward; output scale {inference.get('output_scale')}; "
                                  f"weights {manifest.get('sampling_weights', '?')}"))
    if training:
        rows.append(("training", f"{number(training.get('rows_seen'), ',')} patches seen ({number(training.get('iterations'), ',')} iterations) in "
                                 f"{number(training.get('wall_time_s'), '.0f')} s × {training.get('processes', '?')} process(es); stopped by {training.get('stopped_by', '?')}"))
    metrics = manifest.get("metrics") or {}
    for direction in ("A2B", "B2A"):
        summary = (metrics.get(direction) or {}).get("summary") or {}
        if not summary:
            continue
        entries = [(label, summary.get(key), spec, unit) for key, label, spec, unit in _SCORES if isinstance(summary.get(key), dict)]
        if not entries:
            continue
        counts = {entry.get("n") for _, entry, _, _ in entries}
        one_n = len(counts) == 1  # every score over the same subjects: say n once
        parts = [f"{label} {number(entry.get('mean'), spec)}{unit}" + ("" if one_n else f" (n {entry.get('n', '?')})") for label, entry, spec, unit in entries]
        infinite = next((entry.get("n_infinite") for label, entry, _, _ in entries if label == "PSNR"), None)
        if infinite:
            parts.append(f"{infinite} subject(s) with infinite PSNR (identical volumes) left out of its mean")
        where = f" on {metrics['evaluated_on']}" if metrics.get("evaluated_on") else ""
        rows.append((f"scores {direction}", ("mean over n = " + str(next(iter(counts))) if one_n else "mean") + ": " + ", ".join(parts) + where))
    return rows
