"""CaloGAN (faithful) or the modern shower GAN on built-in e+ showers: data, training, generation, comparison.

    python examples/calogan_eplus.py -o calogan-example                 # the paper's settings (hours on a CPU)
    python examples/calogan_eplus.py -o modern-example --family showergan --minutes 30
    python examples/calogan_eplus.py -o calogan-example --quick         # a minutes-long smoke run

Steps, through the Python calls behind the commands named: 20,000 GFlash e+ showers in the
CaloGAN layout (as ``gansim data calo``), the model trained on them (as ``gansim train``:
duplicates removed, seeded split recorded), as many showers generated as there are test showers,
at their energies (as ``gansim generate --cond-file``), and the shower report against those test
showers (as ``gansim compare``). An existing output folder is refused unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gansim.config import parse_config
from gansim.data.calo import make_calo_showers
from gansim.io.calo import ShowerData, read_calogan, write_calogan
from gansim.metrics.calo_report import compare_showers, write_shower_report
from gansim.models import load_model
from gansim.models.calogan import CaloGANConfig
from gansim.models.shower_train import split_showers, train_showers
from gansim.models.showergan import ShowerGANConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("calogan-example"))
    parser.add_argument("--showers", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=2_000_000, help="training budget in real showers seen")
    parser.add_argument("--minutes", type=float, default=None, help="also stop training after this many minutes")
    parser.add_argument("--family", choices=("calogan", "showergan"), default="calogan", help="the faithful CaloGAN or the modern shower GAN")
    parser.add_argument("--quick", action="store_true", help="small networks, 2,000 showers, 512 rows: checks the chain in minutes")
    parser.add_argument("--force", action="store_true", help="overwrite the outputs of an earlier run in the output folder")
    args = parser.parse_args()
    out = args.output
    if out.exists() and any(out.iterdir()) and not args.force:
        parser.error(f"{out} exists and is not empty (an earlier run's data, model and report); give --force to overwrite them, or another -o")
    out.mkdir(parents=True, exist_ok=True)
    n = 2000 if args.quick else args.showers

    data_file = out / "eplus.h5"
    write_calogan(data_file, make_calo_showers(n, "eplus", seed=1).to_shower_data(), force=args.force)
    print(f"{n:,d} GFlash e+ showers -> {data_file}")

    raw: dict = {"train": {"total_rows": 512 if args.quick else args.rows, "progress": False, "evaluate": False}}
    if args.minutes is not None:
        raw["train"]["max_wall_time_s"] = 60 * args.minutes
    if args.quick:
        raw["model"] = {"latent_dim": 16} if args.family == "calogan" else {"latent_dim": 16, "g_width": 64, "d_width": 64}
        raw["train"]["batch_size"] = 32
    cfg = parse_config(CaloGANConfig if args.family == "calogan" else ShowerGANConfig, raw, source="example config")
    model_dir = train_showers(data_file, cfg, out / "run", force=args.force)

    # the test showers: the same seeded split the training recorded (no duplicates in GFlash data)
    data = read_calogan(data_file)
    test_rows = split_showers(len(data), cfg.data.validation_fraction, cfg.data.test_fraction, cfg.data.split_seed)["test"]
    test = ShowerData(data.layout, data.geometry, data.energy[test_rows], [a[test_rows] for a in data.layers], data.overflow[test_rows])
    generated = load_model(model_dir, device="auto").sample(len(test), test.energy, seed=7)
    write_calogan(out / "generated.h5", generated, force=args.force)

    classifier = {"hidden": 64, "epochs": 10} if args.quick else None
    metrics, plots = compare_showers(test, generated, classifier=classifier)
    report = write_shower_report(out / "report", metrics, plots, title=f"{args.family} vs GFlash test showers", force=args.force)
    worst = sorted(metrics["variables"].items(), key=lambda kv: -kv[1]["separation_power"])[:3]
    aucs = {f"classifier_auc_{level}": metrics[f"classifier_{level}"].get("auc") for level in ("low", "high")}
    print(json.dumps({**aucs, "worst_variables": {k: round(v["separation_power"], 3) for k, v in worst}}, indent=1))
    print(f"mean generated E_tot / E_inc: {np.mean(sum(a.reshape(len(generated), -1).sum(1) for a in generated.layers) / generated.energy):.3f}")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
