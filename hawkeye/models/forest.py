"""A random forest on the per-video clinical summary features (scikit-learn; NaN handled natively).

The second tree baseline beside :mod:`hawkeye.models.gbm`: many deep, decorrelated trees averaged
instead of shallow trees added up, often as good on small tables and less sensitive to its
settings. Output spaces per head and inner-fold tuning: :class:`hawkeye.models.trees.TreeEnsemble`.
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from hawkeye.models.trees import TreeEnsemble


class RandomForest(TreeEnsemble):
    """Random forest: ``fit(features, scores)``, then ``predict(features)``."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        objective: str,
        n_estimators: int,
        min_samples_leaf: int,
        max_features: float,
        max_depth: int | None,
        n_jobs: int | None,
        random_state: int,
        tune: dict[str, list[Any]] | None = None,
        tune_folds: int = 3,
    ) -> None:
        params = dict(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            max_depth=max_depth,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        super().__init__(input_dim, output_dim, objective, params, tune, tune_folds)

    def _regressor(self, params: dict[str, Any]) -> RandomForestRegressor:
        return RandomForestRegressor(**params)

    def _classifier(self, params: dict[str, Any]) -> RandomForestClassifier:
        return RandomForestClassifier(**params)

    @staticmethod
    def _trees_of(estimator: Any) -> int:
        return len(estimator.estimators_)
