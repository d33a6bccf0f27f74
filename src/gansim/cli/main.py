"""``gansim VERB ...``: one command line for every family.

Each verb only parses arguments, builds a config and calls the library; errors
the user can fix (a missing key, a bad file, an existing output) are printed as
one message, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from gansim.cli.text import number
from gansim.errors import GansimError

app = typer.Typer(
    name="gansim",
    help="GANs that stand in for expensive simulation: train, generate, inspect, convert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()


def _fail(err: BaseException) -> None:
    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
    raise typer.Exit(code=2)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``--set train.batch_size=4096`` -> nested dict; values parsed as JSON when they parse, else kept as strings."""
    result: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise GansimError(f"--set {item!r}: expected KEY.PATH=VALUE")
        path, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = result
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def detect_family(data: Path) -> str:
    """Family from the data: a CaloGAN HDF5 file is ``calogan`` (the faithful model), a CaloChallenge one
    ``showergan`` (the modern model, the one that handles any layout); a phase-space table (ROOT, npy,
    npz, MCPL, IAEA) is ``phsp``."""
    from gansim.cli.slices import is_slice_data
    from gansim.io.phsp import detect_format

    from gansim.cli.volumes import is_volume_data

    if is_slice_data(data):
        return "pacgan"
    if is_volume_data(data):
        return "cyclegan"
    if data.suffix.lower() in (".h5", ".hdf5"):
        from gansim.io.calo import detect_shower_layout

        layout = detect_shower_layout(data)
        if layout == "calogan":
            return "calogan"
        if layout is not None:
            return "showergan"
    try:
        detect_format(data)
        return "phsp"
    except GansimError:
        pass
    raise GansimError(
        f"{data}: cannot tell which family this data is for (phase-space files end in .root, .npy, .npz, .mcpl, .IAEAphsp; "
        "shower files are CaloGAN or CaloChallenge HDF5, .h5; labelled slices are a folder with labels.csv; volumes a folder with trainA/ and trainB/); pass --family"
    )


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="training data: a phase space (.root, .npy, .npz, .mcpl, .IAEAphsp), showers (CaloGAN or CaloChallenge HDF5, .h5; dataset 1 with --set data.binning_xml=FILE), labelled slices (a PACGAN-layout folder: NIfTI [W,H,C,N] + labels.csv) or volumes (a folder with trainA/ and trainB/, optionally testA/ and testB/, of .nii.gz, .nii, .mha, .mhd or .nrrd: a 3-D CycleGAN)")],
    config: Annotated[Optional[Path], typer.Argument(help="JSON config: gansim's, a gaga-phsp JSON or PACGAN's config.json (translated); omitted: defaults")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="run directory")] = Path("run"),
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in OUTPUT from its latest checkpoint")] = False,
    force: Annotated[bool, typer.Option("--force", help="start over in a non-empty OUTPUT")] = False,
    family: Annotated[Optional[str], typer.Option("--family", help="force the family: phsp, calogan (faithful CaloGAN), showergan (modern shower GAN), pacgan (labelled slices) or cyclegan (volumes: trainA/, trainB/); default from the data (and a shower config's 'family')")] = None,
    keys: Annotated[Optional[str], typer.Option("--keys", help="generated columns, comma separated")] = None,
    cond_keys: Annotated[Optional[str], typer.Option("--cond-keys", help="condition columns, comma separated")] = None,
    total_rows: Annotated[Optional[int], typer.Option("--total-rows", help="train until this many rows were seen")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda[:N], mps")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config value: section.key=value (JSON value)")] = [],
) -> None:
    """Train a GAN on DATA; the model lands in OUTPUT/model."""
    try:
        from gansim.config import parse_config, read_config_file

        fam = family or detect_family(data)
        if fam == "cyclegan":
            from gansim.cli.volumes import train_volumes

            common = {k: v for k, v in (("total_rows", total_rows), ("batch_size", batch_size), ("device", device), ("seed", seed)) if v is not None}
            if keys is not None or cond_keys is not None:
                raise GansimError("--keys and --cond-keys choose phase-space columns; volumes have none")
            train_volumes(data, config, output, resume=resume, force=force, overrides={"train": common} if common else {}, set_values=_parse_set(set_),
                          log=lambda m: console.print(m, highlight=False, markup=False),
                          say=lambda m: out.print(m, highlight=False, markup=False) if _is_main_process() else None, merge=_merge)
            return
        if fam == "pacgan":
            from gansim.cli.slices import train_slices

            common = {k: v for k, v in (("total_rows", total_rows), ("batch_size", batch_size), ("device", device), ("seed", seed)) if v is not None}
            if keys is not None or cond_keys is not None:
                raise GansimError("--keys and --cond-keys choose phase-space columns; labelled slices have none")
            train_slices(data, config, output, resume=resume, force=force, overrides={"train": common}, set_values=_parse_set(set_),
                         log=lambda m: console.print(m, highlight=False, markup=False),
                         say=lambda m: out.print(m, highlight=False, markup=False) if _is_main_process() else None, merge=_merge)
            return
        if fam in SHOWER_FAMILIES:
            _train_showers(fam, family is not None, data, config, output, resume, force, total_rows, batch_size, device, seed, set_)
            return
        if fam != "phsp":
            raise GansimError(f"--family {fam!r}: this gansim trains 'phsp' (phase-space), 'calogan' (faithful CaloGAN), 'showergan' (modern shower GAN), 'pacgan' (labelled slices) and 'cyclegan' (volumes) models")
        from gansim.models.phsp_gan import PhaseSpaceGANConfig
        from gansim.models.phsp_train import train_phase_space

        if resume and (output / "config.json").is_file():
            raw = read_config_file(output / "config.json")
            if config is not None:
                given = parse_config(PhaseSpaceGANConfig, read_config_file(config), source=str(config)).model_dump(mode="json")
                if given != raw:
                    raise GansimError(f"{config}: differs from the config of the run being resumed ({output / 'config.json'}); resume without CONFIG")
        else:
            raw = read_config_file(config) if config is not None else {}
            raw = _maybe_translate_gaga(raw, config, data)
        overrides: dict[str, Any] = {}
        if keys is not None:
            overrides.setdefault("data", {})["keys"] = [k.strip() for k in keys.split(",") if k.strip()]
        if cond_keys is not None:
            overrides.setdefault("data", {})["cond_keys"] = [k.strip() for k in cond_keys.split(",") if k.strip()]
        for name, value in (("total_rows", total_rows), ("batch_size", batch_size), ("device", device), ("seed", seed)):
            if value is not None:
                overrides.setdefault("train", {})[name] = value
        new_raw = _merge(_merge(raw, overrides), _parse_set(set_))
        cfg = parse_config(PhaseSpaceGANConfig, new_raw, source=str(config) if config else "config")
        if resume:
            before = parse_config(PhaseSpaceGANConfig, raw, source=str(output / "config.json")).model_dump(mode="json")
            changed = sorted(p for p in _diff(before, cfg.model_dump(mode="json")) if p not in RESUME_MAY_CHANGE)
            if changed:
                raise GansimError(
                    f"on --resume these settings cannot change: {', '.join(changed)} (the checkpoint holds networks and data "
                    f"positions made with the old values); may change: {', '.join(sorted(RESUME_MAY_CHANGE))}"
                )
        model_dir = train_phase_space(data, cfg, output, resume=resume, force=force, log=lambda m: console.print(m, highlight=False, markup=False))
        if _is_main_process():
            out.print(f"model written to {model_dir}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


#: the shower families and their configs' module and class
SHOWER_FAMILIES = {"calogan": ("gansim.models.calogan", "CaloGANConfig"), "showergan": ("gansim.models.showergan", "ShowerGANConfig")}


def _train_showers(
    fam: str, forced: bool, data: Path, config: Path | None, output: Path, resume: bool, force: bool,
    total_rows: int | None, batch_size: int | None, device: str | None, seed: int | None, set_: list[str],
) -> None:
    """`gansim train showers.h5 [CONFIG] -o RUN`: the faithful CaloGAN or the modern shower GAN.

    The family is ``--family``, else the config's ``family`` key, else the data's (CaloGAN files: the
    faithful model; CaloChallenge files: the modern one).
    """
    from gansim.config import parse_config, read_config_file
    from gansim.models.shower_train import train_showers

    raw = read_config_file(output / "config.json") if resume and (output / "config.json").is_file() else (read_config_file(config) if config is not None else {})
    named = raw.get("family")
    if named is not None and named not in SHOWER_FAMILIES:
        raise GansimError(f"{config or output / 'config.json'}: family {named!r} is not a shower family; expected one of {', '.join(SHOWER_FAMILIES)}")
    if named is not None and forced and named != fam:
        raise GansimError(f"--family {fam} but {config or output / 'config.json'} is a {named!r} config")
    fam = fam if forced or named is None else named
    module, name = SHOWER_FAMILIES[fam]
    config_class = getattr(importlib.import_module(module), name)
    overrides: dict[str, Any] = {"family": fam}
    for key, value in (("total_rows", total_rows), ("batch_size", batch_size), ("device", device), ("seed", seed)):
        if value is not None:
            overrides.setdefault("train", {})[key] = value
    cfg = parse_config(config_class, _merge(_merge(raw, overrides), _parse_set(set_)), source=str(config) if config else "config")
    _check_binning_given(data, cfg.data.binning_xml, cfg.data.particle, "--set data.binning_xml=FILE", "--set data.particle=photon|pion")
    model_dir = train_showers(data, cfg, output, resume=resume, force=force, log=lambda m: console.print(m, highlight=False, markup=False))
    if _is_main_process():
        out.print(f"model written to {model_dir}", highlight=False, markup=False)


def _check_binning_given(data: Path, binning_xml: object, particle: object, xml_usage: str, particle_usage: str) -> None:
    """A CaloChallenge dataset-1 file read without its binning XML: say which option gives it.

    The library's own message names its keyword (``geometry=read_binning_xml(...)``), which is
    no help on the command line; this runs before the data is read. ``xml_usage`` and
    ``particle_usage`` show the options, e.g. ``--binning-xml FILE``.
    """
    from gansim.io.calo import binning_xml_needed

    if binning_xml is not None:
        return
    if particle is not None:
        raise GansimError(f"particle {particle!r} chooses a binning in a binning XML; give {xml_usage} too")
    reason = binning_xml_needed(data)
    if reason is not None:
        raise GansimError(f"{reason}; give its binning with {xml_usage} (and {particle_usage} when the XML holds several particles)")


def _maybe_translate_gaga(raw: dict[str, Any], config: Path | None, data: Path) -> dict[str, Any]:
    """A gaga-phsp option file is translated to gansim's config; the translation's notes are printed."""
    from gansim.models.gaga_config import is_gaga_options, translate_gaga_options

    if config is None or not is_gaga_options(raw):
        return raw
    from gansim.io.phsp import open_reader

    with open_reader(data) as reader:
        n_rows = reader.n_rows
    translated, notes = translate_gaga_options(raw, source=str(config), n_rows_hint=n_rows)
    if _is_main_process():
        console.print(f"{config}: gaga-phsp options, translated to gansim's config:", highlight=False, markup=False)
        for note in notes:
            console.print(f"  {note}", highlight=False, markup=False)
    return translated


#: Settings that may change when a run is resumed (the rest would break the checkpoint or the data order).
RESUME_MAY_CHANGE = frozenset(
    {"train.total_rows", "train.device", "train.progress", "train.checkpoint_rows", "train.keep_checkpoints", "optim.G.lr", "optim.D.lr"}
)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two nested config dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _parse_conds(items: list[str]) -> dict[str, float]:
    conds: dict[str, float] = {}
    for item in items:
        if "=" not in item:
            raise GansimError(f"--cond {item!r}: expected KEY=VALUE (e.g. --cond EventKineticEnergy=0.1405)")
        key, value = item.split("=", 1)
        try:
            conds[key.strip()] = float(value)
        except ValueError:
            raise GansimError(f"--cond {item!r}: {value!r} is not a number") from None
    return conds


#: --batch-size of phase-space generation when not given
PHSP_BATCH_SIZE = 100_000
#: showers per forward pass when --batch-size is not given. The phase-space default (100,000)
#: would be far too many: a forward pass holds the network's activations for every shower in it
#: (the faithful CaloGAN's locally connected layers, the modern model's per-cell heads).
SHOWER_BATCH_SIZE = 4096


@app.command()
def generate(
    model: Annotated[Path, typer.Argument(help="model directory (e.g. RUN/model)")],
    n: Annotated[Optional[int], typer.Option("-n", "--n", help="number of particles or showers (default: rows of --cond-file)")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="output file: phase space (.root, .npy, .npz, .mcpl, .IAEAphsp; default generated.npy), showers (.h5 in the model's layout; default generated.h5) or images (.nii.gz, labels.csv beside it; default generated.nii.gz)")] = None,
    cond: Annotated[list[str], typer.Option("--cond", help="condition KEY=VALUE (repeatable), the same for every particle; PACGAN: label=K")] = [],
    cond_file: Annotated[Optional[Path], typer.Option("--cond-file", help="phase space: a file whose columns named like the model's conditions give one condition row per particle; showers: a shower file (its incident energies) or energies in GeV (.npy/.txt/.csv)")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="same seed, same particles (whatever the batch size); default: a fresh random seed, printed")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help=(
        "rows per forward pass. Phase space: particles made and written per batch, which bounds memory (default 100,000). "
        "Showers (default 4,096): memory is bounded by chunks of about 2**26 values of latent noise and cells (256 MB of float32) "
        "made and written at a time, so a forward pass holds at most one chunk's showers"))] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    particle: Annotated[Optional[str], typer.Option("--particle", help="particle type for MCPL/IAEA output when the model has no PDGCode (gamma, e-, e+, neutron, proton or a PDG code)")] = None,
    drop_unknown: Annotated[bool, typer.Option("--drop-unknown", help="leave out columns the output format cannot store (MCPL, IAEA)")] = False,
    with_conditions: Annotated[bool, typer.Option("--with-conditions", help="write the condition columns beside the generated ones")] = False,
    per_class: Annotated[Optional[str], typer.Option("--per-class", help="PACGAN: images per class, comma separated (e.g. 100,100), written class by class")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite OUTPUT")] = False,
) -> None:
    """Generate N particles, showers or labelled images from MODEL into OUTPUT, in bounded memory."""
    try:
        from gansim.sampling import generate_to_file

        if seed is None:
            import secrets

            seed = secrets.randbits(31)
            if _is_main_process():
                console.print(f"seed: {seed} (pass --seed {seed} to generate the same sample again)", highlight=False, markup=False)
        from gansim.models.model_file import read_manifest

        model_family = read_manifest(model).get("family")
        if model_family == "pacgan":
            from gansim.cli.slices import generate_slices

            given = [name for name, used in (("--particle", particle is not None), ("--drop-unknown", drop_unknown), ("--with-conditions", with_conditions), ("--cond-file", cond_file is not None)) if used]
            if given:
                raise GansimError(f"{', '.join(given)}: phase-space or shower option(s); {model} is a PACGAN model (--cond label=K, --per-class)")
            generate_slices(model, n, output or Path("generated.nii.gz"), cond=_parse_conds(cond), per_class=per_class, seed=seed, batch_size=batch_size,
                            device=device, force=force, say=lambda m: out.print(m, highlight=False, markup=False))
            return
        if per_class is not None:
            raise GansimError("--per-class applies to PACGAN models (labelled images)")
        if model_family in SHOWER_FAMILIES:
            given = [name for name, used in (("--particle", particle is not None), ("--drop-unknown", drop_unknown), ("--with-conditions", with_conditions)) if used]
            if given:
                raise GansimError(f"{', '.join(given)}: phase-space output option(s); {model} is a shower model (its showers' energies are always written)")
            _generate_showers(model, n, output or Path("generated.h5"), _parse_conds(cond), cond_file, seed, batch_size, device, force)
            return
        output = output or Path("generated.npy")
        writer_options = {k: v for k, v in (("particle", _particle_arg(particle)), ("drop_unknown", drop_unknown or None)) if v is not None}
        written = generate_to_file(
            model, output, n=n, cond=_parse_conds(cond), cond_file=cond_file, seed=seed, batch_size=PHSP_BATCH_SIZE if batch_size is None else batch_size, device=device, force=force,
            writer_options=writer_options, keep_conditions=with_conditions,
        )
        if _is_main_process():
            out.print(f"{written:,d} particles written to {output} (seed {seed})", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


def _shower_energies(path: Path) -> np.ndarray:
    """Incident energies (MeV) from ``--cond-file``: a shower file (CaloGAN or CaloChallenge: its showers'
    energies), or a table of energies in GeV (.npy, or text/CSV with one number per line)."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        from gansim.io.calo import read_shower_energies

        try:
            return read_shower_energies(path)  # the energies only: a large shower file is never loaded whole
        except GansimError as err:
            raise GansimError(f"--cond-file {err}") from None
    try:
        values = np.load(path, allow_pickle=False) if path.suffix.lower() == ".npy" else np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None, ndmin=1)
    except (OSError, ValueError) as err:
        raise GansimError(f"{path}: --cond-file for showers: expected a shower file (.h5) or energies in GeV (.npy, .txt, .csv; one per line) ({err})") from err
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not len(values):
        raise GansimError(f"{path}: --cond-file for showers: expected one column of energies in GeV (one per line), found shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if bad.size:
        raise GansimError(
            f"{path}: --cond-file for showers: energy {values[bad[0]]:g} at row {int(bad[0])} (rows counted from 0; "
            f"{bad.size} bad value(s)); expected finite energies > 0 GeV"
        )
    return values * 1000.0


def _cond_energy_mev(cond: dict[str, float]) -> float | None:
    """``--cond energy=E`` (GeV) in MeV, checked here so that a bad value is reported in the user's GeV, naming the option."""
    if "energy" not in cond:
        return None
    energy = cond["energy"]
    if not np.isfinite(energy) or energy <= 0:
        raise GansimError(f"--cond energy={energy:g}: expected a finite energy > 0 GeV (the incident energy of the primary)")
    return energy * 1000.0


def _generate_showers(model: Path, n: int | None, output: Path, cond: dict[str, float], cond_file: Path | None, seed: int, batch_size: int | None, device: str, force: bool) -> None:
    """Showers in the model's layout (CaloGAN or CaloChallenge HDF5); ``--cond energy=E`` (GeV) or ``--cond-file`` fixes the incident energies.

    ``batch_size`` None: :data:`SHOWER_BATCH_SIZE`.
    """
    from gansim.io.calo import write_shower_chunks
    from gansim.models import load_model
    from gansim.models.shower_sampling import shower_chunk_rows

    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise GansimError(f"{output}: showers are written as HDF5 (the model's layout); use a .h5 or .hdf5 name")
    unknown = sorted(set(cond) - {"energy"})
    if unknown:
        raise GansimError(f"--cond {unknown}: a shower model takes only --cond energy=E (GeV)")
    if cond and cond_file is not None:
        raise GansimError("give --cond energy=E or --cond-file, not both")
    energy_mev = _cond_energy_mev(cond)
    energies = _shower_energies(cond_file) if cond_file is not None else None
    if energies is not None:
        if n is not None and n != len(energies):
            raise GansimError(f"-n {n} but {cond_file} holds {len(energies)} energies; leave out -n to make one shower per energy")
        n = len(energies)
    if n is None:
        raise GansimError("give the number of showers with -n (or energies with --cond-file)")
    loaded = load_model(model, device=device)
    # one chunk of showers at a time (about 2**26 values of latent noise and cells: 256 MB of float32,
    # whatever the layout and the model's noise width); the seed fixes showers by index, so chunks
    # give what one call would
    step = shower_chunk_rows(loaded.geometry.n_cells, loaded.noise_dim)
    batch = SHOWER_BATCH_SIZE if batch_size is None else batch_size
    if batch_size is not None and batch_size > step and n > step and _is_main_process():
        console.print(
            f"note: --batch-size {batch_size:,d}: a forward pass holds at most {step:,d} showers of this model "
            f"(showers are made in chunks of about 2**26 values of latent noise and cells, {loaded.noise_dim + loaded.geometry.n_cells:,d} per shower)",
            highlight=False, markup=False,
        )

    def chunks() -> Any:
        for start in range(0, n, step):
            stop = min(n, start + step)
            yield loaded.sample(stop - start, energies[start:stop] if energies is not None else energy_mev, seed=seed, batch_size=batch, first=start)

    rows = write_shower_chunks(output, chunks(), force=force)
    out.print(f"{rows:,d} showers written to {output} (seed {seed})", highlight=False, markup=False)


#: rows of each phase-space file ``compare`` uses when --max-rows is not given
COMPARE_MAX_ROWS = 200_000
#: quantile bins per condition column when --bins is not given
COMPARE_BINS = 4


@app.command()
def compare(
    reference: Annotated[Path, typer.Argument(help="reference sample: a phase space (e.g. the Monte Carlo file) or showers (CaloGAN or CaloChallenge HDF5, .h5)")],
    generated: Annotated[Path, typer.Argument(help="generated sample, of the same kind (phase space, or showers in the same layout)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="report directory (report.html, metrics.json)")] = Path("report"),
    keys: Annotated[Optional[str], typer.Option("--keys", help="phase space: columns to compare, comma separated (default: those both files have)")] = None,
    cond: Annotated[Optional[str], typer.Option("--cond", help="phase space: condition columns; metrics are also given per condition bin")] = None,
    bins: Annotated[Optional[int], typer.Option("--bins", min=1, help=f"phase space: quantile bins per condition column (default {COMPARE_BINS})")] = None,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", min=100, help=(
        f"phase space: rows of each file used (default {COMPARE_MAX_ROWS:,d}; a deterministic subsample above); "
        "showers: only the first N showers of each file are read (default: all)"))] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="phase space: model directory, its manifest and training curve go into the report")] = None,
    binning_xml: Annotated[Optional[Path], typer.Option("--binning-xml", help="showers: the binning XML of CaloChallenge dataset-1 files (e.g. binning_dataset_1_photons.xml)")] = None,
    particle: Annotated[Optional[str], typer.Option("--particle", help="showers, with --binning-xml: whose binning (photon, pion or a PDG id) when the XML holds several particles")] = None,
    encoder: Annotated[Optional[Path], typer.Option("--encoder", help="labelled slices: a saved image encoder (e.g. from an earlier compare) for FD/KID; default: one trained on half the reference")] = None,
    inception_weights: Annotated[Optional[Path], typer.Option("--inception-weights", help="labelled slices: a trusted TorchScript InceptionV3 feature extractor for Inception FID/KID (never downloaded)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing report")] = False,
) -> None:
    """Compare a generated sample with a reference (phase spaces, CaloGAN / CaloChallenge showers, labelled slices): distances, classifier AUC, HTML report."""
    try:
        from gansim.cli.slices import compare_slices, is_slice_data
        from gansim.metrics.evaluate import compare_tables, print_metrics, write_evaluation

        if is_slice_data(reference) or is_slice_data(generated):
            given = [name for name, value in {"--keys": keys, "--cond": cond, "--bins": bins, "--model": model, "--max-rows": max_rows,
                                              "--binning-xml": binning_xml, "--particle": particle}.items() if value is not None]
            if given:
                raise GansimError(f"{', '.join(given)}: not options of a labelled-slice comparison (give -o, --encoder, --inception-weights, --seed, --force)")
            compare_slices(reference, generated, output, seed=seed, force=force, encoder=encoder, encoder_epochs=15, inception_weights=inception_weights,
                           say=lambda m: out.print(m, highlight=False, markup=False))
            return
        if encoder is not None or inception_weights is not None:
            raise GansimError("--encoder and --inception-weights apply to labelled slices (PACGAN-layout folders)")
        if any(path.suffix.lower() in (".h5", ".hdf5") for path in (reference, generated)):
            phsp_only = {"--keys": keys, "--cond": cond, "--bins": bins, "--model": model}
            given = [name for name, value in phsp_only.items() if value is not None]
            if given:
                # the shower comparison has fixed variables and no model section: these would do nothing
                raise GansimError(
                    f"{', '.join(given)}: phase-space option(s), but {reference} and {generated} are compared as shower files "
                    "(.h5); for showers give -o, --max-rows, --seed, --force, --binning-xml, --particle"
                )
            _compare_showers(reference, generated, output, seed, force, max_rows, binning_xml, particle)
            return
        if binning_xml is not None or particle is not None:
            raise GansimError(f"--binning-xml and --particle apply to shower files (CaloChallenge dataset 1), not to the phase spaces {reference} and {generated}")
        max_rows = COMPARE_MAX_ROWS if max_rows is None else max_rows
        bins = COMPARE_BINS if bins is None else bins

        cond_keys = [c.strip() for c in cond.split(",")] if cond else []
        cols = [c.strip() for c in keys.split(",")] + cond_keys if keys else None
        tables = [_read_sample(path, cols, 2 * max_rows, seed) for path in (reference, generated)]
        ref, gen = tables
        key_list = [c.strip() for c in keys.split(",")] if keys else [k for k in ref if k in gen and k not in cond_keys and float(np.std(ref[k])) + float(np.std(gen[k])) > 0]
        metrics, ref_used, gen_used = compare_tables(ref, gen, key_list, cond_keys=cond_keys, seed=seed, max_rows=max_rows, bins=bins)
        manifest = stats = None
        if model is not None:
            from gansim.models.model_file import read_manifest
            from gansim.training.stats import read_stats

            manifest = read_manifest(model)
            stats = read_stats(Path(model).parent) if (Path(model).parent / "stats.jsonl").exists() else None
        report = write_evaluation(output, metrics, ref_used, gen_used, title=f"gansim compare: {generated} vs {reference}", stats=stats, manifest=manifest, force=force)
        print_metrics(metrics, out)
        out.print(f"report: {report}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


def _compare_showers(
    reference: Path, generated: Path, output: Path, seed: int, force: bool, max_rows: int | None, binning_xml: Path | None, particle: str | None,
) -> None:
    """Shower files: shape variables, separation power, classifier test, FPD/KPD, response; report.html.

    ``max_rows``: only the first showers of each file (sliced in the file); ``binning_xml`` and
    ``particle``: the binning of CaloChallenge dataset-1 files, applied to both.
    """
    from gansim.metrics.calo_report import compare_showers, write_shower_report

    if (output / "report.html").exists() and not force:
        raise GansimError(f"{output / 'report.html'}: already exists; pass --force to overwrite it")
    geometry = _binning_from_xml(binning_xml, particle) if binning_xml is not None else None
    ref, gen = (_read_shower_file(path, geometry, particle, max_rows) for path in (reference, generated))
    metrics, plots = compare_showers(ref, gen, seed=seed)
    report = write_shower_report(output, metrics, plots, title=f"gansim compare: {generated} vs {reference}", force=True)
    worst = max(metrics["variables"].items(), key=lambda kv: kv[1]["separation_power"])
    aucs = "".join(
        f"classifier AUC ({level}-level) {clf['auc']:.3f} ± {clf['auc_se']:.3f}; "
        for level, clf in (("low", metrics.get("classifier_low", {})), ("high", metrics["classifier_high"]))
        if "auc" in clf
    )
    out.print(
        aucs + f"largest separation power: {worst[0]} {worst[1]['separation_power']:.3f}",
        highlight=False, markup=False,
    )
    out.print(f"report: {report}", highlight=False, markup=False)


def _binning_from_xml(xml: Path, particle: str | None) -> Any:
    """``--binning-xml`` (and ``--particle``) as a geometry, read once for both files."""
    from gansim.io.calo import read_binning_xml

    try:
        return read_binning_xml(xml, particle)
    except GansimError as err:
        # the library's hint names its keyword (particle=); here the choice is an option
        raise GansimError(f"--binning-xml {str(err).replace('choose one with particle=', 'choose one with --particle')}") from None


def _read_shower_file(path: Path, geometry: Any, particle: str | None, max_rows: int | None) -> Any:
    """One file of ``compare``, checked first for what the command line must supply (a DS1 binning)."""
    from gansim.io.calo import detect_shower_layout, read_showers

    _check_binning_given(path, geometry, particle, "--binning-xml FILE", "--particle photon|pion")
    if geometry is not None and detect_shower_layout(path) == "calogan":
        raise GansimError(f"{path}: is a CaloGAN file; --binning-xml applies to CaloChallenge dataset-1 files")
    return read_showers(path, geometry=geometry, max_rows=max_rows)


def _read_sample(path: Path, columns: list[str] | None, target: int, seed: int) -> dict[str, np.ndarray]:
    """A file's rows, or about ``target`` of them picked by a seeded hash of the row index when it holds more (bounded memory)."""
    from gansim.data.split import heldout_mask
    from gansim.io.phsp import open_reader

    with open_reader(path) as reader:
        n = reader.n_rows
        if n is not None and n <= target:
            return reader.read(columns)
        fraction = target / n if n else 1.0
        parts, start = [], 0
        for chunk in reader.iter_chunks(1_000_000, columns):
            m = len(next(iter(chunk.values())))
            keep = heldout_mask(start, m, fraction, seed)
            parts.append({k: v[keep] for k, v in chunk.items()})
            start += m
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else reader.read(columns, max_rows=0)


@app.command()
def translate(
    model: Annotated[Path, typer.Argument(help="a CycleGAN model directory (e.g. RUN/model)")],
    source: Annotated[Path, typer.Argument(help="a volume (.nii.gz, .nii, .mha, .nrrd ...) or a folder of them")],
    output: Annotated[Path, typer.Option("-o", "--output", help=(
        "output file (for one volume; an existing folder: the volume keeps its name in it) or folder (for a folder: names kept whole); "
        "never one of the inputs"))],
    direction: Annotated[str, typer.Option("--direction", help="A2B (e.g. T1w to T2w) or B2A")] = "A2B",
    overlap: Annotated[Optional[float], typer.Option("--overlap", min=0.0, max=0.95, help="overlap of sliding windows (default: the model's)")] = None,
    sw_batch_size: Annotated[Optional[int], typer.Option("--sw-batch-size", min=1, help="windows per forward pass")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs (never an input)")] = False,
) -> None:
    """Translate volumes with a CycleGAN model: the output on the input's grid, with its header, affine and sform/qform codes."""
    try:
        from gansim.cli.volumes import translate_cmd

        translate_cmd(model, source, output, direction=direction, device=device, overlap=overlap, sw_batch_size=sw_batch_size, force=force,
                      say=lambda m: out.print(m, highlight=False, markup=False), log=lambda m: console.print(m, highlight=False, markup=False))
    except GansimError as err:
        _fail(err)


@app.command()
def plan(
    config: Annotated[Optional[Path], typer.Argument(help="a CycleGAN config (JSON); omitted: defaults")] = None,
    shape: Annotated[tuple[int, int, int], typer.Option("--shape", help="volume shape X Y Z")] = (182, 218, 182),
    batch: Annotated[int, typer.Option("--batch", min=1, help="patches per step")] = 1,
    amp: Annotated[bool, typer.Option("--amp", help="mixed precision (16-bit autocast, as train.amp=bf16 or fp16; on by default when the config sets train.amp); slow to plan on a CPU without bfloat16")] = False,
    device: Annotated[str, typer.Option("--device", help="where the small dry runs go (cpu, cuda)")] = "cpu",
    set_: Annotated[list[str], typer.Option("--set", help="override a config value: section.key=value (JSON value)")] = [],
) -> None:
    """Valid input shapes near SHAPE, the padding, the parameter count and the memory training and translating need."""
    try:
        from gansim.cli.volumes import plan_cmd

        plan_cmd(config, shape, batch, set_values=_parse_set(set_), merge=_merge, amp=amp, device=device, say=lambda m: out.print(m, highlight=False, markup=False))
    except GansimError as err:
        _fail(err)


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="a volume data set (trainA/, trainB/, testA/, testB/)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the cropped data set")],
    config: Annotated[Optional[Path], typer.Option("--config", help="the CycleGAN config whose generator decides the valid shapes")] = None,
    margin: Annotated[int, typer.Option("--margin", min=0, help="voxels added around the foreground box")] = 4,
    margin_mm: Annotated[Optional[float], typer.Option("--margin-mm", min=0.0, help="the margin in mm (overrides --margin)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config value: section.key=value (JSON value)")] = [],
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty OUTPUT")] = False,
) -> None:
    """Crop each pair to the union of their foreground boxes plus a margin, affine updated; print the smallest valid input shape."""
    try:
        from gansim.cli.volumes import prepare_cmd

        prepare_cmd(data, output, margin_vox=margin, margin_mm=margin_mm, config=config, set_values=_parse_set(set_), merge=_merge, force=force,
                    say=lambda m: out.print(m, highlight=False, markup=False))
    except GansimError as err:
        _fail(err)


@app.command()
def classify(
    model: Annotated[Path, typer.Argument(help="a PACGAN model directory (e.g. RUN/model)")],
    images: Annotated[Path, typer.Argument(help="images: a NIfTI stack [W, H, C, N] (or a PACGAN-layout folder)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="predictions CSV: ID, Label (with --labels), P_<class> per class, Predicted")] = Path("predictions.csv"),
    labels: Annotated[Optional[Path], typer.Option("--labels", help="labels.csv (ID, Label) of the images: adds the whole-set ROC AUC with a bootstrap 95 % interval, ROC curves and the confusion matrix")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="HTML report (default: OUTPUT with .html)")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="images per forward pass (answers do not depend on it)")] = 64,
    device: Annotated[str, typer.Option("--device")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="seed of the bootstrap")] = 0,
    allow_training_subjects: Annotated[bool, typer.Option("--allow-training-subjects", help="classify images of subjects the model trained on (refused by default: their scores are not of unseen subjects)")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite OUTPUT and the report")] = False,
) -> None:
    """Classify IMAGES with a PACGAN model's discriminator: per-image class probabilities, and with --labels the AUC, ROC and confusion matrix."""
    try:
        from gansim.cli.slices import classify_slices

        classify_slices(model, images, output, labels=labels, batch_size=batch_size, device=device, seed=seed, report=report, force=force,
                        allow_training_subjects=allow_training_subjects, say=lambda m: out.print(m, highlight=False, markup=False))
    except GansimError as err:
        _fail(err)


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="model directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print the raw manifest as JSON")] = False,
) -> None:
    """Print a model's manifest."""
    try:
        from gansim.models.model_file import read_manifest

        manifest = read_manifest(model)
        if as_json:
            print(json.dumps(manifest, indent=2))
            return
        _print_manifest(model, manifest)
    except GansimError as err:
        _fail(err)


#: families whose `gansim info` rows come from their own command-line module: (module, function of the manifest)
INFO_ROWS = {"pacgan": ("gansim.cli.slices", "pacgan_info_rows"), "cyclegan": ("gansim.cli.volumes", "cyclegan_info_rows")}


def _print_manifest(path: Path, manifest: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from gansim.io.phsp.columns import unit_of

    training = manifest.get("training") or {}  # `or`: a key stored as null counts as missing
    data = training.get("data") or {}
    arch = manifest.get("architecture") or {}
    table = Table(title=Text(str(path)), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")

    def add(field: str, value: str) -> None:
        table.add_row(field, Text(value))  # Text: units like [mm] and paths are not read as markup

    add("family", str(manifest.get("family")))
    add("format", f"{manifest.get('format')} v{manifest.get('format_version')} (gansim {manifest.get('gansim_version') or training.get('gansim_version')})")
    if manifest.get("family") in INFO_ROWS:
        module, function = INFO_ROWS[manifest["family"]]
        for field, value in getattr(importlib.import_module(module), function)(manifest):
            add(field, value)
        out.print(table)
        return
    if manifest.get("family") != "phsp":
        # other families (the shower ones): their layout, architecture settings and training facts as they are
        # stored; a key a manifest lacks shows '?' rather than failing
        add("layout", str(manifest.get("layout")))
        add("architecture", json.dumps(arch))
        if data:
            split = data.get("split") or {}
            add("training data", f"{data.get('path')} ({number(data.get('showers_in_file'), ',')} showers, {data.get('duplicates', '?')} duplicates, "
                                 f"sha256 {str(data.get('sha256'))[:16]}…)")
            add("split", f"{split.get('rows')} (seed {split.get('seed')})")
        if training:
            add("training", f"{number(training.get('rows_seen'), ',')} showers seen in {number(training.get('wall_time_s'), '.0f')} s")
        if manifest.get("metrics"):
            add("metrics", _shower_metrics_line(manifest["metrics"]))
        out.print(table)
        return
    add("keys", ", ".join(f"{k['name']} [{k['unit'] or '1'}]" for k in manifest.get("keys", [])))
    add("conditions", ", ".join(f"{k['name']} [{k['unit'] or '1'}]" for k in manifest.get("cond_keys", [])) or "none")
    if manifest.get("constants"):
        add("constants", ", ".join(f"{k} = {v:g} {unit_of(k)}".rstrip() for k, v in manifest["constants"].items()))
    latent = manifest.get("latent", {})
    add("latent", f"{latent.get('dim')}-D {latent.get('distribution')}")
    for name in ("generator", "discriminator"):
        a = arch.get(name, {})
        if a:
            add(name, f"{a.get('kind')} {a.get('depth')}×{a.get('width')} {a.get('activation')}" + (" spectral-norm" if a.get("spectral_norm") else ""))
    add("transforms", ", ".join(f"{s['kind']}({','.join(s['columns'])})" for s in manifest.get("transforms", {}).get("x", {}).get("steps", [])))
    if data:
        add("training data", f"{data.get('path')} ({data.get('format')}, {number(data.get('rows'), ',')} rows, sha256 {str(data.get('sha256'))[:16]}…)")
        val = data.get("validation") or {}
        add("held out", f"{number(data.get('heldout_rows'), ',')} rows (fraction {val.get('fraction')}, seed {val.get('seed')})")
    if training:
        add("training", f"{number(training.get('rows_seen'), ',')} rows seen in {number(training.get('wall_time_s'), '.0f')} s on {training.get('device')} × {training.get('processes')}")
    if manifest.get("metrics"):
        add("metrics", json.dumps(manifest["metrics"])[:400])
    out.print(table)


def _shower_metrics_line(metrics: dict[str, Any]) -> str:
    """The headline numbers of a shower model's evaluation (the full set is in the manifest and the report)."""
    parts = []
    for level in ("low", "high"):
        if metrics.get(f"classifier_{level}_auc") is not None:
            parts.append(f"classifier AUC {level}-level {metrics[f'classifier_{level}_auc']:.3f} ± {metrics.get(f'classifier_{level}_auc_se') or 0:.3f}")
    for key, label in (("mean_separation_power_paper", "mean separation power (paper's variables)"), ("mean_separation_power", "mean separation power (all)")):
        if metrics.get(key) is not None:
            parts.append(f"{label} {metrics[key]:.3f}")
    for key in ("fpd", "kpd"):
        value = metrics.get(key)
        if isinstance(value, dict) and value.get("value") is not None:
            parts.append(f"{key.upper()} {value['value']:.4g} ± {value.get('error') or 0:.2g}")
    where = f" on the {metrics.get('n_reference', '?')} {metrics['evaluated_on']}" if metrics.get("evaluated_on") else ""
    report = f"; report {metrics['report']}" if metrics.get("report") else ""
    return ("; ".join(parts) or json.dumps(metrics)[:400]) + where + report


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help="input phase space")],
    dst: Annotated[Path, typer.Argument(help="output phase space (format from its suffix)")],
    columns: Annotated[Optional[str], typer.Option("--columns", help="columns to keep, comma separated")] = None,
    tree: Annotated[Optional[str], typer.Option("--tree", help="ROOT tree when the input holds several")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="rows per chunk (bounds memory)")] = 1_000_000,
    particle: Annotated[Optional[str], typer.Option("--particle", help="particle type for MCPL/IAEA output when IN has no PDGCode (gamma, e-, e+, neutron, proton or a PDG code)")] = None,
    drop_unknown: Annotated[bool, typer.Option("--drop-unknown", help="leave out columns DST's format cannot store (e.g. GlobalTime in IAEA, NewHistory in MCPL)")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite DST")] = False,
) -> None:
    """Convert a phase space between ROOT, npy, npz, MCPL and IAEA, streaming in chunks."""
    try:
        from gansim.io.phsp import convert as convert_files

        cols = [c.strip() for c in columns.split(",")] if columns else None
        rows = convert_files(
            src, dst, columns=cols, chunk_rows=chunk_rows, force=force, src_options={"tree": tree} if tree else None, particle=_particle_arg(particle), drop_unknown=drop_unknown
        )
        out.print(f"{rows:,d} rows written to {dst}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


def _particle_arg(value: str | None) -> str | int | None:
    """``--particle 22`` is a PDG code, ``--particle gamma`` a name."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


@app.command("import-gaga")
def import_gaga_cmd(
    pth: Annotated[Path, typer.Argument(help="gaga-phsp model file (.pth)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="gansim model directory to write")],
    epoch: Annotated[Optional[int], typer.Option("--epoch", help="import the generator snapshot stored at this epoch")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite OUTPUT")] = False,
) -> None:
    """Convert a gaga-phsp model into a gansim model, reading its pickle as plain data only (no code runs)."""
    try:
        from gansim.io.gaga import import_gaga

        model_dir = import_gaga(pth, output, force=force, epoch=epoch)
        out.print(f"gaga-phsp model {pth} imported into {model_dir}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


@app.command("data")
def data_cmd(
    name: Annotated[str, typer.Argument(help="built-in data set (see `gansim data list`)")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="output file")] = None,
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="rows")] = 1_000_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    force: Annotated[bool, typer.Option("--force")] = False,
    particle: Annotated[Optional[str], typer.Option("--particle", help="calo: eplus, gamma or piplus")] = None,
    layout: Annotated[Optional[str], typer.Option("--layout", help="calo: calogan (default) or calochallenge-ds2")] = None,
    classes: Annotated[Optional[int], typer.Option("--classes", min=2, help="brain-slices: number of classes (class k has k/(K-1) of the Alzheimer-like effect)")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="brain-slices: image side in pixels (a power of 2)")] = None,
    effect: Annotated[Optional[float], typer.Option("--effect", min=0.0, help="brain-slices: strength of the Alzheimer-like effect (1: the default)")] = None,
    subjects: Annotated[Optional[int], typer.Option("--subjects", min=1, help="brain-slices: training subjects per class (default 40); brain-volumes: training subjects per domain (default 8)")] = None,
    test_subjects: Annotated[Optional[int], typer.Option("--test-subjects", min=0, help="brain-slices: test subjects per class (>= 1, default 15); brain-volumes: test subjects (default 2; 0: no testA/testB)")] = None,
    slices_per_subject: Annotated[Optional[int], typer.Option("--slices-per-subject", min=1, help="brain-slices: axial slices per subject")] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="brain-volumes: 'default' (72×88×64 at 2.5×2.5×3 mm) or 'full' (182×218×182 at 1 mm)")] = None,
    unpaired: Annotated[bool, typer.Option("--unpaired", help="brain-volumes: trainA and trainB from different subjects")] = False,
) -> None:
    """Write a built-in data set (no download), e.g. `gansim data linac -o linac.npy`,
    `gansim data calo --particle eplus -n 100000 -o eplus.h5`."""
    try:
        from gansim.data.builtin import BUILTIN_DATASETS
        from gansim.io.phsp import write_table

        if name == "list":
            for key, (description, _) in BUILTIN_DATASETS.items():
                out.print(f"{key:12s} {description}", highlight=False, markup=False)
            out.print(f"{'calo':12s} GFlash showers in the CaloGAN layout (--particle eplus|gamma|piplus; --layout calochallenge-ds2), HDF5", highlight=False, markup=False)
            out.print(f"{'brain-slices':12s} labelled axial T1w-like slices from the MNI152 template (PACGAN layout: train/ and test/, NIfTI + labels.csv; needs nilearn)", highlight=False, markup=False)
            out.print(f"{'brain-volumes':12s} paired T1w/T2w volumes from the MNI152 template, spin-echo contrast, oblique affines (trainA/B, testA/B; needs nilearn)", highlight=False, markup=False)
            return
        slice_options = {"classes": classes, "size": size, "effect": effect, "train_subjects_per_class": subjects,
                         "test_subjects_per_class": test_subjects, "slices_per_subject": slices_per_subject}
        if name == "brain-volumes":
            from gansim.cli.volumes import write_brain_volumes_cmd

            if output is None:
                raise GansimError("-o/--output is required (a folder; trainA/, trainB/, testA/, testB/ go into it)")
            if any(v is not None for k, v in slice_options.items() if k not in ("train_subjects_per_class", "test_subjects_per_class")):
                raise GansimError("--classes, --size (a number), --effect and --slices-per-subject are brain-slices options; brain-volumes takes --subjects, --test-subjects, --preset, --unpaired")
            write_brain_volumes_cmd(output, seed=seed, force=force, n_train=subjects, n_test=test_subjects, preset=preset, unpaired=unpaired,
                                    say=lambda m: out.print(m, highlight=False, markup=False))
            return
        if preset is not None or unpaired:
            raise GansimError("--preset and --unpaired are options of the brain-volumes data set")
        if name == "brain-slices":
            from gansim.cli.slices import write_brain_slices_cmd

            if test_subjects == 0:
                raise GansimError("--test-subjects 0: brain-slices needs at least 1 test subject per class (0, no test set, is for brain-volumes)")

            if output is None:
                raise GansimError("-o/--output is required (a folder; train/ and test/ go into it)")
            write_brain_slices_cmd(output, seed=seed, force=force, options=slice_options, say=lambda m: out.print(m, highlight=False, markup=False))
            return
        given = [f"--{k.replace('_per_class', '').replace('train_', '').replace('_', '-')}" for k, v in slice_options.items() if v is not None]
        if given:
            raise GansimError(f"{', '.join(given)}: options of the brain-slices data set, not of {name!r}")
        if name == "calo":
            _write_calo(output, n, seed, force, particle or "eplus", layout or "calogan")
            return
        if particle is not None or layout is not None:
            raise GansimError(f"--particle and --layout apply to the calo data set, not {name!r}")
        if name not in BUILTIN_DATASETS:
            raise GansimError(f"unknown data set {name!r}; available: {', '.join(BUILTIN_DATASETS)}, calo, brain-slices, brain-volumes")
        if output is None:
            raise GansimError("-o/--output is required")
        table = BUILTIN_DATASETS[name][1](n, seed)
        write_table(output, table, force=force)
        out.print(f"{n:,d} rows of {name!r} written to {output}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


def _write_calo(output: Path | None, n: int, seed: int, force: bool, particle: str, layout: str) -> None:
    """GFlash showers written chunk by chunk (bounded memory) in the CaloGAN or CaloChallenge layout."""
    from gansim.data.calo import iter_calo_showers
    from gansim.io.calo import write_shower_chunks

    if output is None:
        raise GansimError("-o/--output is required (an .h5 or .hdf5 file)")
    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise GansimError(f"{output}: calorimeter showers are written as HDF5; use a .h5 or .hdf5 name")
    chunks = (part.to_shower_data() for part in iter_calo_showers(n, particle, seed=seed, layout=layout, chunk=4096, workers=2))
    rows = write_shower_chunks(output, chunks, force=force)
    out.print(f"{rows:,d} {particle} showers ({layout} layout) written to {output}", highlight=False, markup=False)


def _count(text: str, what: str) -> float:
    """An event count given as 1000000, 1e6 or 1_000_000 (run_mc checks it is a whole number)."""
    try:
        return float(text.replace("_", ""))
    except ValueError:
        raise GansimError(f"{what} {text!r}: expected a number such as 1e6") from None


def _placement(translation: str | None, rotation: str | None) -> tuple[list[float] | None, Any]:
    """(translation mm, 3x3 rotation) from --translation X,Y,Z and --rotation AXIS,DEGREES."""
    from gansim.physics.geometry import rotation_matrix
    from gansim.units import deg

    shift = None
    if translation is not None:
        try:
            shift = [float(v) for v in translation.split(",")]
        except ValueError:
            shift = []
        if len(shift) != 3:
            raise GansimError(f"--translation {translation!r}: expected X,Y,Z in mm")
    turn = None
    if rotation is not None:
        axis, _, angle = rotation.partition(",")
        try:
            degrees = float(angle)
        except ValueError:
            raise GansimError(f"--rotation {rotation!r}: expected AXIS,DEGREES such as z,30") from None
        turn = rotation_matrix(axis.strip(), degrees * deg)
    return shift, turn


@app.command("mc")
def mc_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="exit phase space (.root, .npy, .npz; .mcpl/.IAEAphsp with --no-absorbed-rows)")],
    phantom: Annotated[str, typer.Option("--phantom", help="built-in (iec, water-cylinder, water-sphere, water-box) or a CT (HU) / label image file")] = "iec",
    spacing: Annotated[Optional[float], typer.Option("--spacing", help="voxel size of a built-in phantom, mm")] = None,
    hu_table: Annotated[Optional[Path], typer.Option("--hu-table", help="Hounsfield-unit table (JSON, see gansim.physics.materials.HUTable) for a CT image; default Schneider-like")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="JSON {label: material} when the phantom image holds labels, not HU")] = None,
    translation: Annotated[Optional[str], typer.Option("--translation", help="place the phantom (and an activity image) at X,Y,Z mm")] = None,
    rotation: Annotated[Optional[str], typer.Option("--rotation", help="turn the phantom (and an activity image) about the world origin: AXIS,DEGREES with AXIS x, y or z ")] = None,
    world: Annotated[str, typer.Option("--world", help="material between phantom and exit surface (G4_AIR, G4_Galactic for vacuum)")] = "G4_AIR",
    isotope: Annotated[str, typer.Option("--isotope", help="Tc99m, I123, In111, Lu177, I131 (photon lines) or F18, Ga68 (annihilation pairs)")] = "Tc99m",
    energy_kev: Annotated[Optional[float], typer.Option("--energy", help="mono-energetic photons of this energy (keV) instead of the isotope's lines")] = None,
    source: Annotated[str, typer.Option("--source", help="phantom (its built-in activity), point:X,Y,Z, box:CX,CY,CZ,SX,SY,SZ, sphere:CX,CY,CZ,R (mm), or an activity image file")] = "phantom",
    n: Annotated[Optional[str], typer.Option("-n", "--n", help="number of events (e.g. 1e6)")] = None,
    activity_mbq: Annotated[Optional[float], typer.Option("--activity", help="activity at the start, MBq (with --duration)")] = None,
    duration_s: Annotated[Optional[float], typer.Option("--duration", help="acquisition time, s: with --activity, decays follow the half-life; with -n, the n decays are spread over it by the same law")] = None,
    exit_surface: Annotated[Optional[str], typer.Option("--exit-surface", help="sphere:R or cylinder:R,LENGTH (mm, centred on the origin); default: a sphere around the phantom")] = None,
    layout: Annotated[str, typer.Option("--layout", help="photons: a row per exit photon (GATE keys); pairs or tlor (PET): a row per event")] = "photons",
    absorbed_rows: Annotated[bool, typer.Option("--absorbed-rows/--no-absorbed-rows", help="one zero-energy row per event in which nothing leaves (conditional-GAN training data)")] = True,
    photoelectric: Annotated[bool, typer.Option("--photoelectric/--no-photoelectric")] = True,
    compton: Annotated[bool, typer.Option("--compton/--no-compton")] = True,
    rayleigh: Annotated[bool, typer.Option("--rayleigh/--no-rayleigh")] = True,
    isf: Annotated[bool, typer.Option("--isf/--no-isf", help="Compton with the incoherent scattering function (binding effects; --no-isf: free electrons, Klein-Nishina)")] = True,
    acollinearity: Annotated[float, typer.Option("--acollinearity", help="FWHM of pair acollinearity, degrees (0 for exact back to back)")] = 0.5,
    positron_range: Annotated[bool, typer.Option("--positron-range", help="move annihilation points by a sampled positron range")] = False,
    energy_cut_kev: Annotated[float, typer.Option("--energy-cut", help="photons below this energy (keV) deposit locally")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same file (same chunk size and device)")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda[:N], mps")] = "auto",
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="events per chunk (bounds memory)")] = 1 << 18,
    drop_unknown: Annotated[bool, typer.Option("--drop-unknown", help="leave out columns the output format cannot store (MCPL, IAEA)")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite OUTPUT")] = False,
) -> None:
    """Photon Monte Carlo through a phantom; writes the photons leaving it (GATE's keys), e.g.
    `gansim mc --phantom iec --isotope Tc99m -n 1e6 -o train.root`."""
    try:
        from gansim.physics.mc import run_mc
        from gansim.physics.scenario import build_mc
        from gansim.units import MBq, deg, keV, s

        count = _count(n, "-n") if n is not None else None
        if count is None and (activity_mbq is None or duration_s is None):
            raise GansimError("give -n N, or --activity MBQ with --duration S")
        if count is not None and activity_mbq is not None:
            raise GansimError("give either -n N (optionally with --duration, to spread the decays) or --activity with --duration, not both")
        place = _placement(translation, rotation)
        setup = build_mc(
            phantom=phantom, spacing=spacing, hu_table=hu_table, labels=labels, world_material=world,
            isotope=isotope, energy=energy_kev * keV if energy_kev is not None else None, source=source,
            exit_surface=exit_surface, translation=place[0], rotation=place[1], device=device, photoelectric=photoelectric, compton=compton, rayleigh=rayleigh,
            incoherent_scattering_function=isf, acollinearity_fwhm=acollinearity * deg, positron_range=positron_range,
            energy_cut=energy_cut_kev * keV,
        )
        options: dict[str, Any] = {"drop_unknown": True} if drop_unknown else {}

        def progress(summary: Any) -> None:
            console.print(f"  {summary.events:,d} events, {summary.rows_written:,d} rows, {summary.events_per_second:,.0f} events/s", highlight=False, markup=False)

        summary = run_mc(
            setup.transport, setup.source, output,
            n=count,
            activity=activity_mbq * MBq if activity_mbq is not None and count is None else None,
            duration=duration_s * s if duration_s is not None else None,
            seed=seed, chunk_size=chunk_size, absorbed_rows=absorbed_rows, force=force, layout=layout, writer_options=options, progress=progress,
        )
        out.print(json.dumps(summary.to_dict(), indent=1, default=str), highlight=False, markup=False)
        out.print(f"{summary.rows_written:,d} rows ({summary.photons_exited:,d} exit photons, {summary.absorbed_events:,d} absorbed events) written to {output}", highlight=False, markup=False)
    except GansimError as err:
        _fail(err)


@app.command()
def demo(
    name: Annotated[str, typer.Argument(help="demo to run: spect (the main job) or linac")] = "spect",
    output: Annotated[Path, typer.Option("-o", "--output", help="demo directory")] = Path("demo-output"),
    minutes: Annotated[Optional[float], typer.Option("--minutes", help="rough training budget on 2 CPU cores (default: spect 5, linac 3)")] = None,
    force: Annotated[bool, typer.Option("--force", help="start over in a non-empty OUTPUT")] = False,
) -> None:
    """The main job on built-in data, end to end; prints where its report is.

    spect: Monte Carlo training data, a conditional GAN, a 3-run dynamic simulation with the
    analog and the GAN source, and a report comparing them. linac: a phase-space GAN.
    """
    try:
        from gansim.demos import run_demo

        run_demo(name, output, minutes=minutes, force=force, log=lambda m: console.print(m, highlight=False, markup=False), out=out)
    except GansimError as err:
        _fail(err)


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (batch schedulers, `timeout`) into SystemExit so half-written outputs are removed, not left behind."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. embedded): leave the default
        pass


def _plain_warnings() -> None:
    """Show Python warnings to the command line's user as ``warning: ...`` lines (not with the source line that raised them)."""
    import warnings

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)

    warnings.showwarning = show


def main() -> None:
    """Entry point of ``python -m gansim`` and the ``gansim`` script."""
    _exit_on_sigterm()
    _plain_warnings()
    app()


if __name__ == "__main__":
    main()
