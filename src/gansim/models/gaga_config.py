"""Read gaga-phsp (0.7.x) training option files and translate them into a gansim phase-space config.

gaga-phsp trains from a flat JSON "options" file (``gaga_train data.root options.json``);
gansim's :class:`~gansim.models.phsp_gan.PhaseSpaceGANConfig` has sections
(``data``, ``model``, ``loss``, ``optim``, ``train``). This module maps one onto the other.

- :data:`GAGA_KNOWN_KEYS` — every key gaga-phsp 0.7.x accepts in an options file
  (its ``required``, ``automated`` and ``optional`` lists, the Adam and clamp keys, and the
  0.7 additions ``dataloader_num_workers`` / ``positional_encoding(_options)``).
- :func:`is_gaga_options` — does a JSON object look like gaga options rather than a gansim config?
- :func:`translate_gaga_options` — ``(config_dict, notes)``; ``config_dict`` goes to
  ``parse_config(PhaseSpaceGANConfig, config_dict)``.

Mapping (gaga -> gansim):

==============================================  ===============================================
gaga-phsp                                       gansim
==============================================  ===============================================
``keys`` (str, space separated; ``#`` = space)  ``data.keys`` (minus the condition keys)
``cond_keys``                                   ``data.cond_keys`` (matched by name)
``z_dim``, ``g_dim``, ``g_layers``              ``model.z_dim``, ``g_width``, ``g_depth``
``d_dim``, ``d_layers``, ``spectral_norm``      ``model.d_width``, ``d_depth``, ``spectral_norm``
``activation`` relu / leaky_relu / my_leaky…    ``model.activation`` (leaky: ``leaky_slope`` 0.01)
``z_rand_type`` randn / rand                    ``model.latent`` normal / uniform (see below)
``loss`` wasserstein / hinge / non_sat…_bce     ``loss.adversarial`` wasserstein / hinge / non_saturating
``penalty`` GP_{L1,L2,Linf}_LS                  ``loss.penalty`` two_sided, ``penalty_norm`` L1/L2/Linf
``penalty`` GP_{L1,L2,Linf}_Hinge               ``loss.penalty`` one_sided, ``penalty_norm`` L1/L2/Linf
``penalty`` GP_0GP / GP_SquareHinge             ``loss.penalty`` zero_centred / square_hinge
``penalty`` clamp (+ clamp_lower/upper)         ``loss.penalty`` clamp, ``loss.clamp``
``penalty`` no_penalty                          ``loss.penalty`` none
``penalty_weight``                              ``loss.penalty_weight``
``d_nb_update`` / ``g_nb_update``               ``loss.d_steps`` / ``loss.g_steps``
``optimiser`` adam / RMSprop / SGD              ``optim.{D,G}.name`` adam / rmsprop / sgd
``{d,g}_learning_rate``                         ``optim.{D,G}.lr``
adam: ``{d,g}_weight_decay``, ``beta_1/2``      ``optim.{D,G}.weight_decay``, ``betas``
RMSprop: ``RMSprop_{d,g}_momentum``,            ``optim.{D,G}.momentum``, ``alpha``, ``weight_decay``
``RMSProp_{d,g}_alpha / _weight_decay``         (``RMSProp_*_centered`` true is refused)
``schedule_learning_rate_step/_gamma``          ``optim.{D,G}.scheduler`` step, ``step_rows``, ``gamma``
``batch_size``                                  ``train.batch_size``
``epoch``                                       ``train.total_rows`` (see below)
``gpu_mode`` auto / cpu / gpu                   ``train.device`` auto / cpu / cuda
==============================================  ===============================================

Epochs to rows. gansim counts progress in real rows seen by D. gaga-phsp 0.7's ``train2`` (what
``gaga_train`` runs) calls one pass over the data an "epoch"; its DataLoader drops the last partial
batch, so one epoch is ``(n_rows // batch_size) * batch_size`` rows, and ``total_rows = epoch *
that``: the number of training rows (``n_rows_hint``) is then needed. Its StepLR schedulers are
stepped once per epoch with step sizes ``step * d_nb_update`` (D) and ``step * g_nb_update`` (G)
epochs, so ``step_rows = step * {d,g}_nb_update * rows_per_epoch``. With
``epoch_unit="iteration"`` (the legacy ``train()`` and 2019 configs, where an epoch was one
iteration of ``d_nb_update`` D steps) an iteration is ``d_nb_update * batch_size`` rows, both
schedulers decay every ``step`` iterations, and no row count is needed.

Latent. gaga ``rand`` is ``torch.rand``, uniform on [0, 1); gansim's ``uniform`` latent is
[-1, 1) and the range cannot be set from a config today. For training from scratch the two
differ only by an affine map absorbed by G's first layer, so ``rand`` maps to ``uniform`` with a
warning in the notes. gaga turns any other ``z_rand_type`` (including the documented ``normal``
and ``uniform`` used in its own example files) silently into ``randn``; here ``normal`` maps to
``normal`` and ``uniform`` also to ``normal`` (what gaga really trained with), with a warning.

Conditions. gaga conditions on the *last* ``len(cond_keys)`` columns of ``keys`` whatever their
names; gansim matches conditions by name. A condition key missing from ``keys`` is an error; cond
keys that are in ``keys`` but not at its end are accepted with a warning saying which columns gaga
would have used.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from gansim.errors import ConfigError

__all__ = [
    "GAGA_KNOWN_KEYS",
    "GAGA_PENALTIES",
    "GAGA_IGNORED_KEYS",
    "is_gaga_options",
    "translate_gaga_options",
]

# gaga_helpers.check_input_params: "required" (keys_list is filled in from keys)
_REQUIRED = (
    "gpu_mode", "model", "d_layers", "g_layers", "d_learning_rate", "g_learning_rate", "optimiser",
    "d_nb_update", "g_nb_update", "loss", "penalty", "penalty_weight", "batch_size", "epoch", "d_dim",
    "g_dim", "z_dim", "r_instance_noise_sigma", "f_instance_noise_sigma", "activation", "z_rand_type",
    "shuffle", "keys", "epoch_dump", "keys_list",
)  # fmt: skip
# "automated": written by gaga into the params stored in a .pth, accepted back in options
_AUTOMATED = (
    "params_filename", "training_size", "x_dim", "progress_bar", "training_filename", "start_date",
    "hostname", "d_nb_weights", "g_nb_weights", "x_mean", "x_std", "end_epoch", "Duration", "duration",
    "end_date", "output_filename", "cond_keys",
)  # fmt: skip
_OPTIONAL = (
    "start_pth", "start_epoch", "schedule_learning_rate_step", "schedule_learning_rate_gamma",
    "label_smoothing", "spectral_norm", "epoch_store_model_every", "RMSprop_d_momentum",
    "RMSprop_g_momentum", "RMSProp_d_alpha", "RMSProp_g_alpha", "GAN_model", "RMSProp_d_weight_decay",
    "RMSProp_g_weight_decay", "RMSProp_d_centered", "RMSProp_g_centered",
)  # fmt: skip
_ADAM = ("g_weight_decay", "d_weight_decay", "beta_1", "beta_2")
_CLAMP = ("clamp_lower", "clamp_upper")
_V07 = ("dataloader_num_workers", "positional_encoding", "positional_encoding_options")

#: Every key gaga-phsp 0.7.x accepts in an options file (``#...`` comment keys aside).
GAGA_KNOWN_KEYS: frozenset[str] = frozenset(_REQUIRED + _AUTOMATED + _OPTIONAL + _ADAM + _CLAMP + _V07)

#: Keys that only matter to gaga's own bookkeeping (or that ``train2`` does not use): accepted, ignored.
GAGA_IGNORED_KEYS: dict[str, str] = {
    "epoch_dump": "gaga's console print interval",
    "epoch_store_model_every": "gaga's G snapshots inside the .pth (gansim: train.checkpoint_rows)",
    "shuffle": "gaga's DataLoader shuffle flag (gansim uses its own batching)",
    "dataloader_num_workers": "gaga's DataLoader workers",
    "start_pth": "resuming from a gaga .pth (gansim resumes from its own run directory)",
    "start_epoch": "resuming from a gaga .pth",
    "r_instance_noise_sigma": "instance noise (not used by gaga's train2)",
    "f_instance_noise_sigma": "instance noise (not used by gaga's train2)",
    "label_smoothing": "label smoothing (not used by gaga's train2)",
    "GAN_model": "legacy model tag",
    "progress_bar": "gaga's progress bar",
    "params_filename": "written by gaga",
    "training_size": "written by gaga",
    "x_dim": "written by gaga",
    "training_filename": "written by gaga",
    "start_date": "written by gaga",
    "hostname": "written by gaga",
    "d_nb_weights": "written by gaga",
    "g_nb_weights": "written by gaga",
    "x_mean": "written by gaga (gansim fits its own column transforms)",
    "x_std": "written by gaga (gansim fits its own column transforms)",
    "end_epoch": "written by gaga",
    "Duration": "written by gaga",
    "duration": "written by gaga",
    "end_date": "written by gaga",
    "output_filename": "written by gaga",
}

#: gaga penalty name -> (gansim loss.penalty, loss.penalty_norm or None)
GAGA_PENALTIES: dict[str, tuple[str, str | None]] = {
    "GP_L1_LS": ("two_sided", "L1"),
    "GP_L2_LS": ("two_sided", "L2"),
    "GP_Linf_LS": ("two_sided", "Linf"),
    "GP_L1_Hinge": ("one_sided", "L1"),
    "GP_L2_Hinge": ("one_sided", "L2"),
    "GP_Linf_Hinge": ("one_sided", "Linf"),
    "GP_0GP": ("zero_centred", None),
    "GP_SquareHinge": ("square_hinge", None),
    "clamp": ("clamp", None),
    "no_penalty": ("none", None),
}

_LOSSES = {"wasserstein": "wasserstein", "hinge": "hinge", "non_saturating_bce": "non_saturating"}
_ACTIVATIONS = {"relu": "relu", "leaky_relu": "leaky_relu", "my_leaky_relu": "leaky_relu"}
_OPTIMISERS = {"adam": "adam", "RMSprop": "rmsprop", "SGD": "sgd"}
_Z_RAND = ("rand", "randn", "normal", "uniform")
_GPU_MODES = {"auto": "auto", "cpu": "cpu", "gpu": "cuda", "true": "cuda", "false": "cpu"}
_MODELS = ("v3",)
#: gaga's leaky_relu / my_leaky_relu negative slope (torch's default)
GAGA_LEAKY_SLOPE = 0.01

#: keys of pre-0.5 (2019) gaga files that gaga-phsp 0.7 also rejects
_LEGACY_HINTS = {
    "type": "a 2019 gaga key; gaga-phsp 0.7 rejects it too",
    "gp_weight": "a 2019 gaga key; use 'penalty_weight' (gaga-phsp 0.7 rejects it too)",
    "layer_norm": "a 2019 gaga key; gaga-phsp 0.7 rejects it too and has no layer normalisation",
    "constraints": "a 2019 gaga key; gaga-phsp 0.7 rejects it too (gansim: data.clip)",
    "z_rand": "use 'z_rand_type' (rand or randn)",
}

#: keys that only a gaga options file has (used by :func:`is_gaga_options`)
_GAGA_ONLY = frozenset(
    {
        "g_dim", "d_dim", "g_layers", "d_layers", "z_rand_type", "d_nb_update", "g_nb_update", "penalty",
        "penalty_weight", "optimiser", "d_learning_rate", "g_learning_rate", "epoch", "epoch_dump",
        "gpu_mode", "r_instance_noise_sigma", "f_instance_noise_sigma", "epoch_store_model_every",
        "schedule_learning_rate_step", "clamp_lower", "clamp_upper", "keys_list",
    }
)  # fmt: skip
_GANSIM_SECTIONS = ("data", "model", "loss", "optim", "train")


def is_gaga_options(data: dict[str, Any]) -> bool:
    """True when ``data`` looks like gaga-phsp options: gaga-only keys and no gansim sections.

    ``model`` and ``loss`` are strings in gaga files ("v3", "wasserstein") but objects in gansim
    configs, so only object-valued sections (or a ``family`` key) count as gansim.
    """
    if not isinstance(data, dict):
        return False
    if "family" in data or any(isinstance(data.get(s), dict) for s in _GANSIM_SECTIONS):
        return False
    return any(k in _GAGA_ONLY for k in data)


def _split_keys(value: Any, name: str, errors: list[str]) -> list[str] | None:
    """gaga key lists: a string of names separated by spaces (``#`` stands for a space), or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [k for k in re.split(r"[\s,#]+", value) if k]
    if isinstance(value, (list, tuple)) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value if k.strip()]
    errors.append(f"  {name}: expected a string of column names separated by spaces, or a list of names (got {value!r})")
    return None


def _choice(data: dict[str, Any], key: str, allowed: Any, default: str, errors: list[str]) -> str | None:
    value = data.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        errors.append(f"  {key}: {value!r} is not allowed; expected one of {', '.join(repr(a) for a in allowed)}")
        return None
    return value


def _number(data: dict[str, Any], key: str, errors: list[str], *, integer: bool = False, default: Any = None) -> Any:
    """A number from the options; gaga also accepts numeric strings (its files hold ``"beta_1": "0.9"``)."""
    if key not in data:
        return default
    value = data[key]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if integer:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except (TypeError, ValueError):
        errors.append(f"  {key}: expected {'an integer' if integer else 'a number'}, got {value!r}")
        return None


def _boolean(data: dict[str, Any], key: str, errors: list[str], default: bool = False) -> bool:
    value = data.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    errors.append(f"  {key}: expected true or false, got {value!r}")
    return default


def translate_gaga_options(
    data: dict[str, Any],
    *,
    source: str,
    n_rows_hint: int | None = None,
    epoch_unit: Literal["pass", "iteration"] = "pass",
) -> tuple[dict[str, Any], list[str]]:
    """Translate gaga-phsp options into a plain dict for ``parse_config(PhaseSpaceGANConfig, ...)``.

    Args:
        data: the options object (``#`` comment keys are dropped here too).
        source: the options file's name, used in error messages.
        n_rows_hint: number of training rows; needed to turn gaga epochs (passes over the data)
            into ``train.total_rows`` and scheduler ``step_rows``.
        epoch_unit: ``"pass"`` (gaga-phsp 0.7 ``train2``: one epoch is one pass over the data) or
            ``"iteration"`` (legacy ``train()`` / 2019 configs: one epoch is one iteration).

    Returns:
        ``(config_dict, notes)``: notes are human-readable lines, ``"ignored: ..."`` for accepted but
        unused keys and ``"warning: ..."`` where gansim behaves differently from gaga.

    Raises:
        ConfigError: one error listing every unknown key (with the nearest gaga names), every
        missing required key and every value outside its allowed set.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: gaga-phsp options must be a JSON object, got {type(data).__name__}")
    if epoch_unit not in ("pass", "iteration"):
        raise ConfigError(f"epoch_unit {epoch_unit!r} is not allowed; expected 'pass' or 'iteration'")
    opts = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("#"))}
    errors: list[str] = []
    notes: list[str] = []

    # ------------------------------------------------------------------ unknown keys, all at once
    known = sorted(GAGA_KNOWN_KEYS)
    for key in opts:
        if key in GAGA_KNOWN_KEYS:
            continue
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        if not close:  # case slips such as RMSprop_d_alpha / RMSProp_d_alpha
            lower = {k.lower(): k for k in known}
            close = [lower[c] for c in difflib.get_close_matches(key.lower(), list(lower), n=3, cutoff=0.6)]
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        if key in _LEGACY_HINTS:
            hint += f" ({_LEGACY_HINTS[key]})"
        errors.append(f"  unknown key {key!r}{hint}")

    # ------------------------------------------------------------------ required keys
    required = ["z_dim", "g_dim", "g_layers", "d_dim", "d_layers", "optimiser", "d_learning_rate",
                "g_learning_rate", "d_nb_update", "g_nb_update", "batch_size", "epoch"]  # fmt: skip
    if opts.get("optimiser") == "adam":
        required += list(_ADAM)
    missing = [k for k in required if k not in opts]
    if missing:
        errors.append(f"  missing key(s) gaga-phsp requires: {', '.join(missing)}")

    # ------------------------------------------------------------------ unsupported features
    model_version = opts.get("model", "v3")
    if opts.get("positional_encoding") or opts.get("positional_encoding_options") or model_version == "v4":
        errors.append(
            "  positional_encoding / model 'v4' (NeRF-style sin/cos encoding of columns) is not supported by gansim; "
            "use model 'v3' without positional_encoding"
        )
    elif model_version not in _MODELS:
        errors.append(f"  model: {model_version!r} is not allowed; expected 'v3'")

    # ------------------------------------------------------------------ data
    data_sec: dict[str, Any] = {}
    keys = _split_keys(opts["keys"], "keys", errors) if "keys" in opts else None
    if keys is None and "keys_list" in opts:
        keys = _split_keys(opts["keys_list"], "keys_list", errors)
    cond = _split_keys(opts.get("cond_keys"), "cond_keys", errors) or []
    if keys is not None:
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            errors.append(f"  keys: {dup} appear more than once")
        not_in = [c for c in cond if c not in keys]
        if not_in:
            errors.append(
                f"  cond_keys {not_in} are not in keys {keys}; gaga-phsp takes the conditions from the keys "
                f"(the last {len(cond)} of them), so every condition key must also be listed in 'keys'"
            )
        elif cond and keys[len(keys) - len(cond) :] != cond:
            notes.append(
                f"warning: cond_keys {cond} are not the last {len(cond)} keys of {keys}; gaga-phsp conditions on "
                f"columns by position and would have used {keys[len(keys) - len(cond):]}; gansim uses {cond} by name"
            )
        data_sec["keys"] = [k for k in keys if k not in cond]
    elif "keys" not in opts and "keys_list" not in opts:
        notes.append("warning: no 'keys': gansim generates every numeric column but the conditions (gaga: every column read)")
    if cond:
        data_sec["cond_keys"] = cond

    # ------------------------------------------------------------------ model
    model: dict[str, Any] = {}
    for gaga_key, ours, minimum in (("z_dim", "z_dim", 1), ("g_dim", "g_width", 1), ("g_layers", "g_depth", 0),
                                    ("d_dim", "d_width", 1), ("d_layers", "d_depth", 0)):  # fmt: skip
        value = _number(opts, gaga_key, errors, integer=True)
        if value is not None:
            if value < minimum:
                errors.append(f"  {gaga_key}: must be >= {minimum}, got {value}")
            model[ours] = value
    act = _choice(opts, "activation", list(_ACTIVATIONS), "relu", errors)
    if act is not None:
        model["activation"] = _ACTIVATIONS[act]
        if model["activation"] == "leaky_relu":
            model["leaky_slope"] = GAGA_LEAKY_SLOPE
        if act == "my_leaky_relu":
            notes.append("my_leaky_relu (gaga's own clamp-based leaky ReLU, slope 0.01) is the same function as leaky_relu with slope 0.01")
    if "spectral_norm" in opts:
        model["spectral_norm"] = _boolean(opts, "spectral_norm", errors)
    z_rand = _choice(opts, "z_rand_type", list(_Z_RAND), "randn", errors)
    if z_rand == "rand":
        model["latent"] = "uniform"
        notes.append(
            "warning: z_rand_type 'rand' is uniform on [0, 1) in gaga-phsp; gansim's 'uniform' latent is [-1, 1) "
            "(not settable from a config); equivalent when training from scratch (G's first layer absorbs the affine map)"
        )
    elif z_rand is not None:
        model["latent"] = "normal"
        if z_rand == "uniform":
            notes.append(
                "warning: z_rand_type 'uniform' is not a value gaga-phsp knows: it silently uses randn, so this "
                "translates to a normal latent; write 'rand' for a uniform latent"
            )
        elif z_rand == "normal":
            notes.append("z_rand_type 'normal' is not a gaga-phsp value but gaga uses randn for it; translated to a normal latent")

    # ------------------------------------------------------------------ loss
    loss: dict[str, Any] = {}
    adv = _choice(opts, "loss", list(_LOSSES), "wasserstein", errors)
    if adv is not None:
        loss["adversarial"] = _LOSSES[adv]
        if adv == "non_saturating_bce":
            notes.append("warning: loss 'non_saturating_bce' is broken in gaga-phsp (it cannot train); gansim's non_saturating works")
    pen = _choice(opts, "penalty", list(GAGA_PENALTIES), "clamp", errors)
    if pen is not None:
        kind, norm = GAGA_PENALTIES[pen]
        loss["penalty"] = kind
        if norm is not None:
            loss["penalty_norm"] = norm
        if kind == "clamp":
            lower = _number(opts, "clamp_lower", errors)
            upper = _number(opts, "clamp_upper", errors)
            if "clamp_lower" not in opts or "clamp_upper" not in opts:
                notes.append("warning: penalty 'clamp' without clamp_lower/clamp_upper (gaga-phsp would fail); using -0.01, 0.01")
            loss["clamp"] = [-0.01 if lower is None else lower, 0.01 if upper is None else upper]
        else:
            for k in _CLAMP:
                if k in opts:
                    notes.append(f"ignored: {k} (only used with penalty 'clamp')")
            if cond and kind not in ("none",):
                notes.append("warning: gaga differentiates its gradient penalty w.r.t. all columns including the conditions; gansim w.r.t. the generated columns only")
    weight = _number(opts, "penalty_weight", errors, default=0.0)
    if weight is not None:
        if weight < 0:
            errors.append(f"  penalty_weight: must be >= 0, got {weight}")
        loss["penalty_weight"] = weight
    d_nb = _number(opts, "d_nb_update", errors, integer=True)
    g_nb = _number(opts, "g_nb_update", errors, integer=True)
    for name, value in (("d_nb_update", d_nb), ("g_nb_update", g_nb)):
        if value is not None and value < 1:
            errors.append(f"  {name}: must be >= 1, got {value}")
    if d_nb is not None:
        loss["d_steps"] = d_nb
    if g_nb is not None:
        loss["g_steps"] = g_nb

    # ------------------------------------------------------------------ train
    train: dict[str, Any] = {}
    batch = _number(opts, "batch_size", errors, integer=True)
    if batch is not None:
        if batch < 1:
            errors.append(f"  batch_size: must be >= 1, got {batch}")
            batch = None
        else:
            train["batch_size"] = batch
    if "gpu_mode" in opts:
        mode = opts["gpu_mode"]
        mode = str(mode).lower() if isinstance(mode, bool) else mode
        if not isinstance(mode, str) or mode not in _GPU_MODES:
            errors.append(f"  gpu_mode: {opts['gpu_mode']!r} is not allowed; expected one of 'auto', 'cpu', 'gpu' (older files: 'true', 'false')")
        else:
            train["device"] = _GPU_MODES[mode]
    epoch = _number(opts, "epoch", errors, integer=True)
    if epoch is not None and epoch < 1:
        errors.append(f"  epoch: must be >= 1, got {epoch}")
        epoch = None
    rows_per_epoch: int | None = None
    if batch is not None and d_nb is not None and d_nb >= 1:
        if epoch_unit == "iteration":
            rows_per_epoch = d_nb * batch
        elif n_rows_hint is None:
            if epoch is not None:
                errors.append(
                    "  epoch: gaga-phsp counts epochs as passes over the training data; the number of training rows "
                    "(n_rows_hint) is needed to turn them into train.total_rows (or use epoch_unit='iteration' for "
                    "legacy/2019 options where an epoch was one iteration)"
                )
        elif n_rows_hint < batch:
            errors.append(f"  batch_size {batch} is larger than the {n_rows_hint} training rows: gaga's DataLoader (drop_last) would yield no batch")
        else:
            rows_per_epoch = (n_rows_hint // batch) * batch
    if epoch is not None and rows_per_epoch is not None:
        train["total_rows"] = epoch * rows_per_epoch
        unit = f"{d_nb} x {batch} rows per iteration" if epoch_unit == "iteration" else f"{rows_per_epoch} rows per pass ({n_rows_hint} rows, whole batches of {batch})"
        notes.append(f"epoch {epoch} -> train.total_rows {train['total_rows']} ({unit})")

    # ------------------------------------------------------------------ optimisers
    opt_name = _choice(opts, "optimiser", list(_OPTIMISERS), "RMSprop", errors) if "optimiser" in opts else None
    optim: dict[str, Any] = {}
    step = _number(opts, "schedule_learning_rate_step", errors, integer=True)
    gamma = _number(opts, "schedule_learning_rate_gamma", errors)
    if (step is None) != (gamma is None) and not errors:
        notes.append("ignored: schedule_learning_rate_step/_gamma (gaga enables its scheduler only when both are given)")
    if step is not None and step < 1:
        errors.append(f"  schedule_learning_rate_step: must be >= 1, got {step}")
    for net, nb in (("D", d_nb), ("G", g_nb)):
        p = net.lower()
        settings: dict[str, Any] = {}
        lr = _number(opts, f"{p}_learning_rate", errors)
        if lr is not None:
            settings["lr"] = lr
        if opt_name is not None:
            settings["name"] = _OPTIMISERS[opt_name]
            if opt_name == "adam":
                wd = _number(opts, f"{p}_weight_decay", errors)
                b1, b2 = _number(opts, "beta_1", errors), _number(opts, "beta_2", errors)
                if wd is not None:
                    settings["weight_decay"] = wd
                if b1 is not None and b2 is not None:
                    settings["betas"] = [b1, b2]
            elif opt_name == "RMSprop":
                settings["momentum"] = _number(opts, f"RMSprop_{p}_momentum", errors, default=0.0)
                settings["alpha"] = _number(opts, f"RMSProp_{p}_alpha", errors, default=0.99)
                settings["weight_decay"] = _number(opts, f"RMSProp_{p}_weight_decay", errors, default=0.0)
                if _boolean(opts, f"RMSProp_{p}_centered", errors):
                    errors.append(f"  RMSProp_{p}_centered: true (centred RMSprop) is not supported by gansim; remove it or set it to false")
            else:  # SGD: gaga passes only the learning rate
                settings["momentum"] = 0.0
                settings["weight_decay"] = 0.0
        if step is not None and gamma is not None and nb is not None and rows_per_epoch is not None:
            settings["scheduler"] = "step"
            settings["gamma"] = gamma
            settings["step_rows"] = step * (1 if epoch_unit == "iteration" else nb) * rows_per_epoch
        optim[net] = settings
    if "scheduler" in optim["D"]:
        notes.append(
            f"schedule_learning_rate_step {step} -> step_rows D {optim['D']['step_rows']}, G {optim['G']['step_rows']} "
            + ("(both decay every step iterations)" if epoch_unit == "iteration" else "(StepLR stepped once per epoch, step x d_nb_update / g_nb_update epochs)")
        )
    elif step is not None and gamma is not None and rows_per_epoch is None and not errors:
        errors.append("  schedule_learning_rate_step: needs batch_size, d_nb_update, g_nb_update and the row count to convert to rows")
    if opt_name is not None and opt_name != "adam":
        for k in (*_ADAM,):
            if k in opts:
                notes.append(f"ignored: {k} (Adam only; optimiser is {opt_name})")
    if opt_name is not None and opt_name != "RMSprop":
        for k in _OPTIONAL:
            if k.lower().startswith("rmsprop_") and k in opts:
                notes.append(f"ignored: {k} (RMSprop only; optimiser is {opt_name})")

    # ------------------------------------------------------------------ ignored bookkeeping keys
    for key in opts:
        if key in GAGA_IGNORED_KEYS:
            notes.append(f"ignored: {key} ({GAGA_IGNORED_KEYS[key]})")
        elif key == "keys_list" and "keys" in opts:
            notes.append("ignored: keys_list (derived from keys)")
    for k in ("r_instance_noise_sigma", "f_instance_noise_sigma"):
        v = opts.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            notes.append(f"warning: {k} {v} > 0 has no effect in gaga-phsp's train2 nor in gansim")

    notes.append(
        "gansim-only settings keep gansim's defaults: EMA of G, validation hold-out (train.validation_fraction), "
        "column transforms (log energy, unit directions; gaga z-scores every column)"
    )
    if errors:
        raise ConfigError(f"{source}: invalid gaga-phsp options\n" + "\n".join(errors))

    config: dict[str, Any] = {"family": "phsp", "data": data_sec, "model": model, "loss": loss, "optim": optim, "train": train}
    return config, notes
