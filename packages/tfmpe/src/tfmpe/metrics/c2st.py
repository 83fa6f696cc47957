"""Classifier two-sample test (C2ST), as sbibm scores posteriors.

A classifier is trained to tell samples of ``p`` from samples of ``q``; its
cross-validated accuracy is 0.5 when the two cannot be told apart and 1.0 when
they are disjoint. As in sbibm (Lueckmann et al. 2021): both sets are
z-scored with the statistics of ``p``, the classifier is scikit-learn's
``MLPClassifier`` with two hidden layers of ``10 * dim`` ReLU units, and the
score is the mean accuracy over 5 stratified folds.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier


def c2st(
    p: np.ndarray,
    q: np.ndarray,
    seed: int = 0,
    folds: int = 5,
    max_iter: int = 1000,
    n_jobs: int | None = None,
) -> float:
    """Cross-validated accuracy of a classifier separating ``p`` from ``q``.

    Parameters
    ----------
    p, q : array
        ``(n, dim)`` samples (equal counts give a 0.5 floor).
    seed : int
    folds : int
    max_iter : int
        Adam iterations of the classifier.
    n_jobs : int, optional
        Folds fitted in parallel (scikit-learn's ``n_jobs``; the score does
        not depend on it).

    Returns
    -------
    float
        Mean accuracy in ``[0, 1]``; 0.5 means indistinguishable.

    Raises
    ------
    ValueError
        For samples of different dimension, fewer than ``folds`` rows, or
        non-finite values.
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.ndim != 2 or q.ndim != 2 or p.shape[1] != q.shape[1]:
        raise ValueError(
            f"p and q must be (n, dim) with the same dim, got {p.shape} and {q.shape}"
        )
    if min(len(p), len(q)) < folds:
        raise ValueError(
            f"need at least {folds} samples of each, got {len(p)}, {len(q)}"
        )
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("p and q must be finite")
    mean, std = p.mean(0), p.std(0)
    std = np.where(std > 0, std, 1.0)
    x = (np.concatenate([p, q]) - mean) / std
    y = np.concatenate([np.zeros(len(p)), np.ones(len(q))])
    width = 10 * p.shape[1]
    classifier = MLPClassifier(
        hidden_layer_sizes=(width, width),
        activation="relu",
        solver="adam",
        max_iter=max_iter,
        random_state=seed,
    )
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(
        np.mean(
            cross_val_score(
                classifier, x, y, cv=split, scoring="accuracy", n_jobs=n_jobs
            )
        )
    )
