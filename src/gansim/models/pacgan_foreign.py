"""Read PACGAN's own ``Training/config.json`` and translate it into gansim's typed PACGAN config.

PACGAN (``../shared/reference/medical_gans.md`` §(a)) configures a run with one flat JSON object
of upper-case keys. Several values are Python source that PACGAN runs through ``eval``
(``"[1, 1, 1/2, 1/4, 1/8, 1/16, 1/32]"``, ``"[100] * len(factors)"``, ``"L_cls1/2"``, ``"True"``,
``"'cuda' if torch.cuda.is_available() else 'cpu'"``). Here every string value that PACGAN
evaluates goes through :func:`gansim.safe_expr.safe_eval` instead: literals, arithmetic, ``len``
and the names of the values PACGAN's ``main.py`` reads *before* that key, both under the key
(``FACTORS``) and under PACGAN's variable name (``factors``, ``L_cls1``, ``bs`` ...). Nothing in a
config file is ever executed. Numbers may also come as strings (``"512"``, ``"1e-3"``), and
booleans also as JSON ``true``/``false`` or ``"true"``/``"false"`` in any case.

- :data:`PACGAN_DEFAULTS` — every key PACGAN's ``main.py`` reads, with the value of its shipped
  ``config.json``, in the order it reads them. A missing key takes this default, as the shipped
  file would give it (with 7 levels of 100 epochs that is a long run: 700 passes over the data).
- :func:`is_pacgan_config` — does a JSON object look like a PACGAN config rather than gansim's?
- :func:`translate_pacgan_config` — ``(config_dict, notes)``; ``config_dict`` goes to
  ``parse_config(PACGANConfig, ...)``.
- :func:`load_pacgan_config` — read the file, translate, validate.

Mapping (PACGAN -> gansim):

===========================================  ====================================================
PACGAN                                       gansim
===========================================  ====================================================
``IMAGE_CHANNELS``, ``CLASS_SIZE``           ``model.channels``, ``model.num_classes``
``IN_CHANNELS``, ``Z_DIM``, ``EMBEDDING_DIM``  ``model.in_channels``, ``model.z_dim``, ``model.embedding_dim``
``FACTORS`` (one per level)                  ``model.factors``; ``model.start_size`` 4 and
                                             ``model.image_size`` 4·2^(len(FACTORS)−1)
``BATCH_SIZES``, ``CRITIC_ITERATIONS``       ``schedule.batch_sizes``, ``schedule.critic_iterations``
``PROGRESSIVE_EPOCHS``                       ``schedule.epochs``
``LEARNING_RATE``                            ``optim.G`` and ``optim.D``: Adam, that lr, betas
                                             (0.5, 0.999) (fixed in PACGAN's ``main.py``)
``LAMBDA_GP``                                ``model.gp_weight``
``LAMBDA_CLS_1``, ``LAMBDA_CLS_2``           ``model.lambda_cls_1``, ``lambda_cls_2``, with
                                             ``model.lambda_meaning`` 'readme' (see the notes)
``VALIDATE`` / ``TESTING``                   ``validation.mode`` (see below)
``START_CHECK_AT``                           ``validation.start_check_at``
``TEST_USING_BEST_MODEL``                    test mode: best epochs from a validate run
                                             (``validation.best_from``, given by the user) or
                                             ``validation.best_epochs`` = ``PROGRESSIVE_EPOCHS``
``GENERATE`` + ``N_IMAGES_GENERATED``        ``validation.generate_per_class`` (split over the
                                             classes as PACGAN's ``Generate.Gen`` does)
``DEVICE`` + ``GPUS_N``                      ``train.device`` (auto / cpu / cuda / cuda:N)
``DATA_TRAIN_DIRECTORY``                     gansim's DATA argument on the command line (a note)
``LABEL_TRAIN_DIRECTORY``                    ``data.labels`` unless it is ``labels.csv`` in the
                                             data folder
``DATA_TEST_DIRECTORY``, ``LABEL_TEST_...``  ``data.test_data``, ``data.test_labels`` (test mode)
``IMAGE_DIRECTORY``, ``MODEL_DIRECTORY``     notes: gansim writes into the run directory (-o)
``DISP_EVERY_N_EPOCHS``                      a note (``train.tick_rows`` counts images)
``LOAD_MODEL``, ``START_TRAIN_AT_IMG_SIZE``  notes (``gansim train --resume``); resuming at a
                                             later level is a :class:`ConfigError`
===========================================  ====================================================

Modes. ``VALIDATE`` true -> ``validate`` (PACGAN then ignores ``TESTING``: it loads no test set).
``TESTING`` true with ``VALIDATE`` false -> ``test``: with ``TEST_USING_BEST_MODEL`` PACGAN reads
each level's best epoch from the validate run's checkpoints, so ``validation.best_from`` must be
given (``--set validation.best_from=RUN``, a gansim validate run); without it every level trains
``PROGRESSIVE_EPOCHS``, written as ``validation.best_epochs``. Both false -> ``none``.

Paths. PACGAN opens its paths relative to the directory it runs in (its README runs
``python Training/main.py`` from the repository root), not relative to the config file. The same
rule holds here: a relative path in the config is taken relative to the *current working
directory* at translation time and written into the gansim config as an absolute path, so the
resolved config (copied into the run directory) keeps meaning the same files.

Widths. PACGAN sizes level k with ``int(IN_CHANNELS·FACTORS[k])`` (truncation); gansim rounds.
Where the two differ (e.g. 300·1/8 = 37.5), the factor is rewritten as ``int(...)/IN_CHANNELS`` so
that the networks get PACGAN's widths, with a note.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansim.config import _nearest, parse_config, read_config_file
from gansim.errors import ConfigError
from gansim.models.pacgan_config import PACGANConfig
from gansim.safe_expr import SafeExpressionError, safe_eval

__all__ = ["PACGAN_DEFAULTS", "PACGAN_KEYS", "is_pacgan_config", "translate_pacgan_config", "load_pacgan_config"]

#: Every key PACGAN's ``Training/main.py`` reads, in its order, with the shipped ``config.json``'s value.
PACGAN_DEFAULTS: dict[str, Any] = {
    "DATA_TRAIN_DIRECTORY": "data/ADNI/ADNI_train",
    "LABEL_TRAIN_DIRECTORY": "data/ADNI/ADNI_train/labels.csv",
    "DATA_TEST_DIRECTORY": "data/ADNI/ADNI_test",
    "LABEL_TEST_DIRECTORY": "data/ADNI/ADNI_test/labels.csv",
    "IMAGE_DIRECTORY": "saved_images/PACGAN",
    "MODEL_DIRECTORY": "saved_models/PACGAN",
    "IMAGE_CHANNELS": 1,
    "CLASS_SIZE": 2,
    "DEVICE": "'cuda' if torch.cuda.is_available() else 'cpu'",
    "GPUS_N": "[0]",
    "IN_CHANNELS": 512,
    "FACTORS": "[1, 1, 1/2, 1/4, 1/8, 1/16, 1/32]",
    "LEARNING_RATE": 1e-3,
    "BATCH_SIZES": "[32, 32, 32, 16, 16, 16, 16]",
    "EMBEDDING_DIM": 3,
    "Z_DIM": 512,
    "CRITIC_ITERATIONS": "[1, 1, 1, 1, 1, 2, 2]",
    "LAMBDA_GP": 10,
    "LAMBDA_CLS_1": 4,
    "LAMBDA_CLS_2": "L_cls1/2",
    "PROGRESSIVE_EPOCHS": "[100] * len(factors)",
    "DISP_EVERY_N_EPOCHS": 50,
    "VALIDATE": "True",
    "START_CHECK_AT": 0.6,
    "TESTING": "False",
    "TEST_USING_BEST_MODEL": "True",
    "GENERATE": "True",
    "N_IMAGES_GENERATED": "[200]",
    "LOAD_MODEL": "False",
    "START_TRAIN_AT_IMG_SIZE": 4,
}
PACGAN_KEYS: frozenset[str] = frozenset(PACGAN_DEFAULTS)

#: the local variable PACGAN's main.py stores each key in: expressions may use either name
_VARIABLES: dict[str, str] = {
    "DATA_TRAIN_DIRECTORY": "data_train_dir", "LABEL_TRAIN_DIRECTORY": "labels_train_dir",
    "DATA_TEST_DIRECTORY": "data_test_dir", "LABEL_TEST_DIRECTORY": "labels_test_dir",
    "IMAGE_DIRECTORY": "images_directory", "MODEL_DIRECTORY": "model_directory",
    "IMAGE_CHANNELS": "img_channels", "CLASS_SIZE": "class_size", "DEVICE": "device", "GPUS_N": "gpus",
    "IN_CHANNELS": "in_channels", "FACTORS": "factors", "LEARNING_RATE": "lr", "BATCH_SIZES": "bs",
    "EMBEDDING_DIM": "embedding_dim", "Z_DIM": "z_dim", "CRITIC_ITERATIONS": "critic_iterations",
    "LAMBDA_GP": "L_GP", "LAMBDA_CLS_1": "L_cls1", "LAMBDA_CLS_2": "L_cls2", "PROGRESSIVE_EPOCHS": "prog_epochs",
    "DISP_EVERY_N_EPOCHS": "disp_every_n_epochs", "VALIDATE": "validate", "START_CHECK_AT": "perc",
    "TESTING": "testing", "TEST_USING_BEST_MODEL": "use_best_model", "GENERATE": "generate",
    "N_IMAGES_GENERATED": "gen_n_images", "LOAD_MODEL": "load_mod", "START_TRAIN_AT_IMG_SIZE": "start_train_at_img_size",
}  # fmt: skip

#: key -> (kind, lower bound); kinds: path, int, number, fraction, bool, factors, levels, gpus, n_images, device
_SPECS: dict[str, tuple[str, float | None]] = {
    "DATA_TRAIN_DIRECTORY": ("path", None), "LABEL_TRAIN_DIRECTORY": ("path", None),
    "DATA_TEST_DIRECTORY": ("path", None), "LABEL_TEST_DIRECTORY": ("path", None),
    "IMAGE_DIRECTORY": ("path", None), "MODEL_DIRECTORY": ("path", None),
    "IMAGE_CHANNELS": ("int", 1), "CLASS_SIZE": ("int", 2), "DEVICE": ("device", None), "GPUS_N": ("gpus", None),
    "IN_CHANNELS": ("int", 1), "FACTORS": ("factors", None), "LEARNING_RATE": ("number", None),
    "BATCH_SIZES": ("levels", None), "EMBEDDING_DIM": ("int", 1), "Z_DIM": ("int", 1),
    "CRITIC_ITERATIONS": ("levels", None), "LAMBDA_GP": ("number", 0), "LAMBDA_CLS_1": ("number", 0),
    "LAMBDA_CLS_2": ("number", 0), "PROGRESSIVE_EPOCHS": ("levels", None), "DISP_EVERY_N_EPOCHS": ("int", 1),
    "VALIDATE": ("bool", None), "START_CHECK_AT": ("fraction", None), "TESTING": ("bool", None),
    "TEST_USING_BEST_MODEL": ("bool", None), "GENERATE": ("bool", None), "N_IMAGES_GENERATED": ("n_images", None),
    "LOAD_MODEL": ("bool", None), "START_TRAIN_AT_IMG_SIZE": ("int", 4),
}  # fmt: skip

#: PACGAN's first level is always 4×4 (its critic's last block needs 4×4 inputs)
_START_SIZE = 4
#: PACGAN's hard-wired growth: utils.catch() requires 7 levels, 4 to 256 px
_PACGAN_LEVELS = 7
_DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_IS_AVAILABLE = "torch.cuda.is_available"
_GANSIM_SECTIONS = ("data", "model", "schedule", "validation", "optim", "train")
_TRUE_FALSE = {"true": True, "false": False}


class _Invalid(Exception):
    """A value that cannot be translated; the message is one line of the final ConfigError."""


def _drop_comments(data: dict[str, Any]) -> dict[str, Any]:
    """PACGAN's config.json comments are keys ``"//Comment1"`` ...; gansim's are ``"#..."``."""
    return {k: v for k, v in data.items() if not (isinstance(k, str) and (k.startswith("//") or k.startswith("#")))}


def is_pacgan_config(data: dict[str, Any]) -> bool:
    """True when ``data`` looks like PACGAN's ``config.json`` rather than a gansim config.

    gansim configs have a ``family`` key or object-valued sections (``model``, ``train`` ...);
    PACGAN's are flat with upper-case keys. Two PACGAN keys are enough (one typo in a key must not
    hide the file's kind), or a single one when every key of the object is upper case.
    """
    if not isinstance(data, dict):
        return False
    if "family" in data or any(isinstance(data.get(s), dict) for s in _GANSIM_SECTIONS):
        return False
    keys = [k for k in _drop_comments(data) if isinstance(k, str)]
    known = sum(k in PACGAN_KEYS for k in keys)
    return known >= 2 or (known == 1 and all(k.isupper() for k in keys))


def _absolute(path: str) -> str:
    """``path`` relative to the current directory (PACGAN's rule), made absolute and normalised."""
    return os.path.normpath(os.path.join(os.getcwd(), path))


# ---------------------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (512 or 512.0), else None."""
    if _is_number(value) and float(value).is_integer():
        return int(value)
    return None


def _bounded_int(value: Any, minimum: float | None, what: str) -> int:
    number = _integer(value)
    if number is None:
        raise _Invalid(f"expected {what}, got {value!r}")
    if minimum is not None and number < minimum:
        raise _Invalid(f"expected {what} >= {minimum:g}, got {number}")
    return number


def _int_list(value: Any, *, minimum: int, allow_scalar: bool) -> list[int]:
    if allow_scalar and _integer(value) is not None:
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise _Invalid(f"expected a non-empty list of integers >= {minimum}, got {value!r}")
    items = [_integer(v) for v in value]
    if any(v is None or v < minimum for v in items):
        raise _Invalid(f"expected a non-empty list of integers >= {minimum}, got {list(value)!r}")
    return [int(v) for v in items if v is not None]


def _check(kind: str, minimum: float | None, value: Any) -> Any:
    """The evaluated ``value`` checked (and normalised) for its kind; raises :class:`_Invalid`."""
    if kind == "path":
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(f"expected a path (a non-empty string), got {value!r}")
        return value
    if kind == "int":
        what = "an image side of 4·2^k pixels" if minimum == _START_SIZE else "an integer"
        return _bounded_int(value, minimum, what)
    if kind in ("number", "fraction"):
        if not _is_number(value):
            raise _Invalid(f"expected a number, got {value!r}")
        if kind == "fraction":
            if not 0 <= value <= 1:
                raise _Invalid(f"expected a fraction of the level's epochs in [0, 1], got {value!r}")
            return float(value)
        if minimum is None and not value > 0:
            raise _Invalid(f"expected a number > 0, got {value!r}")
        if minimum is not None and value < minimum:
            raise _Invalid(f"expected a number >= {minimum:g}, got {value!r}")
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _Invalid(f"expected True or False, got {value!r}")
    if kind == "factors":
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(v) and v > 0 for v in value):
            raise _Invalid(f"expected a non-empty list of positive numbers (one width factor per level), got {value!r}")
        return [float(v) for v in value]
    if kind == "levels":
        return _int_list(value, minimum=1, allow_scalar=False)
    if kind == "gpus":
        return _int_list(value, minimum=0, allow_scalar=True)
    if kind == "n_images":
        return _int_list(value, minimum=0, allow_scalar=True)
    raise RuntimeError(f"unknown kind {kind!r} in _SPECS")  # a bug here, not in the user's file


def _constant(flag: bool) -> Callable[[], bool]:
    """A stand-in for ``torch.cuda.is_available`` that answers ``flag``."""
    return lambda: flag


class _Values:
    """Evaluates the config's values in PACGAN's order, collecting every problem."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.errors: list[str] = []
        self.values: dict[str, Any] = {}
        self.names: dict[str, Any] = {}
        self.failed: set[str] = set()
        self.device_note: str | None = None

    def _depends_on_failed(self, text: Any) -> list[str]:
        if not isinstance(text, str):
            return []
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        return [k for k in self.failed if k in words or _VARIABLES[k] in words]

    def evaluate(self, key: str, raw: Any, functions: dict[str, Callable[..., Any]] | None = None) -> Any:
        """``raw`` evaluated: strings by :func:`safe_eval` with the names read so far, the rest as they are."""
        if not isinstance(raw, str):
            return raw
        kind = _SPECS[key][0]
        if kind == "bool" and raw.strip().lower() in _TRUE_FALSE:
            return _TRUE_FALSE[raw.strip().lower()]
        if kind == "bool" and re.fullmatch(r"[A-Za-z_]\w*", raw.strip()) and raw.strip() not in self.names:
            raise _Invalid(f'expected "True" or "False", got {raw!r}')
        return safe_eval(raw, self.names, functions, where=f"{key} = ")

    def _read_later(self, text: Any) -> list[str]:
        """Keys named in ``text`` (by key or by PACGAN's variable) that are not read yet: PACGAN reads them later."""
        if not isinstance(text, str):
            return []
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        return sorted(k for k in _SPECS if (k in words or _VARIABLES[k] in words) and k not in self.values and k not in self.failed)

    def read(self, key: str) -> None:
        raw = self.opts[key] if key in self.opts else PACGAN_DEFAULTS[key]
        kind, minimum = _SPECS[key]
        try:
            if kind == "path":
                value = _check(kind, minimum, raw)
            elif kind == "device":
                value = self._device(key, raw)
            else:
                value = _check(kind, minimum, self.evaluate(key, raw))
        except SafeExpressionError as err:
            self.failed.add(key)
            upstream, later = self._depends_on_failed(raw), self._read_later(raw)
            if upstream:
                self.errors.append(f"  {key}: {raw!r} not evaluated: it uses {', '.join(sorted(upstream))}, which is invalid")
            elif later:
                self.errors.append(f"  {key} = {raw!r}: uses {', '.join(f'{k} ({_VARIABLES[k]})' for k in later)}, which PACGAN's main.py reads after "
                                   f"{key}; an expression may use only the keys read before it")
            else:
                self.errors.append(f"  {err}")
            return
        except _Invalid as err:
            self.failed.add(key)
            self.errors.append(f"  {key} = {raw!r}: {err}")
            return
        self.values[key] = value
        if key != "DEVICE":  # PACGAN's `device` depends on the machine; nothing later should
            self.names[key] = self.names[_VARIABLES[key]] = value

    def _device(self, key: str, raw: Any) -> str:
        """DEVICE -> 'auto' (the CUDA-if-available conditional), or the device it names."""
        if not isinstance(raw, str):
            raise _Invalid(f"expected a device name or an expression giving one, got {raw!r}")
        if _DEVICE_NAME.fullmatch(raw.strip().lower()):
            return raw.strip().lower()
        # Evaluate once as if CUDA were there and once as if not: PACGAN's conditional is gansim's 'auto'.
        with_cuda, without = (self.evaluate(key, raw, {_IS_AVAILABLE: _constant(flag)}) for flag in (True, False))
        for result in (with_cuda, without):
            if not isinstance(result, str) or not _DEVICE_NAME.fullmatch(result.strip().lower()) or result.strip().lower() == "auto":
                raise _Invalid(f"expected it to give a device: 'cpu', 'cuda', 'cuda:N' or 'mps', got {result!r}")
        with_cuda, without = with_cuda.strip().lower(), without.strip().lower()
        if with_cuda == without:
            return with_cuda
        if with_cuda.startswith("cuda") and without == "cpu":
            if with_cuda != "cuda":
                self.device_note = f"DEVICE gives {with_cuda!r} when CUDA is available: gansim's 'auto' takes the first GPU; use --set train.device={with_cuda} for that one"
            return "auto"
        import torch  # only for a DEVICE expression that is not PACGAN's conditional

        value = self.evaluate(key, raw, {_IS_AVAILABLE: torch.cuda.is_available}).strip().lower()
        self.device_note = f"warning: DEVICE {raw!r} depends on this machine's CUDA; evaluated here to {value!r}"
        return value


# ---------------------------------------------------------------------------------------- translation


def _unknown_keys(opts: dict[str, Any]) -> list[str]:
    known = sorted(PACGAN_KEYS)
    lines = []
    for key in opts:
        if key in PACGAN_KEYS:
            continue
        hint = _nearest(str(key), known) or _nearest(str(key).upper(), known)
        lines.append(f"  unknown key {key!r}{hint}")
    return lines


def _per_class(counts: list[int], num_classes: int) -> list[int]:
    """PACGAN's Generate.Gen: one total split equally (the last class takes the remainder), or one count per class."""
    if len(counts) == 1:
        share = counts[0] // num_classes
        return [share] * (num_classes - 1) + [counts[0] - share * (num_classes - 1)]
    if len(counts) != num_classes:
        raise _Invalid(f"expected one total or one count per class ({num_classes} classes), got {len(counts)} entries")
    return list(counts)


def _pacgan_factors(factors: list[float], in_channels: int, notes: list[str]) -> list[float]:
    """Factors giving gansim's rounded widths equal to PACGAN's truncated ``int(in_channels·factor)``."""
    pacgan = [int(in_channels * f) for f in factors]
    if any(w < 1 for w in pacgan):
        raise _Invalid(f"IN_CHANNELS {in_channels} × FACTORS {factors} gives a level of 0 channels ({pacgan}); expected IN_CHANNELS·factor >= 1")
    rounded = [max(1, int(round(in_channels * f))) for f in factors]
    if pacgan == rounded:
        return factors
    notes.append(f"FACTORS: PACGAN truncates IN_CHANNELS·factor to {pacgan} channels (rounding would give {rounded}); model.factors are written as width/IN_CHANNELS to keep PACGAN's widths")
    return [w / in_channels for w in pacgan]


def translate_pacgan_config(data: dict[str, Any], *, source: str = "config.json", data_dir: str | Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Translate PACGAN's ``config.json`` into a plain dict for ``parse_config(PACGANConfig, ...)``.

    Args:
        data: the JSON object (``//...`` and ``#...`` comment keys are dropped). Missing keys
            take PACGAN's defaults (:data:`PACGAN_DEFAULTS`).
        source: the file's name, used in messages.
        data_dir: the training data folder given on gansim's command line, if known; it wins
            over ``DATA_TRAIN_DIRECTORY`` (a note says so when they differ).

    Returns:
        ``(config_dict, notes)``: notes are human-readable lines, one or more per PACGAN key, saying
        where it went or why it has no equivalent; ``"warning: ..."`` where gansim behaves
        differently from PACGAN, ``"ignored: ..."`` for keys without effect.

    Raises:
        ConfigError: one error listing every unknown key (with the nearest PACGAN keys) and every
            bad value (naming the key, the value and what was expected, with the safe evaluator's
            message for refused expressions).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a PACGAN config must be a JSON object, got {type(data).__name__}")
    if "family" in data or any(isinstance(data.get(s), dict) for s in _GANSIM_SECTIONS):
        raise ConfigError(f"{source}: this is a gansim config (it has a 'family' key or sections such as 'model'), not PACGAN's config.json; read it with parse_config")
    opts = _drop_comments(data)
    errors = _unknown_keys(opts)
    notes: list[str] = []
    reader = _Values(opts)
    for key in PACGAN_DEFAULTS:
        reader.read(key)
    errors += reader.errors
    v = reader.values
    missing = [k for k in PACGAN_DEFAULTS if k not in opts]
    if missing:
        notes.append(f"missing key(s) take PACGAN's defaults (its shipped config.json): {', '.join(missing)}")

    model: dict[str, Any] = {"start_size": _START_SIZE}
    schedule: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    data_sec: dict[str, Any] = {}
    train: dict[str, Any] = {}
    optim: dict[str, Any] = {}

    def attempt(step: Callable[[], None]) -> None:
        try:
            step()
        except _Invalid as err:
            errors.append(f"  {err}")

    # ------------------------------------------------------------------ network
    for key, ours in (("IMAGE_CHANNELS", "channels"), ("CLASS_SIZE", "num_classes"), ("IN_CHANNELS", "in_channels"),
                      ("Z_DIM", "z_dim"), ("EMBEDDING_DIM", "embedding_dim")):  # fmt: skip
        if key in v:
            model[ours] = v[key]
            notes.append(f"{key} {v[key]} -> model.{ours}")
    if v.get("CLASS_SIZE", 2) != 2:
        notes.append(f"CLASS_SIZE {v['CLASS_SIZE']}: PACGAN's critic has a 2-output class head whatever CLASS_SIZE says (it fails for other values); gansim's head has {v['CLASS_SIZE']} outputs")
    n_levels: int | None = None
    if "FACTORS" in v:
        factors = v["FACTORS"]
        n_levels = len(factors)
        sizes = [_START_SIZE * 2**k for k in range(n_levels)]
        model["image_size"] = sizes[-1]
        model["factors"] = factors
        if "IN_CHANNELS" in v:

            def widths() -> None:
                model["factors"] = _pacgan_factors(factors, v["IN_CHANNELS"], notes)

            attempt(widths)
        notes.append(f"FACTORS {factors} -> model.factors; {n_levels} level(s) of {sizes[0]} to {sizes[-1]} px: model.start_size {_START_SIZE}, model.image_size {sizes[-1]}")
        if n_levels != _PACGAN_LEVELS:
            notes.append(f"FACTORS: PACGAN itself requires exactly {_PACGAN_LEVELS} levels (4 to 256 px); gansim trains the {n_levels} given")
        if factors[0] != 1:
            notes.append(f"warning: FACTORS[0] = {factors[0]:g}: PACGAN's 4-px block is always IN_CHANNELS wide (its next block would not fit); gansim uses IN_CHANNELS·FACTORS[0]")
    for key, ours in (("BATCH_SIZES", "batch_sizes"), ("CRITIC_ITERATIONS", "critic_iterations"), ("PROGRESSIVE_EPOCHS", "epochs")):
        if key not in v:
            continue
        if n_levels is not None and len(v[key]) != n_levels:
            errors.append(f"  {key} = {opts.get(key, PACGAN_DEFAULTS[key])!r}: {len(v[key])} entries; expected one per level of FACTORS ({n_levels})")
            continue
        schedule[ours] = v[key]
        notes.append(f"{key} {v[key]} -> schedule.{ours}")
    if "epochs" in schedule:
        total = sum(schedule["epochs"])
        long_run = " (PACGAN's default: a long run)" if "PROGRESSIVE_EPOCHS" in missing else ""
        notes.append(f"PROGRESSIVE_EPOCHS: {total} passes over the training images in all{long_run}")
    # PACGAN's choices fixed in its code, pinned here so that they survive changes of gansim's defaults
    schedule.update(fade_fraction=0.5, same_batch_for_critic=True)
    model.update(aux_hidden=150, drift_weight=1e-3, minibatch_std_group=None, projection=False)
    notes.append("fixed in PACGAN's code and set so: fade-in over the first half of each level (schedule.fade_fraction 0.5), "
                 "the critic's repeated steps on one real batch, class head 150 wide, drift 0.001, minibatch std over the whole batch")  # fmt: skip

    # ------------------------------------------------------------------ loss and optimisers
    if "LAMBDA_GP" in v:
        model["gp_weight"] = v["LAMBDA_GP"]
        notes.append(f"LAMBDA_GP {v['LAMBDA_GP']:g} -> model.gp_weight")
    for key, ours in (("LAMBDA_CLS_1", "lambda_cls_1"), ("LAMBDA_CLS_2", "lambda_cls_2")):
        if key in v:
            model[ours] = v[key]
            raw = opts.get(key, PACGAN_DEFAULTS[key])
            shown = f"{raw!r} = {v[key]:g}" if isinstance(raw, str) else f"{v[key]:g}"
            notes.append(f"{key} {shown} -> model.{ours}")
    model["lambda_meaning"] = "readme"
    notes.append("model.lambda_meaning 'readme': the critic weights the generated images' class loss by λ_cls1 and the real images' by λ_cls2, "
                 "as PACGAN's README says; PACGAN's train.py swaps them in the critic: --set model.lambda_meaning=code reproduces the code")  # fmt: skip
    if "LEARNING_RATE" in v:
        for net in ("G", "D"):
            optim[net] = {"name": "adam", "lr": v["LEARNING_RATE"], "betas": [0.5, 0.999]}
        notes.append(f"LEARNING_RATE {v['LEARNING_RATE']:g} -> optim.G.lr and optim.D.lr, Adam betas (0.5, 0.999) as in PACGAN's main.py")

    # ------------------------------------------------------------------ validate / test
    validate, testing, use_best = v.get("VALIDATE"), v.get("TESTING"), v.get("TEST_USING_BEST_MODEL")
    if validate is not None and testing is not None:
        if validate:
            validation["mode"] = "validate"
            notes.append("VALIDATE True -> validation.mode 'validate'" + (
                "; TESTING True is ignored, as PACGAN does (it loads no test set when validating): for the test run, translate a copy "
                "with VALIDATE \"False\" and add --set validation.best_from=<this run's directory>" if testing else ""))  # fmt: skip
        elif testing:
            validation["mode"] = "test"
            if use_best:
                notes.append(
                    "TESTING True, VALIDATE False -> validation.mode 'test'; TEST_USING_BEST_MODEL True: each level trains for the best "
                    "epoch of a validate run, so give that gansim run: --set validation.best_from=<validate run directory> "
                    "(or --set validation.best_epochs=[...], one per level; PACGAN read them from MODEL_DIRECTORY's generator_best.pt)"
                )
            elif use_best is not None and "epochs" in schedule:
                validation["best_epochs"] = schedule["epochs"]
                notes.append("TESTING True, VALIDATE False -> validation.mode 'test'; TEST_USING_BEST_MODEL False: every level trains "
                             "PROGRESSIVE_EPOCHS epochs -> validation.best_epochs")  # fmt: skip
        else:
            validation["mode"] = "none"
            notes.append("VALIDATE False, TESTING False -> validation.mode 'none'; warning: PACGAN then trains on every training image, "
                         "gansim keeps the validation fold out")  # fmt: skip
        if validation.get("mode") != "test":
            notes.append("ignored: TEST_USING_BEST_MODEL (used only when TESTING is True and VALIDATE False)")
    if "START_CHECK_AT" in v:
        validation["start_check_at"] = v["START_CHECK_AT"]
        notes.append(f"START_CHECK_AT {v['START_CHECK_AT']:g} -> validation.start_check_at")
    data_sec.update(n_folds=5, fold=4, split_seed=8)
    notes.append("validation split as PACGAN's main.py: 5 subject-grouped folds, shuffled with seed 8, the last one held out (data.n_folds 5, fold 4, split_seed 8)")

    # ------------------------------------------------------------------ generation
    if v.get("GENERATE") and "N_IMAGES_GENERATED" in v and "CLASS_SIZE" in v:

        def generated() -> None:
            try:
                per_class = _per_class(v["N_IMAGES_GENERATED"], v["CLASS_SIZE"])
            except _Invalid as err:
                raise _Invalid(f"N_IMAGES_GENERATED = {opts.get('N_IMAGES_GENERATED', PACGAN_DEFAULTS['N_IMAGES_GENERATED'])!r}: {err}") from None
            if sum(per_class) < 1:
                raise _Invalid(f"N_IMAGES_GENERATED = {v['N_IMAGES_GENERATED']!r}: expected at least one image")
            validation["generate_per_class"] = per_class
            notes.append(f"GENERATE True, N_IMAGES_GENERATED {v['N_IMAGES_GENERATED']} -> validation.generate_per_class {per_class} "
                         "(a single total is split over the classes as PACGAN does, the last class taking the remainder)")  # fmt: skip

        attempt(generated)
    if v.get("GENERATE") is False:
        notes.append("GENERATE False: no images generated after training (ignored: N_IMAGES_GENERATED); later: gansim generate MODEL -n N")
    if v.get("GENERATE"):
        notes.append("PACGAN's FID/KID/SSIM after generation (against DATA_TEST_DIRECTORY/Real256x256.nii.gz) is gansim compare REAL GENERATED -o DIR")

    # ------------------------------------------------------------------ device
    if "DEVICE" in v:
        device = v["DEVICE"]
        gpus = v.get("GPUS_N", [0])
        if reader.device_note:
            notes.append(reader.device_note)
        if len(gpus) > 1:
            notes.append(f"GPUS_N {gpus}: PACGAN wraps the networks in DataParallel; gansim trains on several GPUs with torchrun (DDP): "
                         f"CUDA_VISIBLE_DEVICES={','.join(map(str, gpus))} torchrun --nproc_per_node={len(gpus)} -m gansim train ...")  # fmt: skip
        elif device == "cuda":
            device = f"cuda:{gpus[0]}"
        elif device == "auto" and gpus != [0]:
            notes.append(f"GPUS_N {gpus}: gansim's 'auto' takes the first GPU; use --set train.device=cuda:{gpus[0]} for that one")
        elif device == "cpu" and gpus != [0]:
            notes.append(f"ignored: GPUS_N {gpus} (DEVICE is cpu)")
        train["device"] = device
        notes.append(f"DEVICE {opts.get('DEVICE', PACGAN_DEFAULTS['DEVICE'])!r}, GPUS_N {gpus} -> train.device {device!r}"
                     + (" (CUDA when available, else CPU)" if device == "auto" else ""))  # fmt: skip

    # ------------------------------------------------------------------ data and output folders
    config_train_dir = _absolute(v["DATA_TRAIN_DIRECTORY"]) if "DATA_TRAIN_DIRECTORY" in v else None
    cli_dir = _absolute(os.fspath(data_dir)) if data_dir is not None else None
    if config_train_dir is not None:
        if cli_dir is None:
            notes.append(f"DATA_TRAIN_DIRECTORY {v['DATA_TRAIN_DIRECTORY']!r} (relative paths: from the current directory, as PACGAN) "
                         f"is gansim's DATA argument: gansim train {config_train_dir} CONFIG -o RUN")  # fmt: skip
        elif cli_dir != config_train_dir:
            notes.append(f"warning: DATA_TRAIN_DIRECTORY {config_train_dir} differs from the data folder on the command line, {cli_dir}: the command line wins")
        else:
            notes.append("DATA_TRAIN_DIRECTORY is the data folder given on the command line")
    if "LABEL_TRAIN_DIRECTORY" in v:
        labels = _absolute(v["LABEL_TRAIN_DIRECTORY"])
        beside = {os.path.join(d, "labels.csv") for d in (config_train_dir, cli_dir) if d is not None}
        if labels in beside:
            notes.append("LABEL_TRAIN_DIRECTORY is labels.csv in the data folder: gansim's default (data.labels null)")
        else:
            data_sec["labels"] = labels
            notes.append(f"LABEL_TRAIN_DIRECTORY -> data.labels {labels}")
    if validation.get("mode") == "test":
        if "DATA_TEST_DIRECTORY" in v:
            data_sec["test_data"] = _absolute(v["DATA_TEST_DIRECTORY"])
            notes.append(f"DATA_TEST_DIRECTORY -> data.test_data {data_sec['test_data']}")
            if "LABEL_TEST_DIRECTORY" in v:
                test_labels = _absolute(v["LABEL_TEST_DIRECTORY"])
                if test_labels != os.path.join(data_sec["test_data"], "labels.csv"):
                    data_sec["test_labels"] = test_labels
                    notes.append(f"LABEL_TEST_DIRECTORY -> data.test_labels {test_labels}")
                else:
                    notes.append("LABEL_TEST_DIRECTORY is labels.csv in the test folder: gansim's default (data.test_labels null)")
    else:
        notes.append("ignored: DATA_TEST_DIRECTORY, LABEL_TEST_DIRECTORY (the test set is used only in test mode: TESTING True, VALIDATE False)")
    notes.append("IMAGE_DIRECTORY, MODEL_DIRECTORY: gansim writes images, checkpoints and the model into the run directory given with -o")
    if "DISP_EVERY_N_EPOCHS" in v:
        notes.append(f"DISP_EVERY_N_EPOCHS {v['DISP_EVERY_N_EPOCHS']}: gansim writes stats and sample images every train.tick_rows images; "
                     f"{v['DISP_EVERY_N_EPOCHS']} epochs are {v['DISP_EVERY_N_EPOCHS']} × (training images), unknown here: "
                     "--set train.tick_rows=<that number> to match")  # fmt: skip

    # ------------------------------------------------------------------ resuming
    start, load = v.get("START_TRAIN_AT_IMG_SIZE"), v.get("LOAD_MODEL")
    if start is not None and n_levels is not None:
        sizes = [_START_SIZE * 2**k for k in range(n_levels)]
        if start not in sizes:
            errors.append(f"  START_TRAIN_AT_IMG_SIZE = {start!r}: expected one of the level sizes {sizes}")
        elif load and start > _START_SIZE:
            errors.append(
                f"  LOAD_MODEL True with START_TRAIN_AT_IMG_SIZE {start}: PACGAN resumes from its own {start // 2} px checkpoints in "
                "MODEL_DIRECTORY; gansim cannot start a new model at a later level nor read PACGAN checkpoints. To continue a gansim run "
                "use gansim train DATA --resume -o RUN; to train from scratch set LOAD_MODEL \"False\" (or START_TRAIN_AT_IMG_SIZE 4)"
            )
        elif load:
            notes.append("LOAD_MODEL True with START_TRAIN_AT_IMG_SIZE 4: PACGAN loads nothing then; gansim continues its own runs with gansim train --resume")
        elif start != _START_SIZE:
            notes.append(f"ignored: START_TRAIN_AT_IMG_SIZE {start} (PACGAN uses it only with LOAD_MODEL True)")
    if load is False and start == _START_SIZE:
        notes.append("LOAD_MODEL False, START_TRAIN_AT_IMG_SIZE 4: a new model from the first level (to continue a gansim run: gansim train --resume)")

    notes.append("gansim-only settings keep gansim's defaults: EMA of the generator (PACGAN has none: --set train.ema_halflife_rows=null), "
                 "intensity scaling 'auto' (PACGAN's files are already in [-1, 1])")  # fmt: skip
    if errors:
        raise ConfigError(f"{source}: invalid PACGAN config.json\n" + "\n".join(errors))
    config: dict[str, Any] = {"family": "pacgan", "data": data_sec, "model": model, "schedule": schedule, "validation": validation, "optim": optim, "train": train}
    return config, notes


def load_pacgan_config(path: str | Path, *, data_dir: str | Path | None = None) -> tuple[PACGANConfig, list[str]]:
    """Read PACGAN's ``config.json`` at ``path``, translate it and validate it.

    Returns:
        ``(PACGANConfig, notes)``; see :func:`translate_pacgan_config`.

    Raises:
        ConfigError: the file is missing or not JSON, or a key or value is bad.
    """
    raw = read_config_file(path)
    translated, notes = translate_pacgan_config(raw, source=str(path), data_dir=data_dir)
    return parse_config(PACGANConfig, translated, source=f"{path} (translated from PACGAN)"), notes
