"""The SPECT demo's report: GAN source vs analog Monte Carlo, run by run, next to the Monte Carlo's own noise.

Every number for the GAN is shown beside the same number for two analog runs that differ
only by their seed: that is what "as good as Monte Carlo" means at these statistics.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from gansim.io.atomic import atomic_path

__all__ = ["write_spect_report"]

COMPARED_KEYS = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z", "TimeFromBeginOfEvent"]
MAX_ROWS = 60_000  # rows per sample for the metrics: the classifier's standard error is then ~0.003


def _run_rows(table: dict[str, np.ndarray], run: int, threshold: float) -> dict[str, np.ndarray]:
    keep = (table["RunID"] == run) & (table["KineticEnergy"] > threshold)
    return {k: table[k][keep] for k in COMPARED_KEYS}


def _particle_metrics(reference: dict[str, np.ndarray], other: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    from gansim.metrics.evaluate import compare_tables

    metrics, ref_used, other_used = compare_tables(reference, other, COMPARED_KEYS, seed=seed, max_rows=MAX_ROWS)
    w = metrics["wasserstein"]
    clf = metrics.get("classifier", {})
    return {
        "auc": float(clf.get("auc", float("nan"))),
        "auc_se": float(clf.get("auc_se", float("nan"))),
        "sw1": float(metrics.get("sliced_wasserstein", {}).get("sw1", float("nan"))),
        "w1_rel": {k: float(v["w1_rel"]) for k, v in w.items()},
        "max_w1_rel": max(float(v["w1_rel"]) for v in w.values()),
        "_tables": (ref_used, other_used),
    }


def _projection_figure(reference: np.ndarray, gan: np.ndarray, noise: np.ndarray, window: str) -> str:
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    vmax = max(float(reference.max()), float(gan.max()), 1e-12)
    for ax, image, title in zip(axes[:3], (reference, noise, gan), ("Monte Carlo", "Monte Carlo, other seed", "GAN")):
        im = ax.imshow(image, origin="lower", cmap="gray_r", vmin=0, vmax=vmax)
        ax.set_title(f"{title} ({window})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    axes[3].plot(reference.sum(axis=0), label="Monte Carlo")
    axes[3].plot(noise.sum(axis=0), label="MC, other seed", alpha=0.7)
    axes[3].plot(gan.sum(axis=0), label="GAN")
    axes[3].set_title("profile (sum over rows)")
    axes[3].legend(fontsize=7)
    return _png(fig)


def write_spect_report(results: dict[str, Any], labels: list[str], report_dir: Path, *, threshold: float, training: Path, title: str) -> dict[str, Any]:
    """Compare the ``gan`` and ``analog_noise`` simulations with ``analog``; write ``report.html``; return the headline numbers."""
    from gansim.io.phsp import read_table
    from gansim.metrics.report import _STYLE, _table, histograms_1d
    from gansim.sim.actors.projection import compare_projections

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    tables = {kind: read_table(results[kind]["dir"] / "exit.npy") for kind in ("analog", "analog_noise", "gan")}
    images = {kind: results[kind]["actors"]["projection"].results["images"] for kind in tables}
    windows = results["analog"]["actors"]["projection"].results["windows"]
    stats = {kind: results[kind]["actors"]["stats"].results for kind in tables}
    peak = windows.index("photopeak") if "photopeak" in windows else 0  # the window the headline numbers use

    def speed(kind: str) -> float:
        t = results[kind]["timing"]
        return t["particles"] / max(t["seconds"], 1e-9)

    headline: dict[str, Any] = {
        "mc_particles_per_s": speed("analog"),
        "gan_particles_per_s": speed("gan"),
        "speed_ratio": speed("gan") / speed("analog"),
        "energy_threshold_MeV": threshold,
        "projection_window": windows[peak],
        "runs": [],
    }
    sections: list[str] = []
    summary_rows: list[list[Any]] = []
    for run, label in enumerate(labels):
        reference = _run_rows(tables["analog"], run, threshold)
        gan = _particle_metrics(reference, _run_rows(tables["gan"], run, threshold), seed=run)
        noise = _particle_metrics(reference, _run_rows(tables["analog_noise"], run, threshold), seed=run)
        projection = {}
        for kind in ("gan", "analog_noise"):
            projection[kind] = [compare_projections(images[kind][run][w], images["analog"][run][w]) for w in range(len(windows))]
        counts = {kind: stats[kind]["runs"][run]["total"] for kind in tables}
        entry = {
            "run": run,
            "label": label,
            "gan": {"auc": gan["auc"], "auc_se": gan["auc_se"], "sw1": gan["sw1"], "max_w1_rel": gan["max_w1_rel"], "w1_rel": gan["w1_rel"], "sad": projection["gan"][peak]["sad"], "sum_difference": projection["gan"][peak]["sum_difference"]},
            "noise": {"auc": noise["auc"], "auc_se": noise["auc_se"], "sw1": noise["sw1"], "max_w1_rel": noise["max_w1_rel"], "w1_rel": noise["w1_rel"], "sad": projection["analog_noise"][peak]["sad"], "sum_difference": projection["analog_noise"][peak]["sum_difference"]},
            "counts": counts,
        }
        headline["runs"].append(entry)
        summary_rows.append([f"{run}: {label}", gan["auc"], noise["auc"], gan["max_w1_rel"], noise["max_w1_rel"], entry["gan"]["sad"], entry["noise"]["sad"], 100 * entry["gan"]["sum_difference"], 100 * entry["noise"]["sum_difference"]])
        ref_used, gan_used = gan["_tables"]
        part = [f"<h2>Run {run}: {html.escape(label)}</h2>"]
        part.append(_table(
            ["source", "decays", "events", "zero-energy events", "exit particles", "particles / decay"],
            [[kind, c["decays"], c["events"], c["zero_energy"], c["particles"], c["particles"] / max(c["decays"], 1)] for kind, c in counts.items()],
        ))
        part.append(_table(
            ["key", "W1/std GAN vs MC", "W1/std MC vs MC"],
            [[k, gan["w1_rel"][k], noise["w1_rel"][k]] for k in COMPARED_KEYS],
        ))
        part.append(_table(
            ["window", "SAD % GAN vs MC", "SAD % MC vs MC", "sum difference % GAN", "sum difference % MC other seed"],
            [[w, projection["gan"][i]["sad"], projection["analog_noise"][i]["sad"], 100 * projection["gan"][i]["sum_difference"], 100 * projection["analog_noise"][i]["sum_difference"]] for i, w in enumerate(windows)],
        ))
        for i, w in enumerate(windows):
            part.append(_projection_figure(images["analog"][run][i], images["gan"][run][i], images["analog_noise"][run][i], w))
        part.append(histograms_1d(ref_used, gan_used, COMPARED_KEYS))
        sections.append("\n".join(part))

    mc, gn = results["analog"]["timing"], results["gan"]["timing"]
    body = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    body.append(f"<h1>{html.escape(title)}</h1>")
    body.append(
        "<p class='note'>Exit particles are compared with energies above "
        f"{threshold * 1000:g} keV (the GAN's absorbed events sit near zero energy and are turned into zero-energy events by its "
        "threshold). 'MC vs MC' is the same analog simulation with another seed: the statistical noise a perfect GAN would show. "
        "Projections: an ideal parallel-hole collimator (acceptance "
        f"{results['analog']['actors']['projection'].acceptance_angle * 180 / np.pi:g}°) on an anterior plane; SAD = Σ|a/Σa − b/Σb| × 100, "
        "sum difference = (Σ GAN − Σ MC) / Σ MC; the summary uses the photopeak window.</p>"
    )
    body.append("<h2>Summary</h2>")
    body.append(_table(
        ["run", "AUC GAN vs MC", "AUC MC vs MC", "max W1/std GAN", "max W1/std MC", "SAD % GAN", "SAD % MC", "sum diff % GAN", "sum diff % MC"],
        summary_rows,
    ))
    body.append("<h2>Speed</h2>")
    body.append(_table(
        ["source", "exit particles", "seconds", "exit particles / s"],
        [["analog Monte Carlo", mc["particles"], mc["seconds"], headline["mc_particles_per_s"]], ["GAN", gn["particles"], gn["seconds"], headline["gan_particles_per_s"]]],
    ))
    body.append(f"<p>GAN / Monte Carlo: <b>{headline['speed_ratio']:.2f}×</b> in exit particles per second (2 CPU threads; both include writing no file, the actors' time excluded).</p>")
    body.extend(sections)
    body.append(f"<h2>Training</h2><p>The GAN's own report (held-out rows): {html.escape(str(Path(training) / 'report' / 'report.html'))}</p>")
    body.append("<h2>Numbers (JSON)</h2><pre>" + html.escape(json.dumps(headline, indent=2, default=float)) + "</pre>")
    body.append("</body></html>")
    with atomic_path(report_dir / "report.html", force=True) as tmp:
        tmp.write_text("\n".join(body), encoding="utf-8")
    return headline
