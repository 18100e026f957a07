"""Tree ensembles on per-video summary features, predicting into a score head's output space.

:class:`TreeEnsemble` holds what every scikit-learn tree model of the ``tabular`` family shares;
a subclass only says which estimator to build (:mod:`hawkeye.models.gbm`: histogram gradient
boosting; :mod:`hawkeye.models.forest`: a random forest). Both take NaN features natively (a split
sends missing values to the side that fits best), so a feature table imported with missing cells
kept as NaN needs no imputation. The trees predict into the head's output space, so the training
loop scores them with the same ``head.predict`` / ``head.expected`` as the networks:

- ``regression`` head: one regressor on the score; output ``(N, 1)``.
- ``classification`` head: one classifier; output ``(N, K)`` log-probabilities (levels absent
  from the training data get probability ~0).
- ``ordinal`` head: K-1 binary classifiers "score > k" (Frank & Hall 2001, "A simple approach to
  ordinal classification"); output ``(N, K-1)`` logits of those probabilities, the cumulative logits
  CORAL reads.

Tuning (``tune``: hyper-parameter -> candidate values, the grid is their product): ``fit`` picks
the candidate with the lowest ``score_fn`` on inner folds of the data it is given, grouped by
subject (``groups``) and stratified by score like the outer folds (:mod:`hawkeye.folds`), then
refits the winner on all of it. Everything is chosen inside the training side of a fold, so the
held-out part stays unseen.
"""

from __future__ import annotations

import itertools
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Self

import numpy as np

from hawkeye.folds import subject_grouped_folds

OBJECTIVES = ("regression", "classification", "ordinal")
_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before logs/logits

# score_fn(raw outputs (N, output_dim), true scores (N,)) -> a loss, lower is better
ScoreFn = Callable[[np.ndarray, np.ndarray], float]


class TreeEnsemble(ABC):
    """``fit(features, scores)``, then ``predict(features)`` -> raw outputs (module docstring)."""

    def __init__(self, input_dim: int, output_dim: int, objective: str, params: dict[str, Any],
                 tune: dict[str, list[Any]] | None = None, tune_folds: int = 3) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"{type(self).__name__} objective must be one of {OBJECTIVES} (it "
                             f"follows the head), got {objective!r}")
        if objective == "regression" and output_dim != 1:
            raise ValueError(f"tree regression predicts one output, got output_dim={output_dim}")
        tune = dict(tune or {})
        unknown = sorted(set(tune) - set(params))
        if unknown:
            raise ValueError(f"tune names {unknown}, which are not hyper-parameters of "
                             f"{type(self).__name__} ({sorted(params)})")
        if any(not isinstance(v, list | tuple) or not v for v in tune.values()):
            raise ValueError(f"tune maps each hyper-parameter to a non-empty list of values, "
                             f"got {tune}")
        if tune and tune_folds < 2:
            raise ValueError(f"tune_folds must be >= 2, got {tune_folds}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.objective = objective
        self.params = dict(params)
        self.tune = {k: list(v) for k, v in tune.items()}
        self.tune_folds = int(tune_folds)
        # One estimator (regression, classification) or one per threshold (ordinal; None: constant)
        self.estimators: list[Any | None] = []
        # logits of the ordinal thresholds that the training data never splits (all above or below)
        self.constant_logits: dict[int, float] = {}
        self.tuning: list[dict[str, Any]] = []  # per candidate: params and inner-fold score

    @abstractmethod
    def _regressor(self, params: dict[str, Any]) -> Any:
        """An unfitted scikit-learn regressor with these hyper-parameters."""

    @abstractmethod
    def _classifier(self, params: dict[str, Any]) -> Any:
        """An unfitted scikit-learn classifier with these hyper-parameters."""

    @staticmethod
    @abstractmethod
    def _trees_of(estimator: Any) -> int:
        """Number of trees in one fitted estimator."""

    def fit(self, features: np.ndarray, scores: np.ndarray,
            sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None,
            score_fn: ScoreFn | None = None) -> Self:
        """Fit on ``features`` ``(N, input_dim)`` and integer ``scores`` ``(N,)``.

        With a ``tune`` grid, ``groups`` (the subject of each row) and ``score_fn`` are needed to
        choose the hyper-parameters on inner subject-grouped folds first (module docstring).
        """
        features = self._check_features(features)
        scores = np.asarray(scores)
        if scores.shape != (len(features),) or not np.issubdtype(scores.dtype, np.integer):
            raise ValueError(f"scores must be ({len(features)},) integers, got shape "
                             f"{scores.shape} dtype {scores.dtype}")
        n_levels = self.output_dim + (self.objective == "ordinal")  # K for both tree classifiers
        if self.objective != "regression" and (scores.min() < 0 or scores.max() >= n_levels):
            raise ValueError(f"scores must lie in 0..{n_levels - 1}, got "
                             f"{scores.min()}..{scores.max()}")
        params = self.params
        if self.tune:
            if groups is None or score_fn is None:
                raise ValueError("tuning (tune) needs groups (the subject of each row, for "
                                 "subject-grouped inner folds) and score_fn")
            params = self._tuned_params(features, scores, sample_weight, np.asarray(groups),
                                        score_fn)
        self.estimators, self.constant_logits = self._fit_with(params, features, scores,
                                                               sample_weight)
        return self

    def _fit_with(self, params: dict[str, Any], features: np.ndarray, scores: np.ndarray,
                  sample_weight: np.ndarray | None) -> tuple[list[Any | None], dict[int, float]]:
        if self.objective == "regression":
            return [self._regressor(params).fit(features, scores.astype(np.float64),
                                                sample_weight=sample_weight)], {}
        if self.objective == "classification":
            if len(np.unique(scores)) < 2:
                raise ValueError(f"tree classification needs at least 2 levels in the training "
                                 f"scores, got only {np.unique(scores).tolist()}")
            return [self._classifier(params).fit(features, scores,
                                                 sample_weight=sample_weight)], {}
        estimators: list[Any | None] = []
        constants: dict[int, float] = {}
        for k in range(self.output_dim):
            above = (scores > k).astype(np.int64)
            if above.min() == above.max():  # one side empty: a constant, Laplace-smoothed prior
                n_above = above.sum()
                constants[k] = float(np.log((n_above + 0.5) / (len(above) - n_above + 0.5)))
                estimators.append(None)
            else:
                estimators.append(self._classifier(params).fit(features, above,
                                                               sample_weight=sample_weight))
        return estimators, constants

    def _tuned_params(self, features: np.ndarray, scores: np.ndarray,
                      sample_weight: np.ndarray | None, groups: np.ndarray,
                      score_fn: ScoreFn) -> dict[str, Any]:
        """The grid candidate with the lowest ``score_fn`` on out-of-fold inner predictions."""
        with warnings.catch_warnings():
            # a rare level with fewer subjects than inner folds: stratification is best effort
            warnings.filterwarnings("ignore", message="The least populated class",
                                    category=UserWarning)
            inner = subject_grouped_folds(groups, scores, self.tune_folds,
                                          int(self.params.get("random_state", 0)))
        names = list(self.tune)
        self.tuning = []
        for values in itertools.product(*(self.tune[n] for n in names)):
            candidate = {**self.params, **dict(zip(names, values, strict=True))}
            raw = np.empty((len(features), self.output_dim), np.float32)
            for k in range(self.tune_folds):
                train, held = inner != k, inner == k
                weight = None if sample_weight is None else sample_weight[train]
                estimators, constants = self._fit_with(candidate, features[train], scores[train],
                                                       weight)
                raw[held] = self._outputs(estimators, constants, features[held])
            self.tuning.append({"params": dict(zip(names, values, strict=True)),
                                "inner_score": float(score_fn(raw, scores))})
        best = min(self.tuning, key=lambda entry: entry["inner_score"])
        return {**self.params, **best["params"]}

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Raw outputs in the head's output space, ``(N, output_dim)`` float32 (module doc)."""
        features = self._check_features(features)
        if not self.estimators:
            raise ValueError(f"the {type(self).__name__} is not fitted: call fit(features, "
                             f"scores) first")
        return self._outputs(self.estimators, self.constant_logits, features)

    def _outputs(self, estimators: list[Any | None], constants: dict[int, float],
                 features: np.ndarray) -> np.ndarray:
        if self.objective == "regression":
            return estimators[0].predict(features).astype(np.float32)[:, None]
        if self.objective == "classification":
            estimator = estimators[0]
            proba = np.full((len(features), self.output_dim), _EPS)
            proba[:, estimator.classes_] = estimator.predict_proba(features)
            return np.log(np.clip(proba, _EPS, 1.0)).astype(np.float32)
        logits = np.empty((len(features), self.output_dim))
        for k, estimator in enumerate(estimators):
            if estimator is None:
                logits[:, k] = constants[k]
            else:
                p = np.clip(estimator.predict_proba(features)[:, 1], _EPS, 1 - _EPS)
                logits[:, k] = np.log(p / (1 - p))
        return logits.astype(np.float32)

    @property
    def n_trees(self) -> int:
        """Number of fitted trees (the ensemble's size; 0 before ``fit``)."""
        return sum(self._trees_of(e) for e in self.estimators if e is not None)

    def fit_report(self) -> dict[str, Any]:
        """What a fit chose, for metrics.json: the tuned hyper-parameters and every candidate's
        inner-fold score (empty without a ``tune`` grid)."""
        if not self.tuning:
            return {}
        best = min(self.tuning, key=lambda entry: entry["inner_score"])
        return {"tuned_params": best["params"], "tuning": self.tuning}

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise ValueError(f"features must be (N, {self.input_dim}) (the store's summary "
                             f"features), got shape {features.shape}")
        return features
