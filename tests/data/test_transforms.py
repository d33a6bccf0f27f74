"""Column transforms and TablePipeline: exact inverses, numpy/torch parity, streaming fit, JSON, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gansim.data.transforms import (
    ClipTransform,
    ColumnTransform,
    LogTransform,
    TablePipeline,
    UnitVectorTransform,
    ZScoreTransform,
    direction_triplets,
    is_energy_column,
)
from gansim.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
KEYS = [
    "KineticEnergy",
    "PrePosition_X",
    "PrePosition_Y",
    "PrePosition_Z",
    "PreDirection_X",
    "PreDirection_Y",
    "PreDirection_Z",
    "Weight",
]


# --------------------------------------------------------------------------- helpers


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def random_table(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A phase-space-like table, float32, with a constant column (Z) and a constant Weight."""
    u = unit_vectors(rng, n)
    return {
        "KineticEnergy": rng.lognormal(0.3, 0.6, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 40.0, n).astype(np.float32),
        "PrePosition_Y": rng.uniform(-50.0, 50.0, n).astype(np.float32),
        "PrePosition_Z": np.full(n, 300.0, dtype=np.float32),
        "PreDirection_X": u[:, 0].astype(np.float32),
        "PreDirection_Y": u[:, 1].astype(np.float32),
        "PreDirection_Z": u[:, 2].astype(np.float32),
        "Weight": np.ones(n, dtype=np.float32),
    }


def to_backend(x: np.ndarray, backend: str):
    if backend == "numpy":
        return x
    return torch.from_numpy(np.ascontiguousarray(x)).to(backend)


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_same_kind(out, ref) -> None:
    """``out`` has the array type, dtype and device of ``ref``."""
    assert type(out) is type(ref)
    assert out.dtype == ref.dtype
    if isinstance(ref, torch.Tensor):
        assert out.device == ref.device


def fitted_zscore(x: np.ndarray, columns) -> ZScoreTransform:
    return ZScoreTransform(columns).fit(x)


BACKENDS = ["numpy"] + DEVICES


def make_transforms(rng: np.random.Generator):
    """(transform, data it accepts) pairs, float64 data."""
    pos = rng.lognormal(0.0, 1.0, (500, 2))
    shifted = rng.uniform(-0.9, 5.0, (500, 2))
    inside = rng.uniform(-3.0, 7.0, (500, 2))
    dirs = unit_vectors(rng, 500)
    general = rng.normal([1e3, -2.0, 0.0], [10.0, 0.1, 1e-3], (500, 3))
    return [
        (LogTransform(["E1", "E2"]), pos),
        (LogTransform(["a", "b"], offset=[1.0, 2.0]), shifted),
        (ClipTransform(["a", "b"], lo=[-3.0, None], hi=[7.0, 7.0]), inside),
        (UnitVectorTransform(["ux", "uy", "uz"]), dirs),
        (fitted_zscore(general, ["a", "b", "c"]), general),
    ]


# --------------------------------------------------------------------------- single transforms


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", range(5))
def test_each_transform_roundtrip(which: int, dtype: str, backend: str) -> None:
    rng = np.random.default_rng(1)
    transform, data = make_transforms(rng)[which]
    x = to_backend(data.astype(dtype), backend)
    y = transform.forward(x)
    back = transform.inverse(y)
    assert_same_kind(y, x)
    assert_same_kind(back, x)
    assert tuple(back.shape) == tuple(x.shape)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(to_numpy(back), data.astype(dtype), rtol=tol, atol=tol * 1e-2 + 1e-30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_and_torch_agree(backend: str) -> None:
    rng = np.random.default_rng(2)
    for transform, data in make_transforms(rng):
        x = data.astype(np.float32)
        ref = transform.forward(x)
        got = to_numpy(transform.forward(to_backend(x, backend)))
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(
            to_numpy(transform.inverse(to_backend(ref, backend))), transform.inverse(ref), rtol=2e-6, atol=1e-6
        )


def test_integer_input_is_promoted_to_float() -> None:
    y = LogTransform(["E"]).forward(np.array([[1], [2]], dtype=np.int64))
    assert y.dtype == np.float64
    assert y[0, 0] == 0.0


def test_forward_does_not_modify_input() -> None:
    rng = np.random.default_rng(3)
    for transform, data in make_transforms(rng):
        x = data.copy()
        transform.forward(x)
        transform.inverse(x)
        np.testing.assert_array_equal(x, data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unit_vector_inverse_gives_unit_norm(backend: str) -> None:
    rng = np.random.default_rng(4)
    t = UnitVectorTransform(["ux", "uy", "uz"])
    y = rng.normal(0.0, 3.0, (10_000, 3))
    y[0] = 0.0  # a degenerate generated row must not give NaN
    for dtype, tol in (("float32", 1e-6), ("float64", 1e-12)):
        out = to_numpy(t.inverse(to_backend(y.astype(dtype), backend))).astype(np.float64)
        assert np.isfinite(out).all()
        norms = np.linalg.norm(out[1:], axis=1)
        assert np.abs(norms - 1.0).max() < tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_bounds_respected(backend: str) -> None:
    rng = np.random.default_rng(5)
    t = ClipTransform(["a", "b", "c"], lo=[0.0, -1.0, None], hi=[None, 1.0, 2.5])
    y = to_backend(rng.normal(0.0, 10.0, (5000, 3)).astype(np.float32), backend)
    out = to_numpy(t.inverse(y))
    assert out[:, 0].min() >= 0.0
    assert out[:, 1].min() >= -1.0 and out[:, 1].max() <= 1.0
    assert out[:, 2].max() <= 2.5
    # unbounded sides are left alone
    assert out[:, 0].max() == to_numpy(y)[:, 0].max()
    assert out[:, 2].min() == to_numpy(y)[:, 2].min()


def test_clip_forward_accepts_rounding_but_rejects_data_outside() -> None:
    t = ClipTransform(["PreDirection_X", "E"], lo=[-1.0, 0.0], hi=[1.0, None])
    out = t.forward(np.array([[1.0000001, 0.0], [-1.0000001, 3.0]], dtype=np.float32))
    assert out[:, 0].tolist() == [1.0, -1.0]
    with pytest.raises(DataError, match="'E'"):
        t.forward(np.array([[0.5, -0.1]]))


def test_unit_vector_forward_rejects_non_unit_rows() -> None:
    t = UnitVectorTransform(["ux", "uy", "uz"])
    with pytest.raises(DataError, match="ux"):
        t.forward(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
    with pytest.raises(DataError, match="norm"):
        t.forward(np.array([[0.0, 0.0, 1e-4]]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unit_vector_keeps_absorbed_event_rows_of_zeros(backend: str) -> None:
    # GATE's store_absorbed_event rows: nothing left the phantom, every exit column is 0
    t = UnitVectorTransform(["ux", "uy", "uz"])
    x = to_backend(np.array([[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]]), backend)
    y = t.forward(x)
    back = np.asarray(t.inverse(y))
    assert np.array_equal(back[0], [0.0, 0.0, 0.0])
    assert np.allclose(back[1], [0.6, 0.0, 0.8])


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_of_non_positive_names_the_column(backend: str) -> None:
    t = LogTransform(["KineticEnergy", "Other"])
    x = to_backend(np.array([[1.0, 1.0], [2.0, 0.0], [3.0, -0.5]]), backend)
    with pytest.raises(DataError, match=r"'Other'.*min -0\.5"):
        t.forward(x)
    with pytest.raises(DataError, match="KineticEnergy"):
        LogTransform(["KineticEnergy"], offset=1.0).forward(np.array([[-1.0]]))


def test_wrong_shape_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"expected \(n, 3\)"):
        UnitVectorTransform(["ux", "uy", "uz"]).forward(np.zeros((4, 2)))


# --------------------------------------------------------------------------- zscore


@pytest.mark.parametrize("backend", BACKENDS)
def test_zscore_constant_column_is_exact(backend: str) -> None:
    rng = np.random.default_rng(6)
    const = np.float32(0.1) * np.float32(3.0)  # a value that is not a round number in binary
    x = np.stack([rng.normal(size=1000), np.full(1000, const), np.full(1000, -7.25e6)], axis=1).astype(np.float32)
    z = ZScoreTransform(["a", "c", "big"]).fit(x)
    assert z.std[1] == 1.0 and z.std[2] == 1.0
    y = z.forward(to_backend(x, backend))
    yn = to_numpy(y)
    assert np.isfinite(yn).all()
    assert (yn[:, 1:] == 0.0).all()
    back = to_numpy(z.inverse(y))
    assert (back[:, 1] == const).all()
    assert (back[:, 2] == np.float32(-7.25e6)).all()


def test_zscore_near_constant_column_gets_unit_std() -> None:
    # std far below 1e-12 |mean| is rounding noise, not information
    x = np.array([[1e15], [1e15 + 0.125]], dtype=np.float64)
    z = ZScoreTransform(["a"]).fit(x)
    assert z.std == [1.0]
    assert np.isfinite(z.forward(x)).all()


def test_zscore_streaming_fit_matches_concatenation() -> None:
    rng = np.random.default_rng(7)
    chunks = [rng.normal([5.0, -3e3, 0.01], [2.0, 50.0, 1e-4], (m, 3)) for m in (1, 999, 5000, 37, 20000)]
    streamed = ZScoreTransform(["a", "b", "c"])
    streamed.reset()
    for c in chunks:
        streamed.update(c)
    streamed.finalize()
    whole = ZScoreTransform(["a", "b", "c"]).fit(np.concatenate(chunks))
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.std, whole.std, rtol=1e-12)
    cat = np.concatenate(chunks)
    np.testing.assert_allclose(whole.mean, cat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(whole.std, cat.std(axis=0), rtol=1e-12)
    assert all(type(v) is float for v in whole.mean + whole.std)


def test_unfitted_zscore_is_refused() -> None:
    z = ZScoreTransform(["a"])
    assert not z.fitted
    with pytest.raises(ConfigError, match="not fitted"):
        z.forward(np.zeros((2, 1)))
    with pytest.raises(ConfigError, match="not fitted"):
        z.to_dict()
    with pytest.raises(DataError, match="0 rows"):
        ZScoreTransform(["a"]).fit(np.zeros((0, 1)))


# --------------------------------------------------------------------------- serialisation


@pytest.mark.parametrize("which", range(5))
def test_transform_json_roundtrip(which: int) -> None:
    rng = np.random.default_rng(8)
    transform, data = make_transforms(rng)[which]
    d = json.loads(json.dumps(transform.to_dict()))
    again = ColumnTransform.from_dict(d)
    assert type(again) is type(transform)
    assert again == transform
    assert again.to_dict() == transform.to_dict()
    x = data.astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), transform.forward(x))
    np.testing.assert_array_equal(again.inverse(x), transform.inverse(x))
    # a subclass's from_dict works for its own kind only
    assert type(type(transform).from_dict(d)) is type(transform)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"kind": "sqrt", "columns": ["a"]}, "unknown kind"),
        ({"columns": ["a"]}, "unknown kind"),
        ({"kind": "unit_vector", "columns": ["ux", "uy"]}, "exactly 3"),
        ({"kind": "unit_vector", "columns": ["ux", "uy", "uz", "w"]}, "exactly 3"),
        ({"kind": "zscore", "columns": ["a"], "std": [1.0]}, "missing.*mean"),
        ({"kind": "zscore", "columns": ["a", "b"], "mean": [0.0], "std": [1.0, 1.0]}, "one per column"),
        ({"kind": "zscore", "columns": ["a"], "mean": [0.0], "std": [0.0]}, "expected > 0"),
        ({"kind": "zscore", "columns": ["a"], "mean": [float("nan")], "std": [1.0]}, "finite"),
        ({"kind": "zscore", "columns": ["a"], "mean": ["0"], "std": [1.0]}, "finite number"),
        ({"kind": "zscore", "columns": ["a"], "mean": 0.0, "std": [1.0]}, "must be a list"),
        ({"kind": "log", "columns": ["a"], "offset": [0.0], "scale": 2}, "unknown key"),
        ({"kind": "log", "columns": "a"}, "list of"),
        ({"kind": "log", "columns": []}, "empty"),
        ({"kind": "log", "columns": ["a", "a"]}, "more than once"),
        ({"kind": "clip", "columns": ["a"], "lo": [2.0], "hi": [1.0]}, "lo <= hi"),
        ({"kind": "clip", "columns": ["a"], "lo": [None]}, "missing"),
        ("log", "expected a dict"),
    ],
)
def test_bad_transform_dict_is_config_error(bad, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ColumnTransform.from_dict(bad)


def test_from_dict_on_the_wrong_subclass_is_refused() -> None:
    with pytest.raises(ConfigError, match="LogTransform"):
        LogTransform.from_dict({"kind": "unit_vector", "columns": ["a", "b", "c"]})


# --------------------------------------------------------------------------- pipeline


def fitted_default(rng: np.random.Generator, n: int = 4000) -> tuple[TablePipeline, dict[str, np.ndarray]]:
    table = random_table(rng, n)
    pipe = TablePipeline.default(KEYS, clip={"KineticEnergy": (0.0, None)}).fit([table])
    return pipe, table


def test_default_pipeline_steps() -> None:
    pipe = TablePipeline.default(KEYS, clip={"KineticEnergy": (0.0, None)})
    kinds = [(s.kind, s.columns) for s in pipe.steps]
    dirs = ("PreDirection_X", "PreDirection_Y", "PreDirection_Z")
    assert kinds == [
        ("clip", ("KineticEnergy",)),
        ("clip", dirs),
        ("log", ("KineticEnergy",)),
        ("unit_vector", dirs),
        ("zscore", tuple(KEYS)),
    ]
    assert pipe.steps[1].lo == [-1.0] * 3 and pipe.steps[1].hi == [1.0] * 3
    assert pipe.steps[2].offset == [0.0]
    assert pipe.n_features == len(KEYS) and not pipe.fitted
    none = TablePipeline.default(KEYS, log_columns=None, directions=None)
    assert [s.kind for s in none.steps] == ["zscore"]


def test_auto_column_selection() -> None:
    assert is_energy_column("KineticEnergy") and is_energy_column("EventKineticEnergy")
    assert is_energy_column("DepositedEnergy") and not is_energy_column("EnergyBin")
    keys = ["PreDirection_X", "PreDirection_Y", "PreDirection_Z", "PostDirection_X", "PostDirection_Y",
            "EventDirection_Z", "EventDirection_Y", "EventDirection_X", "PrePosition_X", "PrePosition_Y",
            "PrePosition_Z"]
    assert direction_triplets(keys) == [
        ("PreDirection_X", "PreDirection_Y", "PreDirection_Z"),
        ("EventDirection_X", "EventDirection_Y", "EventDirection_Z"),
    ]


def test_pipeline_roundtrip_numpy() -> None:
    rng = np.random.default_rng(9)
    pipe, table = fitted_default(rng)
    x = pipe.forward(table)
    assert x.dtype == np.float32 and x.shape == (4000, len(KEYS))
    assert np.abs(x.mean(axis=0)).max() < 1e-4
    back = pipe.inverse(x)
    assert list(back) == KEYS
    for k in KEYS:
        assert back[k].dtype == np.float32 and back[k].flags.c_contiguous
        np.testing.assert_allclose(back[k], table[k], rtol=2e-6, atol=2e-6 * max(1.0, np.abs(table[k]).max()))
    assert (back["PrePosition_Z"] == 300.0).all() and (back["Weight"] == 1.0).all()
    assert (x[:, KEYS.index("PrePosition_Z")] == 0.0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_pipeline_roundtrip_torch(device: str) -> None:
    rng = np.random.default_rng(10)
    pipe, table = fitted_default(rng)
    phys = np.stack([table[k] for k in KEYS], axis=1)
    x_np = pipe.forward(table)
    x_t = pipe.forward_matrix(torch.from_numpy(phys).to(device))
    assert isinstance(x_t, torch.Tensor) and x_t.device.type == device and x_t.dtype == torch.float32
    np.testing.assert_allclose(to_numpy(x_t), x_np, rtol=1e-5, atol=1e-5)
    back = pipe.inverse(x_t)
    for k in KEYS:
        assert isinstance(back[k], torch.Tensor) and back[k].device.type == device
        np.testing.assert_allclose(to_numpy(back[k]), table[k], rtol=2e-6, atol=2e-6 * max(1.0, np.abs(table[k]).max()))
    # float64 tensors stay float64
    y64 = pipe.inverse_matrix(torch.from_numpy(x_np.astype(np.float64)).to(device))
    assert y64.dtype == torch.float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipeline_inverse_of_generated_rows_is_physical(backend: str) -> None:
    rng = np.random.default_rng(11)
    pipe, _ = fitted_default(rng)
    y = rng.normal(0.0, 5.0, (20_000, len(KEYS))).astype(np.float32)
    out = pipe.inverse(to_backend(y, backend))
    u = np.stack([to_numpy(out[k]) for k in ("PreDirection_X", "PreDirection_Y", "PreDirection_Z")], 1)
    assert np.abs(np.linalg.norm(u.astype(np.float64), axis=1) - 1).max() < 1e-6
    assert np.abs(u).max() <= 1.0
    assert to_numpy(out["KineticEnergy"]).min() >= 0.0
    for k in KEYS:
        assert np.isfinite(to_numpy(out[k])).all()


def test_pipeline_constant_log_column_is_exact() -> None:
    """A constant energy goes through log in float32 and still maps to exactly 0 (fit and forward agree).

    Back in physical units it is exp(log(c)), i.e. c to float32 rounding: the log, not the z-score, rounds.
    """
    rng = np.random.default_rng(12)
    table = random_table(rng, 1000)
    table["KineticEnergy"] = np.full(1000, 1.7, dtype=np.float32)
    pipe = TablePipeline.default(KEYS).fit([table])
    x = pipe.forward(table)
    assert (x[:, 0] == 0.0).all()
    back = pipe.inverse(x)["KineticEnergy"]
    assert np.isfinite(back).all()
    np.testing.assert_array_max_ulp(back, np.full(1000, 1.7, dtype=np.float32), maxulp=2)


def test_pipeline_streaming_fit_matches_concatenation() -> None:
    rng = np.random.default_rng(13)
    chunks = [random_table(rng, m) for m in (10, 3000, 1, 777)]
    streamed = TablePipeline.default(KEYS).fit(iter(chunks))
    whole = TablePipeline.default(KEYS).fit([{k: np.concatenate([c[k] for c in chunks]) for k in KEYS}])
    zs, zw = streamed.steps[-1], whole.steps[-1]
    np.testing.assert_allclose(zs.mean, zw.mean, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(zs.std, zw.std, rtol=1e-12)
    # refitting starts from scratch
    again = streamed.fit([chunks[0]])
    assert again is streamed
    assert streamed.steps[-1].mean != zw.mean


def test_pipeline_json_roundtrip() -> None:
    rng = np.random.default_rng(14)
    pipe, table = fitted_default(rng)
    d = json.loads(json.dumps(pipe.to_dict()))
    again = TablePipeline.from_dict(d)
    assert again == pipe and again.to_dict() == pipe.to_dict()
    x = pipe.forward(table)
    np.testing.assert_array_equal(again.forward(table), x)
    y = rng.normal(size=x.shape).astype(np.float32)
    for k, v in pipe.inverse(y).items():
        np.testing.assert_array_equal(again.inverse(y)[k], v)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(kind="other"), "'kind'"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(extra=1), "unknown key"),
        (lambda d: d.pop("keys"), "'keys' must be a list"),
        (lambda d: d["steps"][0].update(kind="nope"), "unknown kind"),
        (lambda d: d["steps"][-1].pop("mean"), "missing"),
        (lambda d: d["steps"][0].update(columns=["Nope"] * 1 + ["PreDirection_Y", "PreDirection_Z"]), "Nope"),
        (lambda d: d["steps"].append(d["steps"][1]), "last step"),
    ],
)
def test_bad_pipeline_dict_is_config_error(mutate, match: str) -> None:
    rng = np.random.default_rng(15)
    pipe, _ = fitted_default(rng, 100)
    d = json.loads(json.dumps(pipe.to_dict()))
    mutate(d)
    with pytest.raises(ConfigError, match=match):
        TablePipeline.from_dict(d)


def test_pipeline_config_errors() -> None:
    with pytest.raises(ConfigError, match="Nope"):
        TablePipeline.default(KEYS, log_columns=["Nope"])
    with pytest.raises(ConfigError, match="exactly 3"):
        TablePipeline.default(KEYS, directions=[("PreDirection_X", "PreDirection_Y")])
    with pytest.raises(ConfigError, match="lo <= hi"):
        TablePipeline.default(KEYS, clip={"KineticEnergy": (5.0, 1.0)})
    with pytest.raises(ConfigError, match="more than once"):
        TablePipeline(["a", "a"], [])


def test_missing_key_names_the_key() -> None:
    rng = np.random.default_rng(16)
    pipe, table = fitted_default(rng, 100)
    del table["PreDirection_Y"]
    with pytest.raises(DataError, match=r"\['PreDirection_Y'\].*available") as err:
        pipe.forward(table)
    assert "KineticEnergy" in str(err.value)
    with pytest.raises(DataError, match="PreDirection_Y"):
        TablePipeline.default(KEYS).fit([table])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_in_fit_names_the_column(bad: float) -> None:
    rng = np.random.default_rng(17)
    chunks = [random_table(rng, 100), random_table(rng, 100)]
    chunks[1]["PrePosition_Y"][37] = bad
    with pytest.raises(DataError, match=r"'PrePosition_Y'.*row 37"):
        TablePipeline.default(KEYS).fit(chunks)


def test_fit_on_no_rows_is_an_error() -> None:
    with pytest.raises(DataError, match="0 rows"):
        TablePipeline.default(KEYS).fit([])


def test_pipeline_log_error_names_the_column() -> None:
    rng = np.random.default_rng(18)
    table = random_table(rng, 100)
    table["KineticEnergy"][5] = 0.0
    with pytest.raises(DataError, match="'KineticEnergy'"):
        TablePipeline.default(KEYS).fit([table])


def test_ragged_table_is_a_data_error() -> None:
    rng = np.random.default_rng(19)
    pipe, table = fitted_default(rng, 100)
    table["Weight"] = table["Weight"][:-1]
    with pytest.raises(DataError, match="'Weight' has 99 rows"):
        pipe.forward(table)


def test_pipeline_inverse_stays_on_the_tensor_device() -> None:
    """On the meta device any host tensor mixed in would raise: checks device handling without a GPU."""
    rng = np.random.default_rng(20)
    pipe, _ = fitted_default(rng, 100)
    y = torch.empty((5, len(KEYS)), device="meta", dtype=torch.float64)
    out = pipe.inverse_matrix(y)
    assert out.device.type == "meta" and out.dtype == torch.float64 and tuple(out.shape) == (5, len(KEYS))
