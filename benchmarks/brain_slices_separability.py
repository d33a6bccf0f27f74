"""How separable are the classes of the built-in brain-slice data set? (CNN and logistic-regression AUC)

The built-in data (``gansim data brain-slices``) stand in for PACGAN's ADNI AD-vs-CN slices,
whose best classifier reaches a test AUC of 0.813 in the PACGAN paper. They should be
separable, but not trivially. For each effect strength this script makes the default data
set (2 classes x 40 train + 2 x 15 test subjects, 4 slices each, 64x64) and reports, on the
test split, the whole-set ROC AUC (sklearn) of

* a plain small CNN (3 conv 3x3 + batch-norm + ReLU + max-pool blocks of 8/16/32 channels, global
  average pooling, a linear logit; Adam lr 1e-3, batch 32, a fixed number of epochs, seed 0),
  per slice and per subject (mean logit over the subject's slices);
* a logistic regression on the standardised pixel values (sklearn, C = 1), per slice.

Effect 0 is the control: both classes are drawn from the same distribution, so any AUC away
from 0.5 is the estimate's noise (sd ~ 0.05 per slice set of this size, more because slices
of a subject are correlated).

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/brain_slices_separability.py [--effects 0 0.5 1] [--epochs 30] [--seeds 0]

With several ``--seeds`` (data-set seeds) it also prints the mean and sd of each AUC.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _cnn(seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    channels = 1
    for width in (8, 16, 32):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1))


def train_cnn(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, epochs: int, seed: int) -> np.ndarray:
    """Train on (N, 1, H, W) images in [-1, 1] with labels 0/1; return the test logits (M,)."""
    import torch

    model = _cnn(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.from_numpy(x_train)
    y = torch.from_numpy(y_train.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=gen).split(32):
            opt.zero_grad()
            loss_fn(model(x[batch]).squeeze(1), y[batch]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x_test)).squeeze(1).numpy()


def logistic_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Logistic regression on standardised pixels; return the test decision values."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(x_train.reshape(len(x_train), -1), y_train)
    return clf.decision_function(x_test.reshape(len(x_test), -1))


def subject_auc(scores: np.ndarray, labels: np.ndarray, subjects: np.ndarray) -> float:
    """AUC of the mean score over each subject's slices."""
    from sklearn.metrics import roc_auc_score

    names, inverse = np.unique(subjects, return_inverse=True)
    mean = np.bincount(inverse, weights=scores) / np.bincount(inverse)
    label = np.zeros(len(names), dtype=int)
    label[inverse] = labels
    return float(roc_auc_score(label, mean))


def run(effect: float, seed: int, epochs: int, train_per_class: int, test_per_class: int) -> dict[str, float]:
    import torch
    from sklearn.metrics import roc_auc_score

    from gansim.data.brain_slices import make_brain_slices

    t0 = time.perf_counter()
    streams = np.random.SeedSequence(seed).spawn(2)  # the same streams as write_brain_slices(seed=seed)
    x_tr, y_tr, _, _ = make_brain_slices(train_per_class, seed=streams[0], effect=effect, subject_prefix="train")
    x_te, y_te, s_te, _ = make_brain_slices(test_per_class, seed=streams[1], effect=effect, subject_prefix="test")
    t_data = time.perf_counter() - t0
    # gansim's 'range' intensity scaling: the train set's min/max -> [-1, 1]
    lo, hi = float(x_tr.min()), float(x_tr.max())
    scale = lambda a: ((2.0 * (a - lo) / (hi - lo)) - 1.0).astype(np.float32)  # noqa: E731
    x_tr, x_te = scale(x_tr), scale(x_te)
    torch.set_num_threads(1)
    t1 = time.perf_counter()
    logits = train_cnn(x_tr, y_tr, x_te, epochs=epochs, seed=0)
    t_cnn = time.perf_counter() - t1
    t2 = time.perf_counter()
    lin = logistic_scores(x_tr, y_tr, x_te)
    t_lin = time.perf_counter() - t2
    return {
        "cnn_auc": float(roc_auc_score(y_te, logits)),
        "cnn_subject_auc": subject_auc(logits, y_te, s_te),
        "logreg_auc": float(roc_auc_score(y_te, lin)),
        "data_s": t_data,
        "cnn_s": t_cnn,
        "logreg_s": t_lin,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="data-set seeds (the CNN seed is always 0)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-subjects", type=int, default=40, help="train subjects per class")
    parser.add_argument("--test-subjects", type=int, default=15, help="test subjects per class")
    args = parser.parse_args()

    from gansim.data.brain import load_template

    t0 = time.perf_counter()
    load_template()
    print(f"template loaded in {time.perf_counter() - t0:.1f} s")
    print("effect  seed  CNN AUC  CNN subject AUC  logreg AUC   data s  CNN s  logreg s")
    for effect in args.effects:
        rows = []
        for seed in args.seeds:
            r = run(effect, seed, args.epochs, args.train_subjects, args.test_subjects)
            rows.append(r)
            print(
                f"{effect:6.2f}  {seed:4d}  {r['cnn_auc']:7.3f}  {r['cnn_subject_auc']:15.3f}  {r['logreg_auc']:10.3f}"
                f"  {r['data_s']:7.1f}  {r['cnn_s']:5.1f}  {r['logreg_s']:8.1f}",
                flush=True,
            )
        if len(rows) > 1:
            stats = {k: (np.mean([r[k] for r in rows]), np.std([r[k] for r in rows], ddof=1)) for k in ("cnn_auc", "cnn_subject_auc", "logreg_auc")}
            print(
                f"{effect:6.2f}  mean  {stats['cnn_auc'][0]:.3f}+-{stats['cnn_auc'][1]:.3f}"
                f"  {stats['cnn_subject_auc'][0]:.3f}+-{stats['cnn_subject_auc'][1]:.3f}"
                f"  {stats['logreg_auc'][0]:.3f}+-{stats['logreg_auc'][1]:.3f}",
                flush=True,
            )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
