"""Train/validation split of labelled slices grouped by subject, stratified by class.

Slices of one person are strongly correlated; a split that puts some of them in training and
others in validation measures memory of that person, not generalisation. So whole subjects go
to one side (``StratifiedGroupKFold``), with the class proportions kept as close as the
subjects allow.

PACGAN's ``main.py`` runs ``StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=8)``
over (ID, Label, Subject_ID) and, although its comment says "keep the first split", its loop
keeps the **last** fold: ``n_folds=5, fold=4, seed=8`` here (the fold assignment also depends on
scikit-learn's implementation of the splitter).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from gansim.errors import ConfigError, DataError

__all__ = ["subject_hashes", "stratified_group_split", "check_no_subject_overlap"]


def check_no_subject_overlap(sets: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse sets that share a subject.

    Args:
        sets: set name (``"train"``, ``"validation"``, ``"test"``) -> (n,) subject IDs of its slices.
        source: where the subjects come from (a labels.csv), for the message.

    Raises:
        DataError: naming the first shared subject (in sorted order), the two sets and how many
            subjects they share.
    """
    names = list(sets)
    unique = {name: {str(s) for s in np.asarray(sets[name]).ravel()} for name in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = unique[a] & unique[b]
            if shared:
                first = min(shared)
                raise DataError(
                    f"{source}: subject {first!r} is in both the {a!r} and the {b!r} set ({len(shared)} shared subject(s)); "
                    "slices of one person must all be on one side of a split"
                )


def stratified_group_split(
    labels: np.ndarray,
    subjects: np.ndarray,
    n_folds: int,
    fold: int,
    seed: int,
    source: str = "labels.csv",
) -> tuple[np.ndarray, np.ndarray]:
    """Split slices into training and validation by whole subjects, stratified by class.

    ``sklearn.model_selection.StratifiedGroupKFold(n_splits=n_folds, shuffle=True,
    random_state=seed)``; fold ``fold`` (0-based) is the validation set, the others train.
    PACGAN's choice is ``n_folds=5, fold=4, seed=8``.

    Args:
        labels: (N,) integer class of each slice.
        subjects: (N,) subject ID of each slice.
        n_folds: number of folds, >= 2.
        fold: the validation fold, 0..n_folds-1.
        seed: the shuffling seed.
        source: where labels and subjects come from, for messages.

    Returns:
        (train_idx, val_idx): sorted int64 slice indices; every subject is in exactly one.

    Raises:
        ConfigError: ``n_folds`` < 2 or ``fold`` outside 0..n_folds-1.
        DataError: labels/subjects of different lengths, fewer subjects than folds, or a class
            held by fewer subjects than folds (some validation fold would lack it).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds={n_folds!r}: expected an integer >= 2")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < n_folds:
        raise ConfigError(f"fold={fold!r}: expected 0..{n_folds - 1} with n_folds={n_folds}")
    y = np.asarray(labels)
    groups = np.asarray(subjects).astype(str)
    if y.ndim != 1 or groups.shape != y.shape:
        raise DataError(f"{source}: {y.shape} labels and {groups.shape} subjects; expected one label and one subject per slice")
    if y.dtype.kind not in "iu":
        raise DataError(f"{source}: labels of dtype {y.dtype}; expected integer classes")
    unique_subjects = np.unique(groups)
    if len(unique_subjects) < n_folds:
        raise DataError(f"{source}: {len(unique_subjects)} subject(s) for {n_folds} folds; each fold needs at least one subject (lower n_folds or add subjects)")
    for k in np.unique(y):
        n_k = len(np.unique(groups[y == k]))
        if n_k < n_folds:
            raise DataError(f"{source}: class {int(k)} has {n_k} subject(s), fewer than the {n_folds} folds, so some validation fold would lack it (lower n_folds or add subjects of class {int(k)})")

    _warn_mixed_subjects(y, groups, source)
    splitter = StratifiedGroupKFold(n_splits=int(n_folds), shuffle=True, random_state=int(seed))
    train_idx = val_idx = None
    for k, (train, val) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        if k == fold:
            train_idx, val_idx = np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)
            break
    assert train_idx is not None and val_idx is not None  # the splitter yields n_folds folds
    # defensive: the splitter groups by subject, but a wrong result here would silently inflate every score
    check_no_subject_overlap({"train": groups[train_idx], "validation": groups[val_idx]}, source)
    return train_idx, val_idx


def _warn_mixed_subjects(labels: np.ndarray, subjects: np.ndarray, source: str) -> None:
    """Warn about subjects whose slices carry more than one class.

    A subject's diagnosis is one class in a cross-sectional cohort, so this is usually a mistake in
    labels.csv; in longitudinal data (a converter scanned before and after) it can be meant, so the
    labels are kept as given and the split still keeps the subject on one side.
    """
    order = np.argsort(subjects, kind="stable")
    s, y = subjects[order], labels[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    mixed = [str(s[i]) for i, j in zip(starts, np.r_[starts[1:], len(s)]) if np.unique(y[i:j]).size > 1]
    if mixed:
        first = mixed[0]
        classes = sorted(int(k) for k in np.unique(labels[subjects == first]))
        warnings.warn(
            f"{source}: subject {first!r} has slices of classes {classes} ({len(mixed)} subject(s) with more than one class); "
            "labels are kept as given (a longitudinal converter?), but check Label against Subject_ID",
            stacklevel=3,
        )


def subject_hashes(subjects: np.ndarray | list[str]) -> list[str]:
    """Sorted SHA-256 digests (16 hex digits) of the distinct subject IDs: what a model file keeps to recognise
    its training subjects later without storing their IDs."""
    import hashlib

    return sorted({hashlib.sha256(str(s).encode("utf-8")).hexdigest()[:16] for s in subjects})
