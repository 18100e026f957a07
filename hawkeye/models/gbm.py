"""Gradient-boosted trees on the per-video clinical summary features: the small non-neural baseline.

scikit-learn's histogram gradient boosting (the LightGBM algorithm, no extra dependency; NaN
features are handled natively). The trees predict into the head's output space, so the training loop
scores them with the same ``head.predict`` / ``head.expected`` as the networks:

- ``regression`` head: one ``HistGradientBoostingRegressor`` on the score; output ``(N, 1)``.
- ``classification`` head: one ``HistGradientBoostingClassifier``; output ``(N, K)``
  log-probabilities (levels absent from the training data get probability ~0).
- ``ordinal`` head: K-1 binary classifiers "score > k" (Frank & Hall 2001, "A simple approach to
  ordinal classification"); output ``(N, K-1)`` logits of those probabilities, the cumulative logits
  CORAL reads.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

OBJECTIVES = ("regression", "classification", "ordinal")
_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before logs/logits


class GradientBoostedTrees:
    """A thin wrapper: ``fit(features, scores)``, then ``predict(features)`` -> raw outputs."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        objective: str,
        learning_rate: float,
        max_iter: int,
        max_leaf_nodes: int,
        min_samples_leaf: int,
        l2_regularization: float,
        early_stopping: bool,
        random_state: int,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(
                f"gbm objective must be one of {OBJECTIVES} (it follows the head), "
                f"got {objective!r}"
            )
        if objective == "regression" and output_dim != 1:
            raise ValueError(f"gbm regression predicts one output, got output_dim={output_dim}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.objective = objective
        self.params: dict[str, Any] = dict(
            learning_rate=learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
            early_stopping=early_stopping,
            random_state=random_state,
        )
        # One estimator (regression, classification) or one per threshold (ordinal; None: constant)
        self.estimators: list[
            HistGradientBoostingRegressor | HistGradientBoostingClassifier | None
        ] = []
        # logits of the ordinal thresholds that the training data never splits (all above or below)
        self.constant_logits: dict[int, float] = {}

    def fit(
        self, features: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Self:
        """Fit on ``features`` ``(N, input_dim)`` and integer ``scores`` ``(N,)``."""
        features = self._check_features(features)
        scores = np.asarray(scores)
        if scores.shape != (len(features),) or not np.issubdtype(scores.dtype, np.integer):
            raise ValueError(
                f"scores must be ({len(features)},) integers, got shape {scores.shape} "
                f"dtype {scores.dtype}"
            )
        n_levels = self.output_dim + (self.objective == "ordinal")  # K for both tree classifiers
        if self.objective != "regression" and (scores.min() < 0 or scores.max() >= n_levels):
            raise ValueError(
                f"scores must lie in 0..{n_levels - 1}, got {scores.min()}..{scores.max()}"
            )
        self.estimators, self.constant_logits = [], {}
        if self.objective == "regression":
            self.estimators = [
                HistGradientBoostingRegressor(**self.params).fit(
                    features, scores.astype(np.float64), sample_weight=sample_weight
                )
            ]
        elif self.objective == "classification":
            if len(np.unique(scores)) < 2:
                raise ValueError(
                    f"gbm classification needs at least 2 levels in the training scores, "
                    f"got only {np.unique(scores).tolist()}"
                )
            self.estimators = [
                HistGradientBoostingClassifier(**self.params).fit(
                    features, scores, sample_weight=sample_weight
                )
            ]
        else:
            for k in range(self.output_dim):
                above = (scores > k).astype(np.int64)
                if above.min() == above.max():  # one side empty: a constant, Laplace-smoothed prior
                    n_above = above.sum()
                    self.constant_logits[k] = float(
                        np.log((n_above + 0.5) / (len(above) - n_above + 0.5))
                    )
                    self.estimators.append(None)
                else:
                    self.estimators.append(
                        HistGradientBoostingClassifier(**self.params).fit(
                            features, above, sample_weight=sample_weight
                        )
                    )
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Raw outputs in the head's output space, ``(N, output_dim)`` float32 (see module doc)."""
        features = self._check_features(features)
        if not self.estimators:
            raise ValueError(
                "the gradient-boosted trees are not fitted: call fit(features, scores) first"
            )
        if self.objective == "regression":
            return self.estimators[0].predict(features).astype(np.float32)[:, None]
        if self.objective == "classification":
            estimator = self.estimators[0]
            proba = np.full((len(features), self.output_dim), _EPS)
            proba[:, estimator.classes_] = estimator.predict_proba(features)
            return np.log(np.clip(proba, _EPS, 1.0)).astype(np.float32)
        logits = np.empty((len(features), self.output_dim))
        for k, estimator in enumerate(self.estimators):
            if estimator is None:
                logits[:, k] = self.constant_logits[k]
            else:
                p = np.clip(estimator.predict_proba(features)[:, 1], _EPS, 1 - _EPS)
                logits[:, k] = np.log(p / (1 - p))
        return logits.astype(np.float32)

    @property
    def n_trees(self) -> int:
        """Number of fitted trees (the ensemble's size; 0 before ``fit``)."""
        return sum(e.n_iter_ * e.n_trees_per_iteration_ for e in self.estimators if e is not None)

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise ValueError(
                f"features must be (N, {self.input_dim}) (the store's summary features), "
                f"got shape {features.shape}"
            )
        return features
