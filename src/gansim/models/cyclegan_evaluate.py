"""The end of a CycleGAN run: translate the test pairs both ways, score them against their partners, write the report.

Each test subject's A volume is translated to B and compared with its real B (and B to A), inside
the target's foreground: masked MAE, PSNR, SSIM (3-D) and NMI, per subject and summarised. The
output is put in the target's own intensity units (the target's percentiles invert the
generator's [-1, 1]), so the scores compare like with like whatever scale the input came in. The
report shows orthogonal views (axial, coronal, sagittal) of input, output, target and their
difference per subject, and the same views of one test volume at the checkpoints of training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.cli.text import number

__all__ = ["evaluate_cyclegan", "translation_scores"]


def translation_scores(model: Any, pairs: list[tuple[Path | None, Path | None]], direction: str) -> tuple[dict[str, Any], list[tuple[str, Any, np.ndarray, Any]]]:
    """Translate every pair's source volume in ``direction`` and score it against the partner; returns (scores, [(name, input, output, target)])."""
    from gansim.io.volumes import VolumeScaling, read_volume, split_name
    from gansim.metrics.volume_quality import evaluate_pairs, foreground_mask

    rows, shown = [], []
    for a_path, b_path in pairs:
        if a_path is None or b_path is None:
            continue
        source, target = (read_volume(a_path), read_volume(b_path)) if direction == "A2B" else (read_volume(b_path), read_volume(a_path))
        name = split_name(source.source)[0]
        mask = foreground_mask(target.data, source=f"subject {name!r} (target)")
        in_target_units = VolumeScaling.fit(target.data, masks=mask, percentiles=model.percentiles, source=str(target.source))
        output = model.translate(source.data, direction, output_scaling=in_target_units, source=str(source.source))
        rows.append((name, output, target.data, mask))
        shown.append((name, source, output, target))
    return evaluate_pairs(rows), shown


def evaluate_cyclegan(model_dir: Path, run_dir: Path, pairs: list[tuple[Path | None, Path | None]], snapshots: list[tuple[int, Path]], *, log: Any) -> dict[str, Any]:
    """Score the model on the test pairs; ``RUN/report/report.html``; the summary goes into the manifest's ``metrics``."""
    from gansim.metrics.image_report import metrics_table, write_image_report
    from gansim.metrics.volume_report import subject_section, training_views
    from gansim.models import load_model
    from gansim.models.model_file import read_manifest, update_manifest

    model = load_model(model_dir, device="cpu")
    log(f"evaluating on {len(pairs)} test pair(s) ...")
    summary: dict[str, Any] = {"evaluated_on": f"{len(pairs)} test pairs", "masks": "the target's foreground (Otsu threshold, holes filled)"}
    sections: list[tuple[str, str]] = []
    for direction in ("A2B", "B2A"):
        scores, shown = translation_scores(model, pairs, direction)
        summary[direction] = scores
        rows = [{"subject": r["subject"], **{k: r[k] for k in ("mae", "psnr", "ssim", "nmi")}} for r in scores["rows"]]
        sections.append((f"{direction}: scores per subject", metrics_table(rows, ["subject", "mae", "psnr", "ssim", "nmi"])))
        for (name, source, output, target), row in zip(shown, rows):
            sections.append(subject_section(f"{direction} {name}", source.data, output, target.data, source.spacing, row,
                                            input_label="A (input)" if direction == "A2B" else "B (input)", output_label=f"{direction} output"))
    if snapshots and pairs and pairs[0][0] is not None and pairs[0][1] is not None:
        from gansim.io.volumes import read_volume

        a, b = read_volume(pairs[0][0]), read_volume(pairs[0][1])
        frames = [(rows_seen, a.data, np.load(path), b.data) for rows_seen, path in snapshots if Path(path).is_file()]
        if frames:
            sections.append(("A2B during training", training_views(frames, a.spacing, title=f"{pairs[0][0]} at checkpoints (patches seen)")))
    report = write_image_report(run_dir / "report" / "report.html", title=f"CycleGAN run {run_dir}", sections=sections, manifest=read_manifest(model_dir),
                                notes=["Outputs are shown and scored in each target's own intensity units (its percentiles); "
                                       f"`gansim translate` gives them in {'the input volume' if model.inference.output_scale == 'input' else 'the target domain'}'s "
                                       "range (inference.output_scale)."], force=True)
    summary["report"] = str(report)
    update_manifest(model_dir, {"metrics": summary})
    for direction in ("A2B", "B2A"):
        s = summary[direction]["summary"]
        log(f"{direction}: " + ", ".join(f"{name} {number(s[key]['mean'], spec, missing='n/a')}" for name, key, spec in
                                         (("MAE", "mae", ".4g"), ("PSNR", "psnr", ".2f"), ("SSIM", "ssim", ".4f"), ("NMI", "nmi", ".4f"))))
    log(f"report: {report}")
    return summary
