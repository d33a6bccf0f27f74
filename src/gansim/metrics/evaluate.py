"""The phase-space quality evaluation: numbers, report and JSON, from two tables or from a trained model.

:func:`compare_tables` computes every metric; :func:`write_evaluation` writes
``report.html`` and ``metrics.json`` into a directory; :func:`evaluate_model`
is what ``gansim train`` runs at the end on the held-out rows (conditional
models are fed the held-out rows' own conditions, row by row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import DataError
from gansim.metrics.distances import wasserstein_per_key

__all__ = ["compare_tables", "write_evaluation", "evaluate_model", "print_metrics", "DEFAULT_MAX_ROWS"]

#: Rows of each sample used by the metrics and plots (deterministic subsample above it).
DEFAULT_MAX_ROWS = 200_000


def _table_metrics(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], keys: Sequence[str], seed: int) -> dict[str, Any]:
    from gansim.metrics.classifier import classifier_two_sample_test
    from gansim.metrics.sliced import sliced_wasserstein

    out: dict[str, Any] = {"wasserstein": wasserstein_per_key(reference, generated, keys)}
    varying = [k for k in keys if float(np.std(reference[k])) > 0 or float(np.std(generated[k])) > 0]
    if len(varying) >= 1:
        out["sliced_wasserstein"] = sliced_wasserstein(reference, generated, varying, seed=seed)
        try:
            out["classifier"] = classifier_two_sample_test(reference, generated, varying, seed=seed)
        except DataError as err:  # too few rows for a classifier: say so in the report instead of failing
            out["classifier"] = {"skipped": str(err)}
    return out


def compare_tables(
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    keys: Sequence[str] | None = None,
    *,
    cond_keys: Sequence[str] = (),
    seed: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
    bins: int = 4,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """All metrics of ``generated`` against ``reference`` (physical units).

    Returns ``(metrics, reference_used, generated_used)``: the subsampled
    tables the metrics were computed on (for the plots).
    """
    from gansim.metrics.binned import per_condition_bins
    from gansim.metrics.subsample import deterministic_subsample

    if keys is None:
        keys = [k for k in reference if k in generated and k not in cond_keys]
    keys = list(keys)
    for key in list(keys) + list(cond_keys):
        if key not in reference:
            raise DataError(f"reference has no column {key!r}; it has {', '.join(reference)}")
        if key not in generated:
            raise DataError(f"generated sample has no column {key!r}; it has {', '.join(generated)}")
    columns = keys + [c for c in cond_keys if c not in keys]
    ref, ref_info = deterministic_subsample({k: np.asarray(reference[k]) for k in columns}, max_rows, seed=seed)
    gen, gen_info = deterministic_subsample({k: np.asarray(generated[k]) for k in columns}, max_rows, seed=seed + 1)
    metrics = _table_metrics(ref, gen, keys, seed)
    metrics["subsample"] = {"reference": ref_info, "generated": gen_info}
    metrics["keys"] = keys
    if cond_keys:
        metrics["cond_keys"] = list(cond_keys)
        metrics["per_condition_bin"] = per_condition_bins(ref, gen, list(cond_keys), keys, bins=bins, metric_fn=lambda r, g, k: _table_metrics(r, g, k, seed))
    return metrics, ref, gen


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_evaluation(
    out_dir: str | Path,
    metrics: Mapping[str, Any],
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    *,
    title: str,
    stats: Sequence[Mapping[str, Any]] | None = None,
    manifest: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    force: bool = False,
) -> Path:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir`` atomically; return the report's path."""
    from gansim.io.atomic import atomic_path
    from gansim.metrics.report import render_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sub = metrics.get("subsample", {})
    notes = list(notes) + [
        f"{name}: {info.get('used'):,} of {info.get('rows'):,} rows used ({info.get('method')}, seed {info.get('seed')})"
        for name, info in sub.items()
        if info
    ]
    page = render_report(reference, generated, metrics["keys"], metrics, title=title, stats=stats, manifest=manifest, notes=notes)
    with atomic_path(out_dir / "metrics.json", force=force) as tmp:
        tmp.write_text(json.dumps(_json_safe(metrics), indent=2) + "\n")
    with atomic_path(out_dir / "report.html", force=force) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_dir / "report.html"


def evaluate_model(model_dir: str | Path, run_dir: str | Path | None = None, *, out_dir: str | Path | None = None, seed: int = 0, max_rows: int = DEFAULT_MAX_ROWS, force: bool = True) -> dict[str, Any]:
    """Compare a trained model with the held-out rows of its training file; write the report; store metrics in the manifest.

    The held-out rows are found again from the split rule and seed in the
    manifest. A conditional model generates one particle per held-out row,
    conditioned on that row's own conditions.
    """
    from gansim.data.split import read_heldout
    from gansim.models import load_model
    from gansim.models.model_file import update_manifest
    from gansim.training.stats import read_stats

    model = load_model(model_dir, device="cpu")
    data = model.manifest["training"]["data"]
    val = data["validation"]
    data_cfg = model.manifest["training"].get("config", {}).get("data", {})
    reader_options = {"tree": data_cfg["tree"]} if data_cfg.get("tree") else {}
    columns = list(model.gan_keys) + list(model.cond_keys)
    particle = model.constants.get("PDGCode") if "PDGCode" in model.constants else None
    reference = read_heldout(data["path"], columns + (["PDGCode"] if particle is not None else []), val["fraction"], val["seed"], **reader_options)
    if particle is not None:  # the model was trained on one particle type: compare with that type only
        keep = reference.pop("PDGCode") == particle
        reference = {k: v[keep] for k, v in reference.items()}
    n = len(next(iter(reference.values())))
    if n == 0:
        raise DataError(f"{data['path']}: no held-out rows to evaluate on (validation fraction {val['fraction']})")
    if n > max_rows:
        from gansim.metrics.subsample import deterministic_subsample

        reference, _ = deterministic_subsample(reference, max_rows, seed=seed)
        n = max_rows
    cond = {k: reference[k] for k in model.cond_keys} if model.cond_keys else None
    generated = model.sample(n, cond=cond, seed=seed + 7)
    if cond:
        generated.update(cond)
    keys = [k for k in model.gan_keys]
    metrics, ref_used, gen_used = compare_tables(reference, generated, keys, cond_keys=model.cond_keys, seed=seed, max_rows=max_rows)
    out = Path(out_dir) if out_dir is not None else (Path(run_dir) / "report" if run_dir is not None else Path(model_dir) / "report")
    stats = read_stats(Path(run_dir)) if run_dir is not None else []
    write_evaluation(
        out, metrics, ref_used, gen_used, title=f"gansim quality report — {Path(model_dir)}", stats=stats, manifest=model.manifest,
        notes=[f"reference: the {n:,} held-out rows of {data['path']} (never seen in training)"], force=force,
    )
    summary = {
        "evaluated_on": "held-out rows",
        "reference_rows": n,
        "w1_rel": {k: v["w1_rel"] for k, v in metrics["wasserstein"].items()},
        "sliced_wasserstein": metrics.get("sliced_wasserstein", {}).get("sw1"),
        "classifier_auc": metrics.get("classifier", {}).get("auc"),
        "classifier_auc_se": metrics.get("classifier", {}).get("auc_se"),
        "report": str(out / "report.html"),
    }
    update_manifest(model_dir, {"metrics": _json_safe(summary)})
    return metrics


def print_metrics(metrics: Mapping[str, Any], console: Any) -> None:
    """The headline numbers on a rich console: W1 per key (unit, relative), sliced W1, classifier AUC."""
    from rich.table import Table

    from gansim.io.phsp.columns import unit_of

    table = Table(title="generated vs reference")
    for col in ("key", "unit", "W1", "W1 / std(ref)"):
        table.add_column(col, justify="left" if col in ("key", "unit") else "right")
    for key, d in metrics["wasserstein"].items():
        table.add_row(key, unit_of(key) or "1", f"{d['w1']:.4g}", f"{d['w1_rel']:.3f}")
    console.print(table)
    sw, clf = metrics.get("sliced_wasserstein"), metrics.get("classifier", {})
    if sw:
        console.print(f"sliced Wasserstein (standardised): {sw['sw1']:.4f}", highlight=False)
    if clf.get("auc") is not None:
        console.print(f"classifier two-sample AUC: {clf['auc']:.4f} ± {clf['auc_se']:.4f} (0.5 = indistinguishable)", highlight=False)
