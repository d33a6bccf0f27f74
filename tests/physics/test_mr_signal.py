"""Spin-echo signal equation and partial-volume mixing against analytic results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError
from gansim.physics.mr_signal import (
    SEQUENCES,
    TISSUE_TABLES,
    TISSUES_3T,
    SpinEchoSequence,
    Tissue,
    get_sequence,
    get_tissue_table,
    spin_echo,
    spin_echo_log_derivative,
    tissue_signal,
)


def test_spin_echo_matches_the_formula_at_a_hand_computed_point() -> None:
    # PD 0.8, T1 1000 ms, T2 100 ms, TR 500 ms, TE 20 ms
    expected = 0.8 * (1.0 - math.exp(-0.5)) * math.exp(-0.2)
    assert float(spin_echo(0.8, 1000.0, 100.0, 500.0, 20.0)) == pytest.approx(expected, rel=1e-12)


def test_long_tr_limit_is_pure_t2_decay() -> None:
    pd, t1, t2, te = 0.7, np.array([800.0, 1300.0, 4300.0]), np.array([80.0, 110.0, 2200.0]), 90.0
    np.testing.assert_allclose(spin_echo(pd, t1, t2, math.inf, te), pd * np.exp(-te / t2), rtol=1e-14)
    # and the finite-TR signal converges to it: the missing recovery is exp(-TR/T1)
    tr = 200.0 * t1.max()
    np.testing.assert_allclose(spin_echo(pd, t1, t2, tr, te), pd * np.exp(-te / t2), rtol=1e-14)


def test_zero_te_limit_is_pure_t1_recovery() -> None:
    pd, t1, t2, tr = 0.9, np.array([500.0, 833.0, 2569.0]), np.array([70.0, 83.0, 329.0]), 600.0
    np.testing.assert_allclose(spin_echo(pd, t1, t2, tr, 0.0), pd * (1.0 - np.exp(-tr / t1)), rtol=1e-14)
    # short TR: 1 - exp(-x) ~ x, computed without cancellation
    assert float(spin_echo(1.0, 1e6, 100.0, 1e-3, 0.0)) == pytest.approx(1e-9, rel=1e-9)


def test_spin_echo_broadcasts_and_is_linear_in_pd() -> None:
    pd = np.linspace(0.0, 1.0, 5)[:, None]
    t1 = np.array([[800.0, 1300.0]])
    out = spin_echo(pd, t1, 100.0, 500.0, 15.0)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out, pd * spin_echo(1.0, t1, 100.0, 500.0, 15.0), rtol=1e-14)


@pytest.mark.parametrize(
    "args",
    [
        (1.0, -800.0, 80.0, 500.0, 15.0),
        (1.0, 800.0, 0.0, 500.0, 15.0),
        (-0.1, 800.0, 80.0, 500.0, 15.0),
        (1.0, 800.0, 80.0, 500.0, -1.0),
        (1.0, float("nan"), 80.0, 500.0, 15.0),
        (1.0, 800.0, 80.0, 500.0, 500.0),  # TE >= TR
        (1.0, 800.0, 80.0, 0.0, 0.0),
    ],
)
def test_spin_echo_refuses_unphysical_arguments(args: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError):
        spin_echo(*args)


@pytest.mark.parametrize("table", sorted(TISSUE_TABLES))
def test_default_tables_give_the_textbook_contrast_order(table: str) -> None:
    tissues = TISSUE_TABLES[table]

    def signal(tissue: str, sequence: str) -> float:
        t, s = tissues[tissue], SEQUENCES[sequence]
        return float(spin_echo(t.pd, t.t1_ms, t.t2_ms, s.tr_ms, s.te_ms))

    assert signal("wm", "t1w") > signal("gm", "t1w") > signal("csf", "t1w")
    assert signal("csf", "t2w") > signal("gm", "t2w") > signal("wm", "t2w")
    # with full recovery and a short TE the signal follows PD: CSF > GM > WM (a finite TR of
    # 4000 ms does not fully recover CSF's T1 of 4300 ms at 3 T, so "pdw" itself need not)
    pd_weighted = [float(spin_echo(tissues[t].pd, tissues[t].t1_ms, tissues[t].t2_ms, math.inf, 15.0)) for t in ("csf", "gm", "wm")]
    assert pd_weighted[0] > pd_weighted[1] > pd_weighted[2]


def test_tissue_signal_is_the_linear_mix_of_the_pure_tissues() -> None:
    rng = np.random.default_rng(0)
    f = rng.dirichlet([1.0, 1.0, 1.0, 1.0], size=200)[:, :3]  # the 4th part is "no tissue"
    fractions = {"csf": f[:, 0], "gm": f[:, 1], "wm": f[:, 2]}
    for name in ("t1w", "t2w"):
        seq = SEQUENCES[name]
        pure = {t: spin_echo(TISSUES_3T[t].pd, TISSUES_3T[t].t1_ms, TISSUES_3T[t].t2_ms, seq.tr_ms, seq.te_ms) for t in fractions}
        expected = sum(fractions[t] * pure[t] for t in fractions)
        np.testing.assert_allclose(tissue_signal(fractions, name), expected, rtol=1e-13)
        # a pure tissue gives its own signal, nothing gives 0
        one = np.ones(3)
        np.testing.assert_allclose(tissue_signal({"gm": one}, name), pure["gm"] * one, rtol=1e-14)
        np.testing.assert_array_equal(tissue_signal({"gm": 0 * one, "wm": 0 * one}, name), 0 * one)
    # linearity: S(a f + b g) = a S(f) + b S(g)
    g = {"csf": f[::-1, 2], "gm": f[::-1, 0], "wm": f[::-1, 1]}
    mix = {t: 0.3 * fractions[t] + 0.5 * g[t] for t in fractions}
    np.testing.assert_allclose(tissue_signal(mix, "t2w"), 0.3 * tissue_signal(fractions, "t2w") + 0.5 * tissue_signal(g, "t2w"), rtol=1e-13)


def test_relaxation_scale_divides_both_relaxation_times() -> None:
    r = np.array([0.8, 1.0, 1.3])
    seq = SEQUENCES["t1w"]
    wm = TISSUES_3T["wm"]
    got = tissue_signal({"wm": np.ones(3)}, seq, relaxation_scale=r)
    np.testing.assert_allclose(got, spin_echo(wm.pd, wm.t1_ms / r, wm.t2_ms / r, seq.tr_ms, seq.te_ms), rtol=1e-14)
    with pytest.raises(DataError, match="relaxation_scale"):
        tissue_signal({"wm": np.ones(3)}, seq, relaxation_scale=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(DataError, match="shape"):
        tissue_signal({"wm": np.ones(3)}, seq, relaxation_scale=np.ones(4))


def test_log_derivative_matches_a_finite_difference() -> None:
    t1, t2 = np.array([832.0, 1331.0, 4300.0]), np.array([79.6, 110.0, 2200.0])
    h = 1e-6
    for seq in (SEQUENCES["t1w"], SEQUENCES["t2w"], SpinEchoSequence("long", 1e5, 30.0)):
        up = np.log(spin_echo(1.0, t1 / math.exp(h), t2 / math.exp(h), seq.tr_ms, seq.te_ms))
        down = np.log(spin_echo(1.0, t1 * math.exp(h), t2 * math.exp(h), seq.tr_ms, seq.te_ms))
        np.testing.assert_allclose(spin_echo_log_derivative(t1, t2, seq.tr_ms, seq.te_ms), (up - down) / (2 * h), atol=1e-7)
    # T1w signals rise, T2w signals fall when relaxation speeds up; at TR = inf only the T2 term is left
    assert np.all(spin_echo_log_derivative(t1[:2], t2[:2], 500.0, 15.0) > 0)
    assert np.all(spin_echo_log_derivative(t1[:2], t2[:2], 4000.0, 100.0) < 0)
    np.testing.assert_allclose(spin_echo_log_derivative(t1, t2, math.inf, 100.0), -100.0 / t2, rtol=1e-14)


def test_bad_tissue_inputs_are_named() -> None:
    with pytest.raises(ConfigError, match="bone"):
        tissue_signal({"bone": np.ones(2)}, "t1w")
    with pytest.raises(DataError, match="'gm'"):
        tissue_signal({"gm": np.array([0.5, -0.1])}, "t1w")
    with pytest.raises(DataError, match="shapes"):
        tissue_signal({"gm": np.ones(2), "wm": np.ones(3)}, "t1w")
    with pytest.raises(ConfigError, match="t1w"):
        get_sequence("flair")
    with pytest.raises(ConfigError, match="3t"):
        get_tissue_table("7t")
    with pytest.raises(ConfigError, match="te_ms"):
        SpinEchoSequence("bad", 100.0, 150.0)
    with pytest.raises(ConfigError, match="t1_ms"):
        Tissue(0.0, 80.0, 0.7)


def test_custom_sequences_and_tables_are_accepted() -> None:
    table = {"wm": Tissue(1000.0, 100.0, 1.0)}
    seq = SpinEchoSequence("mine", 1000.0, 100.0)
    assert get_sequence(seq) is seq and get_sequence("T2W") is SEQUENCES["t2w"]
    got = float(tissue_signal({"wm": np.ones(1)}, seq, table)[0])
    assert got == pytest.approx((1.0 - math.exp(-1.0)) * math.exp(-1.0), rel=1e-14)
    assert get_tissue_table("1.5T")["csf"].t1_ms == 2569.0
