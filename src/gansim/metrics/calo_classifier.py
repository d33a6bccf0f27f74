"""The CaloChallenge classifier test: can a neural network tell generated showers from reference ones?

As the CaloChallenge's ``evaluate.py`` does it (``../shared/reference/calogan.md`` §e): a fully
connected network with LeakyReLU, an input layer and two hidden layers of 2048 units, trained
with Adam (lr 2e-4, batch 1000) for up to 50 epochs with binary cross-entropy; the epoch with
the lowest loss on a validation split is kept; its outputs are calibrated by isotonic
regression fitted on that validation split; the AUC is computed on a third, independent split.
AUC 0.5 means the classifier cannot tell the samples apart. Inputs:

- ``low``: log10 E_inc and every cell divided by E_inc (:func:`low_level_features`);
- ``high``: the challenge's high-level vector (:func:`gansim.metrics.calo_shapes.calochallenge_feature_vector`).

Inputs are standardised with the training split's mean and standard deviation (the network
is not scale invariant; this changes what it can learn only through optimisation speed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gansim.errors import ConfigError, DataError
from gansim.metrics.classifier import hanley_mcneil_se, null_auc_se

__all__ = ["low_level_features", "classifier_test"]


def low_level_features(layers: Sequence[np.ndarray], energy_mev: np.ndarray) -> np.ndarray:
    """(N, 1 + cells): log10 E_inc (MeV) then every cell / E_inc, layers flattened in order."""
    e = np.asarray(energy_mev, dtype=np.float64).reshape(-1)
    if np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise DataError("low_level_features: incident energies must be finite and > 0 MeV")
    cells = np.concatenate([np.asarray(a, dtype=np.float64).reshape(len(e), -1) for a in layers], axis=1)
    return np.concatenate([np.log10(e)[:, None], cells / e[:, None]], axis=1).astype(np.float32)


def _network(n_in: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, 1)
    )


def _split(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(n)
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    return [perm[:a], perm[a:b], perm[b:]]


def classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    hidden: int = 2048,
    epochs: int = 50,
    lr: float = 2e-4,
    batch_size: int = 1000,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the classifier on ``reference`` (label 1) against ``generated`` (label 0); return its calibrated test AUC.

    Both samples are cut to the smaller one's size (balanced classes), each split into train,
    validation and test parts by ``fractions``.

    Returns:
        ``auc``, ``auc_se`` (Hanley-McNeil), ``null_se`` (the spread of the AUC of two identical
        samples), ``best_epoch``, ``validation_loss``, ``n_train``, ``n_test`` and the settings.
    """
    ref = np.asarray(reference, dtype=np.float32)
    gen = np.asarray(generated, dtype=np.float32)
    if ref.ndim != 2 or gen.ndim != 2 or ref.shape[1] != gen.shape[1]:
        raise DataError(f"classifier_test: expected two (N, F) feature arrays with the same F, got {ref.shape} and {gen.shape}")
    for name, arr in (("reference", ref), ("generated", gen)):
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise DataError(f"classifier_test: {name} features hold NaN/Inf (first at row {row})")
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ConfigError(f"fractions {fractions!r}: expected three positive parts summing to 1 (train, validation, test)")
    rng = np.random.default_rng(seed)
    m = min(len(ref), len(gen))
    if m < 50:
        raise DataError(f"classifier_test: {m} showers per sample is too few (need >= 50)")
    ref, gen = ref[rng.permutation(len(ref))[:m]], gen[rng.permutation(len(gen))[:m]]
    parts_ref, parts_gen = _split(m, fractions, rng), _split(m, fractions, rng)
    x = [np.concatenate([ref[pr], gen[pg]]) for pr, pg in zip(parts_ref, parts_gen)]
    y = [np.concatenate([np.ones(len(pr)), np.zeros(len(pg))]).astype(np.float32) for pr, pg in zip(parts_ref, parts_gen)]
    mean, std = x[0].mean(axis=0), x[0].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = [(xi - mean) / std for xi in x]

    torch_gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = torch.device(device)
    net = _network(x[0].shape[1], hidden).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    xt, yt = (torch.from_numpy(v).to(dev) for v in (x[0], y[0]))
    xv, yv = (torch.from_numpy(v).to(dev) for v in (x[1], y[1]))
    best = (float("inf"), -1, None)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xt), generator=torch_gen).to(dev)
        for start in range(0, len(xt), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss_fn(net(xt[idx]).squeeze(1), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(xv).squeeze(1), yv))
        if val < best[0]:
            best = (val, epoch, {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[2])  # type: ignore[arg-type]
    net.eval()
    with torch.no_grad():
        p_val = torch.sigmoid(net(xv).squeeze(1)).cpu().numpy()
        p_test = torch.sigmoid(net(torch.from_numpy(x[2]).to(dev)).squeeze(1)).cpu().numpy()
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    calibrated = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p_val, y[1]).predict(p_test)
    auc = float(roc_auc_score(y[2], calibrated))
    n_pos, n_neg = int(y[2].sum()), int(len(y[2]) - y[2].sum())
    return {
        "auc": auc,
        "auc_se": hanley_mcneil_se(auc, n_pos, n_neg),
        "null_se": null_auc_se(n_pos, n_neg),
        "best_epoch": best[1],
        "validation_loss": best[0],
        "n_train": int(len(y[0])),
        "n_test": int(len(y[2])),
        "settings": {"hidden": hidden, "epochs": epochs, "lr": lr, "batch_size": batch_size, "fractions": list(fractions), "seed": seed},
    }
