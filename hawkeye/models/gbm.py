"""Gradient-boosted trees on the per-video clinical summary features: the small non-neural baseline.

scikit-learn's histogram gradient boosting (the LightGBM algorithm, no extra dependency; NaN
features are handled natively). How the trees predict into the head's output space (regression,
classification, ordinal "score > k" classifiers) and the optional inner-fold tuning live in
:class:`hawkeye.models.trees.TreeEnsemble`.
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from hawkeye.models.trees import OBJECTIVES, TreeEnsemble

__all__ = ["OBJECTIVES", "GradientBoostedTrees"]


class GradientBoostedTrees(TreeEnsemble):
    """Histogram gradient boosting: ``fit(features, scores)``, then ``predict(features)``."""

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
        max_features: float = 1.0,
        tune: dict[str, list[Any]] | None = None,
        tune_folds: int = 3,
    ) -> None:
        params = dict(
            learning_rate=learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
            max_features=max_features,
            early_stopping=early_stopping,
            random_state=random_state,
        )
        super().__init__(input_dim, output_dim, objective, params, tune, tune_folds)

    def _regressor(self, params: dict[str, Any]) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(**params)

    def _classifier(self, params: dict[str, Any]) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(**params)

    @staticmethod
    def _trees_of(estimator: Any) -> int:
        return estimator.n_iter_ * estimator.n_trees_per_iteration_
