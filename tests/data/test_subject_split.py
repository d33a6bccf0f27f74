"""Subject-grouped, class-stratified train/validation split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from gansim.data.subject_split import check_no_subject_overlap, stratified_group_split
from gansim.errors import ConfigError, DataError


def _slices(subjects_per_class: tuple[int, ...], slices: tuple[int, int] = (2, 6), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and subject IDs of slices: each subject has one class and ``slices[0]..slices[1]`` slices, rows shuffled."""
    rng = np.random.default_rng(seed)
    labels, subjects = [], []
    for k, n_subjects in enumerate(subjects_per_class):
        for j in range(n_subjects):
            m = int(rng.integers(slices[0], slices[1] + 1))
            labels += [k] * m
            subjects += [f"c{k}-s{j:02d}"] * m
    order = rng.permutation(len(labels))
    return np.array(labels, dtype=np.int64)[order], np.array(subjects)[order]


def test_subjects_are_whole_and_indices_cover_everything() -> None:
    labels, subjects = _slices((23, 17, 11))
    train, val = stratified_group_split(labels, subjects, n_folds=5, fold=2, seed=8, source="x.csv")
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert not set(subjects[train]) & set(subjects[val])
    assert set(subjects[train]) | set(subjects[val]) == set(subjects)


def test_stratification_bound() -> None:
    """Each class's validation share is its total / n_folds within one subject.

    StratifiedGroupKFold places each single-class subject in the fold holding the fewest slices
    of its class (that minimises the spread of the class's per-fold fractions), so the per-fold
    counts of a class never differ by more than the largest subject, G slices; the validation
    fold is then within G of the mean total_k / n_folds. With G-slice subjects only, the same
    argument in subjects gives floor/ceil of n_k / n_folds.
    """
    n_folds = 5
    for seed in range(4):
        labels, subjects = _slices((23, 17, 11), slices=(2, 6), seed=seed)
        for fold in range(n_folds):
            _, val = stratified_group_split(labels, subjects, n_folds, fold, seed)
            for k in range(3):
                total = np.sum(labels == k)
                assert abs(np.sum(labels[val] == k) - total / n_folds) <= 6
    labels, subjects = _slices((23, 17, 11), slices=(4, 4))
    for fold in range(n_folds):
        _, val = stratified_group_split(labels, subjects, n_folds, fold, seed=3)
        for k, n_k in enumerate((23, 17, 11)):
            assert n_k // n_folds <= len(set(subjects[val][labels[val] == k])) <= -(-n_k // n_folds)


def test_deterministic_folds_disjoint_and_covering() -> None:
    labels, subjects = _slices((12, 9))
    a = stratified_group_split(labels, subjects, 4, 1, seed=11)
    b = stratified_group_split(labels, subjects, 4, 1, seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(stratified_group_split(labels, subjects, 4, 1, seed=12)[1], a[1])
    vals = [stratified_group_split(labels, subjects, 4, f, seed=11)[1] for f in range(4)]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(len(labels)))  # disjoint and covering


def test_pacgan_keeps_the_last_fold() -> None:
    """PACGAN's main.py loops over StratifiedGroupKFold(5, shuffle, random_state=8) and keeps the last split."""
    labels, subjects = _slices((14, 12))
    for _train, last_val in StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=8).split(labels, labels, subjects):
        pass
    _, val = stratified_group_split(labels, subjects, n_folds=5, fold=4, seed=8)
    np.testing.assert_array_equal(val, np.sort(last_val))


def test_errors_name_the_source() -> None:
    labels, subjects = _slices((3, 2))
    with pytest.raises(DataError, match=r"lab\.csv: 5 subject\(s\) for 6 folds"):
        stratified_group_split(labels, subjects, 6, 0, 0, source="lab.csv")
    with pytest.raises(DataError, match=r"lab\.csv: class 1 has 2 subject\(s\), fewer than the 3 folds"):
        stratified_group_split(labels, subjects, 3, 0, 0, source="lab.csv")
    with pytest.raises(ConfigError, match=r"fold=3: expected 0\.\.2"):
        stratified_group_split(labels, subjects, 3, 3, 0)
    with pytest.raises(ConfigError, match="fold=-1"):
        stratified_group_split(labels, subjects, 3, -1, 0)
    with pytest.raises(ConfigError, match="n_folds=1"):
        stratified_group_split(labels, subjects, 1, 0, 0)
    with pytest.raises(DataError, match="one label and one subject per slice"):
        stratified_group_split(labels, subjects[:-1], 2, 0, 0)
    with pytest.raises(DataError, match="expected integer classes"):
        stratified_group_split(labels.astype(float), subjects, 2, 0, 0)


def test_overlap_check_names_the_subject() -> None:
    check_no_subject_overlap({"train": np.array(["a", "b"]), "validation": np.array(["c"]), "test": np.array(["d", "d"])}, "s.csv")
    with pytest.raises(DataError, match=r"s\.csv: subject 'b' is in both the 'train' and the 'test' set \(2 shared"):
        check_no_subject_overlap({"train": np.array(["a", "b", "c"]), "validation": np.array(["x"]), "test": np.array(["c", "b"])}, "s.csv")


def test_a_subject_with_two_classes_is_warned_about_and_kept_whole() -> None:
    import warnings

    labels, subjects = _slices((10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consistent labels: no warning
        stratified_group_split(labels, subjects, n_folds=5, fold=0, seed=8, source="x.csv")
    first = np.flatnonzero(subjects == "c0-s03")[0]
    labels[first] = 1  # one slice of a class-0 subject relabelled
    with pytest.warns(UserWarning, match=r"x\.csv: subject 'c0-s03' has slices of classes \[0, 1\] \(1 subject"):
        train, val = stratified_group_split(labels, subjects, n_folds=5, fold=0, seed=8, source="x.csv")
    assert not (set(subjects[train]) & set(subjects[val]))
