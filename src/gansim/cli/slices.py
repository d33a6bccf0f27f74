"""The command line's labelled-slice (PACGAN) jobs: train, generate, classify, the built-in brain slices.

Called by :mod:`gansim.cli.main`'s verbs once they know the job is about slices (a folder with
``labels.csv``, a NIfTI stack, a ``pacgan`` model). Each function takes the parsed options and
two printers: ``log`` for progress (stderr) and ``say`` for the result (stdout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gansim.cli.text import number
from gansim.errors import ConfigError, DataError, GansimError

__all__ = ["pacgan_info_rows", "is_slice_data", "train_slices", "generate_slices", "classify_slices", "write_brain_slices_cmd", "parse_per_class"]

Printer = Callable[[str], Any]
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def is_slice_data(path: Path) -> bool:
    """A PACGAN-layout folder (holding ``labels.csv``) or a NIfTI stack with ``labels.csv`` beside it."""
    if path.is_dir():
        return (path / "labels.csv").is_file()
    return _is_nifti(path) and (path.parent / "labels.csv").is_file()


def _read_raw_config(config: Path | None, data: Path, log: Printer) -> dict[str, Any]:
    """gansim's PACGAN config, or PACGAN's own ``config.json`` translated (its notes printed)."""
    from gansim.config import read_config_file
    from gansim.models.pacgan_foreign import is_pacgan_config, translate_pacgan_config

    if config is None:
        return {}
    raw = read_config_file(config)
    if is_pacgan_config(raw):
        translated, notes = translate_pacgan_config(raw, source=str(config), data_dir=data)
        log(f"{config}: PACGAN config.json, translated to gansim's PACGAN config:")
        for note in notes:
            log(f"  {note}")
        return translated
    if raw.get("family", "pacgan") != "pacgan":
        raise ConfigError(f"{config}: a {raw.get('family')!r} config, but {data} holds labelled slices (family pacgan)")
    return raw


def train_slices(data: Path, config: Path | None, output: Path, *, resume: bool, force: bool, overrides: dict[str, Any],
                 set_values: dict[str, Any], log: Printer, say: Printer, merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]) -> Path:
    """``gansim train DATA_DIR [CONFIG] -o RUN`` for slices; ``overrides`` are the common options (train.batch_size ...)."""
    from gansim.config import parse_config, read_config_file
    from gansim.models.pacgan_config import PACGANConfig
    from gansim.models.pacgan_train import train_pacgan

    if resume and (output / "config.json").is_file():
        raw = read_config_file(output / "config.json")
    else:
        raw = _read_raw_config(config, data, log)
    train_over = dict(overrides.get("train", {}))
    if "total_rows" in train_over:
        raise ConfigError("--total-rows: a PACGAN run's length is its schedule (levels × epochs × training images); set schedule.epochs, or train.max_wall_time_s to stop early")
    if "batch_size" in train_over:
        raw = merge(raw, {"schedule": {"batch_sizes": train_over.pop("batch_size")}})
    cfg = parse_config(PACGANConfig, merge(merge(raw, {"family": "pacgan", "train": train_over} if train_over else {"family": "pacgan"}), set_values),
                       source=str(config) if config else "config")
    model_dir = train_pacgan(data, cfg, output, resume=resume, force=force, log=log)
    say(f"model written to {model_dir}")
    return model_dir


def parse_per_class(text: str | None, option: str = "--per-class") -> list[int] | None:
    """``"100,100"`` -> [100, 100]."""
    if text is None:
        return None
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated whole numbers, one per class (e.g. 100,100)") from None
    if any(c < 0 for c in counts):
        raise ConfigError(f"{option} {text!r}: counts must be >= 0")
    return counts


def _label_from_cond(cond: dict[str, float], num_classes: int) -> int | None:
    unknown = sorted(set(cond) - {"label"})
    if unknown:
        raise ConfigError(f"--cond {', '.join(unknown)}: a PACGAN model is conditioned on 'label' only (e.g. --cond label=1)")
    if "label" not in cond:
        return None
    value = cond["label"]
    if value != int(value) or not 0 <= value < num_classes:
        raise ConfigError(f"--cond label={value:g}: expected a class index 0..{num_classes - 1}")
    return int(value)


def generate_slices(model_path: Path, n: int | None, output: Path, *, cond: dict[str, float], per_class: str | None, seed: int,
                    batch_size: int | None, device: str, force: bool, say: Printer) -> Path:
    """``gansim generate PACGAN_MODEL -n N -o OUT.nii.gz``: labelled images and ``labels.csv`` beside them (under torchrun: shared out)."""
    from gansim.models import load_model

    from gansim.training.device import resolve_device
    from gansim.training.distributed import init_distributed

    if not _is_nifti(output):
        raise ConfigError(f"{output}: a PACGAN model writes a NIfTI stack; name the output .nii.gz or .nii")
    dist = init_distributed(device)
    try:
        model = load_model(model_path, device=resolve_device(device, local_rank=dist.local_rank if dist.enabled else None))
        return _generate(model, n, output, cond, per_class, seed, batch_size, force, say, dist)
    finally:
        dist.shutdown()


def _generate(model: Any, n: int | None, output: Path, cond: dict[str, float], per_class: str | None, seed: int, batch_size: int | None,
              force: bool, say: Printer, dist: Any) -> Path:
    """Under torchrun each process makes a contiguous share of the images; process 0 gathers and writes them."""
    from gansim.io.slices import write_slice_set
    from gansim.models.pacgan_model import labels_for_request

    label = _label_from_cond(cond, model.num_classes)
    counts = parse_per_class(per_class)
    if counts is None and n is None:
        raise ConfigError("give -n N (split over the classes, or of one class with --cond label=K) or --per-class N0,N1,...")
    labels = labels_for_request(model.num_classes, n=n, label=label, per_class=counts, source="generate")
    if len(labels) == 0:
        raise ConfigError("nothing to generate: the counts add up to 0 images")
    labels_path = output.parent / "labels.csv"
    others = sorted(p.name for p in output.parent.iterdir() if _is_nifti(p) and p.name != output.name) if output.parent.is_dir() else []
    if others and labels_path.exists():
        # labels.csv belongs to the one image stack of its folder: never relabel another stack's images, even with --force
        raise GansimError(f"{labels_path}: holds the labels of {', '.join(others[:3])} in the same folder; write each generated set into its own folder")
    for path in (output, labels_path):  # both checked before anything is made, so a refusal costs no time and loses nothing
        if path.exists() and not force:
            raise GansimError(f"{path}: already exists; pass --force to overwrite it")
    if dist.enabled:
        import torch.distributed as torch_dist

        share = [len(labels) * r // dist.world_size for r in range(dist.world_size + 1)]
        lo, hi = share[dist.rank], share[dist.rank + 1]
        mine = np.empty((hi - lo, *model.image_shape), dtype=np.float32)
        for start in range(lo, hi, batch_size or 64):
            stop = min(hi, start + (batch_size or 64))
            mine[start - lo : stop - lo] = model.generate(labels[start:stop], seed=seed, batch_size=batch_size or 64, first=start)
        parts: list[Any] = [None] * dist.world_size
        torch_dist.all_gather_object(parts, mine)  # arrays this job made itself, never data read from disk
        if dist.is_main:
            write_slice_set(output, np.concatenate(parts), labels, spacing_mm=model.spacing_mm, description=f"gansim pacgan seed {seed}", force=force, labels_path=labels_path)
        dist.barrier()
        if not dist.is_main:
            return output
    else:
        images = _generate_bounded(model, labels, seed, batch_size or 64, output)
        try:
            write_slice_set(output, images, labels, spacing_mm=model.spacing_mm, description=f"gansim pacgan seed {seed}", force=force, labels_path=labels_path)
        finally:
            _release(images)
    per = ", ".join(f"{model.class_names[k]}: {int(c)}" for k, c in enumerate(np.bincount(labels, minlength=model.num_classes)))
    say(f"{len(labels):,d} images ({per}) written to {output}, labels to {labels_path} (seed {seed})")
    return output


#: above this many bytes the generated stack is built in a temporary file beside the output, not in memory
IN_MEMORY_BYTES = 512 * 2**20


def _generate_bounded(model: Any, labels: np.ndarray, seed: int, batch_size: int, output: Path) -> np.ndarray:
    """The images, made batch by batch into an array (a memory-mapped temporary file when large)."""
    shape = (len(labels), *model.image_shape)
    if int(np.prod(shape)) * 4 <= IN_MEMORY_BYTES:
        out = np.empty(shape, dtype=np.float32)
    else:
        import tempfile

        output.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(prefix=f".{output.name}.", suffix=".images", dir=output.parent, delete=False)
        handle.close()
        out = np.lib.format.open_memmap(handle.name, mode="w+", dtype=np.float32, shape=shape)
    for start in range(0, len(labels), batch_size):
        stop = min(len(labels), start + batch_size)
        out[start:stop] = model.generate(labels[start:stop], seed=seed, batch_size=batch_size, first=start)
    return out


def _release(images: np.ndarray) -> None:
    """Remove the temporary file behind a memory-mapped stack."""
    name = getattr(images, "filename", None)
    if name:
        del images
        Path(name).unlink(missing_ok=True)


def classify_slices(model_path: Path, images_path: Path, output: Path, *, labels: Path | None, batch_size: int, device: str, seed: int,
                    report: Path | None, force: bool, say: Printer, allow_training_subjects: bool = False) -> dict[str, Any]:
    """``gansim classify MODEL IMAGES.nii.gz [--labels labels.csv] -o predictions.csv``."""
    from gansim.io.slices import read_slice_set
    from gansim.metrics.classification import classification_summary, write_predictions_csv
    from gansim.models import load_model

    model = load_model(model_path, device=device)
    if model.manifest.get("family") != "pacgan":
        raise ConfigError(f"{model_path}: a {model.manifest.get('family')!r} model; only PACGAN models classify images")
    report_path = report if report is not None else output.with_suffix(".html")
    for path in (output, report_path):
        if path.exists() and not force:
            raise GansimError(f"{path}: already exists; pass --force to overwrite it")
    slices = read_slice_set(images_path, labels, require_labels=labels is not None)
    images = slices.images
    side = model.image_shape[-1]
    if images.shape[-1] != side or images.shape[-2] != side:
        from gansim.io.slices import downsample

        h, w = images.shape[-2:]
        if h == w and h > side and h % side == 0 and ((h // side) & (h // side - 1)) == 0:
            images = downsample(images, side)
        else:
            raise DataError(f"{slices.source}: {h}×{w} slices; the model classifies {side}×{side} (or a power-of-2 multiple, downsampled)")
    _check_unseen(model.manifest, slices, allow_training_subjects)
    _warn_if_out_of_range(model.scaling, images, slices.source, say)
    probabilities = model.predict_proba(images, batch_size=batch_size, source=slices.source)
    true = slices.labels if labels is not None else None
    write_predictions_csv(output, slices.ids.tolist(), probabilities, labels=true, class_names=model.class_names, force=force)
    # with Subject_ID, the AUC's interval resamples subjects (their slices are correlated), not slices
    groups = slices.subjects if true is not None and slices.subjects is not None else None
    summary = classification_summary(true, probabilities, class_names=model.class_names, seed=seed, groups=groups)
    from gansim.metrics.image_report import classification_sections, write_image_report

    write_image_report(report_path, title=f"gansim classify: {images_path}", sections=classification_sections(summary, title="classification"),
                       notes=[f"model {model_path}", f"images {slices.source}" + (f", labels {labels}" if labels else "")], force=force)
    say(f"predictions for {len(probabilities):,d} images written to {output}; report {report_path}")
    auc = summary.get("auc")
    if auc is not None:
        say(f"ROC AUC (whole set{', one-vs-rest macro' if model.num_classes > 2 else ''}): {auc['auc']:.4f} "
            f"[{auc['lo']:.4f}, {auc['hi']:.4f}] {100 * auc['level']:.0f} % bootstrap CI; accuracy {summary['accuracy']:.4f}")
    return summary


def _check_unseen(manifest: dict[str, Any], slices: Any, allow: bool) -> None:
    """Images of subjects the model trained on are not unseen: refuse them by name (their AUC would be inflated)."""
    from gansim.data.subject_split import subject_hashes

    known = set(((manifest.get("training") or {}).get("data") or {}).get("subject_sha256") or [])
    if allow or not known or slices.subjects is None:
        return
    shared = [str(s) for s in dict.fromkeys(slices.subjects.tolist()) if subject_hashes([s])[0] in known]
    if shared:
        raise DataError(f"{slices.labels_source or slices.source}: subject(s) {', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''} "
                        f"({len(shared)} in all) were in the model's training file; their classification says nothing about unseen subjects. "
                        "Pass --allow-training-subjects to classify them anyway")


def _warn_if_out_of_range(scaling: Any, images: Any, source: str, say: Printer) -> None:
    """Say so when the images are not in the training data's intensities (e.g. already scaled to [-1, 1])."""
    sample = images[:: max(1, len(images) // 256)]
    scaled = scaling.forward(np.asarray(sample, dtype=np.float32))
    outside = float(np.mean(np.abs(scaled) > 1.25))
    if outside > 0.05 or float(np.ptp(scaled)) < 0.25:
        say(f"warning: {source}: these images do not look like the training data's intensities (model scaling {scaling.to_dict()}: "
            f"{100 * outside:.0f} % of pixels fall outside [-1.25, 1.25] after it, range {float(scaled.min()):.3g}..{float(scaled.max()):.3g}); "
            "the probabilities may mean little")


def write_brain_slices_cmd(output: Path, *, seed: int, force: bool, options: dict[str, Any], say: Printer) -> dict[str, Any]:
    """``gansim data brain-slices -o DIR``."""
    from gansim.data.brain_slices import write_brain_slices

    summary = write_brain_slices(output, seed=seed, force=force, **{k: v for k, v in options.items() if v is not None})
    say(summary["description"])
    for split in ("train", "test"):
        part = summary[split]
        say(f"{split}: {part['slices']:,d} slices of {part['subjects']} subjects (per class {part['slices_per_class']}) -> {part['image']}, {part['labels']}")
    say(f"{summary['size']}×{summary['size']} pixels of {summary['spacing_mm'][0]:g} mm; parameters in {Path(output) / 'dataset.json'}")
    return summary


def pacgan_info_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """``gansim info`` rows of a PACGAN model: images, classes, architecture, data, split, best epochs, scores."""
    arch = manifest.get("architecture", {})
    training = manifest.get("training", {})
    data = training.get("data", {})
    rows = [
        ("images", f"{'×'.join(str(v) for v in manifest.get('image_shape', []))} (C×H×W), {manifest.get('spacing_mm')} mm pixels, intensities {manifest.get('intensity')}"),
        ("classes", ", ".join(f"{k}: {name}" for k, name in enumerate(manifest.get("classes", [])))),
        ("architecture", f"levels {arch.get('start_size')}→{arch.get('image_size')} px, {arch.get('in_channels')} channels at level 0, z {arch.get('z_dim')}, "
                         f"embedding {arch.get('embedding_dim')}, {'projection + ' if arch.get('projection') else ''}auxiliary classifier; "
                         f"λ_GP {arch.get('gp_weight')}, λ_cls1 {arch.get('lambda_cls_1')}, λ_cls2 {arch.get('lambda_cls_2')} ({arch.get('lambda_meaning')})"),
    ]
    if data:
        split = data.get("split", {})
        rows.append(("training data", f"{data.get('image_file')} ({number(data.get('images'), ',')} slices, per class {data.get('class_counts')}, sha256 {str(data.get('sha256'))[:16]}…)"))
        rows.append(("split", f"{split.get('mode')}: {split.get('images')} images, {split.get('subjects')} subjects (fold {split.get('fold')} of {split.get('n_folds')}, seed {split.get('seed')})"))
    if training:
        rows.append(("training", f"{number(training.get('rows_seen'), ',')} images seen in {number(training.get('wall_time_s'), '.0f')} s × {training.get('processes')} process(es); "
                                 f"weights: {training.get('weights')}; best epochs per level {training.get('best_epochs')}"))
    metrics = manifest.get("metrics") or {}
    auc = (metrics.get("classifier") or {}).get("auc")
    if auc:
        rows.append(("classifier", f"AUC {auc['auc']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}] on {metrics.get('n_images')} {metrics.get('evaluated_on')}; "
                                   f"accuracy {metrics['classifier'].get('accuracy'):.3f}"))
    overall = (metrics.get("image_quality") or {}).get("overall") or {}
    if overall:
        def value(entry: Any) -> str:
            v = entry.get("value", entry.get("mean")) if isinstance(entry, dict) else entry
            return "—" if v is None else f"{v:.4g}"

        rows.append(("image quality", f"encoder FD {value(overall.get('encoder_fd'))}, KID {value(overall.get('encoder_kid'))}, radiomics FD {value(overall.get('radiomics_fd'))}"))
    return rows


def compare_slices(reference: Path, generated: Path, output: Path, *, seed: int, force: bool, encoder: Path | None, encoder_epochs: int,
                   inception_weights: Path | None, say: Printer) -> dict[str, Any]:
    """``gansim compare REAL GEN -o DIR`` for labelled slices: image-quality metrics per class and an HTML report.

    Both sets need labels (``labels.csv``). Intensities are mapped to [-1, 1] by the reference's
    range. Without ``encoder``, one is trained on a seeded, class-stratified half of the reference
    and the other half is compared with the generated images, so the encoder never saw the
    images it scores.
    """
    from gansim.io.slices import fit_intensity_scaling, read_slice_set
    from gansim.metrics.image_encoder import fit_encoder, load_encoder, save_encoder
    from gansim.metrics.image_quality import image_quality
    from gansim.metrics.image_report import image_grid, metrics_table, write_image_report
    from gansim.models.pacgan_evaluate import QUALITY_COLUMNS, quality_rows

    report_path, metrics_path = output / "report.html", output / "metrics.json"
    for path in (report_path, metrics_path):
        if path.exists() and not force:
            raise GansimError(f"{path}: already exists; pass --force to overwrite it")
    real = read_slice_set(reference, require_labels=True)
    fake = read_slice_set(generated, require_labels=True)
    if real.images.shape[1:] != fake.images.shape[1:]:
        raise DataError(f"{fake.source}: images of shape {fake.images.shape[1:]} (C, H, W); the reference {real.source} has {real.images.shape[1:]}")
    assert real.labels is not None and fake.labels is not None
    scaling = fit_intensity_scaling(real.images, "auto", None, source=real.source)
    real_x, fake_x = scaling.forward(real.images), scaling.forward(fake.images)
    eval_idx = np.arange(len(real.labels))
    if encoder is not None:
        enc = load_encoder(encoder)
        encoder_note = f"encoder {encoder} (given)"
    else:
        rng = np.random.default_rng([seed, 17])
        fit_idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(real.labels == k))[: int(np.sum(real.labels == k)) // 2] for k in np.unique(real.labels)]))
        eval_idx = np.setdiff1d(eval_idx, fit_idx)
        enc = fit_encoder(real_x[fit_idx], real.labels[fit_idx], epochs=encoder_epochs, seed=seed)
        output.mkdir(parents=True, exist_ok=True)
        save_encoder(output / "encoder", enc, force=force)
        encoder_note = f"encoder trained on {len(fit_idx)} of the reference images ({output / 'encoder'}); the other {len(eval_idx)} are compared"
    quality = image_quality(real_x[eval_idx], real.labels[eval_idx], fake_x, fake.labels, encoder=enc, seed=seed,
                            inception_weights=str(inception_weights) if inception_weights else None)
    output.mkdir(parents=True, exist_ok=True)
    from gansim.io.atomic import atomic_path

    with atomic_path(metrics_path, force=force, suffix=".json") as tmp:
        tmp.write_text(json.dumps({"reference": real.source, "generated": fake.source, "intensity": scaling.to_dict(), "encoder": encoder_note, **quality}, indent=2, default=str) + "\n")
    k = int(max(real.labels.max(), fake.labels.max())) + 1
    names = [str(i) for i in range(k)]
    sections = [
        ("reference images", image_grid(real.images, real.labels, names, title=f"reference ({real.source})")),
        ("generated images", image_grid(fake.images, fake.labels, names, title=f"generated ({fake.source})")),
        ("image quality", metrics_table(quality_rows(quality), QUALITY_COLUMNS)),
    ]
    write_image_report(report_path, title=f"gansim compare: {generated} vs {reference}", sections=sections,
                       notes=[encoder_note, f"intensities mapped to [-1, 1] by {scaling.to_dict()}"], force=force)
    overall = quality.get("overall", {})
    rows = quality_rows(quality)
    for label, row in (("generated vs real", rows[0]), ("real vs real (baseline)", rows[-1])):
        say(f"{label}: encoder FD {row['encoder FD']}, encoder KID {row['encoder KID']}, radiomics FD {row['radiomics FD']}")
    say(f"report: {report_path}")
    return {"overall": overall}
