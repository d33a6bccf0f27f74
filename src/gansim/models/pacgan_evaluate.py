"""The end of a PACGAN run: classify the held-out images, score generated ones, write the HTML report.

Held-out images are the validation fold (``validate`` and ``none`` modes) or the test set
(``test`` mode). The report holds image grids per class (real and generated), the training
curves per level, the validation score after every epoch, the classifier's ROC, AUC with its
bootstrap interval and confusion matrix, and the image-quality metrics (SSIM and MS-SSIM, FD and
KID on an encoder trained on the real training images, the radiomics-style FD, each overall and
per class, with the real-versus-real baseline). The summary goes into the model's manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gansim.models.pacgan_config import EvaluationSettings

__all__ = ["evaluate_pacgan", "quality_rows", "QUALITY_COLUMNS"]


def quality_rows(quality: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per scope (overall, each class, the real-real baseline) with the headline distances."""

    def value(entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        return entry.get("value", entry.get("mean"))

    rows = []
    scopes = [("overall", quality.get("overall", {}))] + [(f"class {name}", q) for name, q in quality.get("per_class", {}).items()]
    baseline = quality.get("baseline_real_real", {})
    scopes += [("real vs real (baseline)", baseline.get("overall", baseline))]
    for scope, q in scopes:
        ssim = q.get("ssim", {}) if isinstance(q.get("ssim"), dict) else {}
        ms_ssim = q.get("ms_ssim", {}) if isinstance(q.get("ms_ssim"), dict) else {}
        fd = q.get("encoder_fd") if isinstance(q.get("encoder_fd"), dict) else {}
        rows.append({
            "scope": scope,
            "images (real / generated)": f"{fd.get('n_real', '—')} / {fd.get('n_fake', '—')}",
            "encoder FD": value(q.get("encoder_fd")),
            "encoder KID": value(q.get("encoder_kid")),
            "radiomics FD": value(q.get("radiomics_fd")),
            "Inception FD": value(q.get("inception_fd")),
            "SSIM real-fake": value(ssim.get("real_fake")),
            "SSIM real-real": value(ssim.get("real_real")),
            "SSIM fake-fake": value(ssim.get("fake_fake")),
            "MS-SSIM real-fake": value(ms_ssim.get("real_fake")),
        })
    return rows


#: the columns of :func:`quality_rows` shown in reports
QUALITY_COLUMNS = ["scope", "images (real / generated)", "encoder FD", "encoder KID", "radiomics FD", "Inception FD",
                   "SSIM real-fake", "SSIM real-real", "SSIM fake-fake", "MS-SSIM real-fake"]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate_pacgan(model_dir: Path, run_dir: Path, held_out: np.ndarray, held_out_labels: np.ndarray, train_images: np.ndarray, train_labels: np.ndarray,
                    *, set_name: str, settings: EvaluationSettings, seed: int, level_starts: list[int], sizes: list[int], log: Any,
                    held_out_subjects: np.ndarray | None = None) -> dict[str, Any]:
    """Evaluate the model in ``model_dir`` on held-out images (training intensities, (N, C, H, W)); write ``run_dir/report/report.html``.

    Returns the summary stored under the manifest's ``metrics``.
    """
    from gansim.metrics.classification import classification_summary
    from gansim.metrics.image_encoder import fit_encoder, load_encoder, save_encoder
    from gansim.metrics.image_quality import image_quality
    from gansim.metrics.image_report import classification_sections, image_grid, metrics_table, training_curves, write_image_report
    from gansim.models import load_model
    from gansim.models.model_file import read_manifest, update_manifest

    model = load_model(model_dir, device="cpu")
    names = model.class_names
    log(f"evaluating on the {len(held_out_labels):,d} {set_name} images ...")
    probabilities = model.predict_proba(held_out, source=f"{set_name} images")
    classification = classification_summary(held_out_labels, probabilities, class_names=names, seed=seed, groups=held_out_subjects)
    fake = model.generate(held_out_labels, seed=seed)  # as many generated images as held-out ones, with the same labels
    scale = model.scaling.forward
    if settings.encoder:
        encoder = load_encoder(settings.encoder)
        encoder_path = Path(settings.encoder)
    else:
        encoder = fit_encoder(scale(train_images), train_labels, epochs=settings.encoder_epochs, seed=seed)
        encoder_path = run_dir / "encoder"  # saved: later runs and `gansim compare --encoder` can score with the same features
        save_encoder(encoder_path, encoder, force=True)
    quality = image_quality(scale(held_out), held_out_labels, scale(fake), held_out_labels, encoder=encoder, class_names=names,
                            n_pairs=settings.n_pairs, inception_weights=settings.inception_weights, seed=seed)
    auc = classification.get("auc") or {}
    summary = {
        "evaluated_on": f"{set_name} images",
        "n_images": int(len(held_out_labels)),
        "classifier": {k: classification.get(k) for k in ("accuracy", "balanced_accuracy", "recall", "confusion", "counts", "auc", "auc_skipped")},
        "image_quality": quality,
        "encoder": str(encoder_path),
    }
    stats = _read_jsonl(run_dir / "stats.jsonl")
    validation = [{"rows_seen": r["rows_seen"], "val/auc_real": r["auc_real"], "val/auc_fake": r["auc_fake"], "val/score": r["score"]}
                  for r in _read_jsonl(run_dir / "validation.jsonl")]
    sections = [
        (f"{set_name} images (real)", image_grid(held_out, held_out_labels, names, per_class=settings.grid_per_class, title=f"real {set_name} images")),
        ("generated images", image_grid(fake, held_out_labels, names, per_class=settings.grid_per_class, title=f"generated (seed {seed})")),
        ("training curves", training_curves(stats, level_starts, sizes, title="losses against images seen")),
    ]
    if validation:
        sections.append(("validation score", training_curves(validation, level_starts, sizes, title="whole-set AUC after each epoch")))
    sections += classification_sections(classification, title=f"classifier on the {set_name} images")
    sections.append(("image quality", metrics_table(quality_rows(quality), QUALITY_COLUMNS)))
    report = write_image_report(run_dir / "report" / "report.html", title=f"PACGAN run {run_dir}", sections=sections, manifest=read_manifest(model_dir),
                                notes=[f"{len(held_out_labels)} {set_name} images against as many generated ones with the same labels (seed {seed}).",
                                       "FD and KID use an encoder trained on the real training images (no downloaded weights); SSIM pairs are unpaired same-class images (similarity, not fidelity)."],
                                force=True)
    summary["report"] = str(report)
    update_manifest(model_dir, {"metrics": json.loads(json.dumps(summary, default=_plain))})
    if auc:
        log(f"classifier on the {set_name} images: AUC {auc['auc']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}], accuracy {classification['accuracy']:.3f}")
    log(f"report: {report}")
    return summary


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
