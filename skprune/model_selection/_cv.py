"""Cross-validated sparsity at the cost of about one fit per fold: :class:`PrunedNetCV`.

Like scikit-learn's ``LassoCV`` walks a warm-started regularization path,
``PrunedNetCV`` walks a *sparsity path* in each fold: the network is
trained densely once, then pruned to each sparsity in increasing order with
a short fine-tune between levels (masks only grow, so each level starts
from the previous one), and the held-out fold is scored at every level.
Cross-validation itself (splitters, scorers, parallelism, cloning) is
scikit-learn's.
"""

from __future__ import annotations

import numbers
import time
import warnings
from copy import deepcopy

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags, indexable
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from .._doc_link import DocLinkMixin
from .._unwrap import final_pruned_net
from ..pruners._protocol import is_pruner, missing_hooks
from ._batched import BatchedFallback, fit_and_score_batched, sequential_reason
from ._path import fit_and_score_path, run_path
from ._rules import best_score_index, one_standard_error_index, standard_error

__all__ = ["PrunedNetCV"]

SELECTIONS = ("best", "1se")
BATCH_FOLDS = ("auto", True, False)


def _check_sparsities(sparsities) -> np.ndarray:
    if isinstance(sparsities, (str, bytes)) or not np.iterable(sparsities):
        raise TypeError(
            f"sparsities must be a sequence of numbers in [0, 1) such as (0.5, 0.8, 0.9), got {sparsities!r}."
        )
    try:
        values = np.asarray(list(sparsities), dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"sparsities must hold numbers in [0, 1), got {sparsities!r}.") from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"sparsities must be a non-empty 1-D sequence, got {sparsities!r}.")
    bad = values[~np.isfinite(values) | (values < 0) | (values >= 1)]
    if bad.size:
        raise ValueError(
            f"sparsities must lie in [0, 1) (the fraction of weights set to zero), got "
            f"{bad.tolist()}; e.g. use 0.95 to keep 5% of the weights."
        )
    if np.any(np.diff(values) <= 0):
        raise ValueError(
            f"sparsities must be strictly increasing: the path prunes further at each level "
            f"and never regrows weights. Got {values.tolist()}; sort them and drop duplicates."
        )
    return values


def _rank(mean_scores: np.ndarray) -> np.ndarray:
    """Rank of each mean score (1 is best), NaN ranked last, as in ``GridSearchCV.cv_results_``."""
    if np.isnan(mean_scores).all():
        return np.ones(len(mean_scores), dtype=np.int32)
    filled = np.where(np.isnan(mean_scores), np.nanmin(mean_scores) - 1, mean_scores)
    return rankdata(-np.round(filled, 12), method="min").astype(np.int32)


def _check_epochs(name: str, value, default: int) -> int:
    if value is None:
        return int(default)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}.")
    return int(value)


def _search_estimator_has(attr):
    def check(self):
        if not self.refit:
            raise AttributeError(
                f"This PrunedNetCV was created with refit=False: {attr} is available only "
                "after refitting on the chosen sparsity; set refit=True."
            )
        getattr(self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator, attr)
        return True

    return check


class PrunedNetCV(DocLinkMixin, MetaEstimatorMixin, BaseEstimator):
    """Choose a pruned network's sparsity by cross-validation along a warm-started path.

    In each fold the network is trained densely once (``dense_epochs``),
    then, for each sparsity in increasing order, pruned one-shot with the
    user's pruner (its ``scope``, ``layers``, ... are kept; its schedule is
    replaced by a single step at the start of the level) and fine-tuned for
    ``finetune_epochs``, continuing from the previous level's weights,
    masks and optimizer state. The held-out fold is scored after every
    level. A fold therefore costs ``dense_epochs`` plus the levels'
    fine-tune epochs, instead of ``n_sparsities * max_epochs`` for
    ``GridSearchCV``. By default the folds' networks are trained together
    as one batched model (``batch_folds``): on a GPU the k folds then cost
    about one fold's time; on a CPU the per-step overhead is shared.

    Parameters
    ----------
    estimator : PrunedNet or Pipeline ending with one
        The network to prune, with a pruner (e.g.
        ``PrunedNetClassifier(pruner=MagnitudePruning())``); the pruner's
        ``sparsity`` and ``schedule`` are set by the path. Cloned, never
        modified.
    sparsities : sequence of float, default=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
        Strictly increasing sparsities in ``[0, 1)`` to evaluate.
    cv : int, cross-validation generator or iterable, default=5
        Splitting strategy, as in ``GridSearchCV`` (an int gives
        ``StratifiedKFold`` for classifiers, ``KFold`` otherwise). At least
        two folds.
    scoring : str, callable or None, default=None
        One scorer (higher is better); ``None`` uses the estimator's
        ``score`` (accuracy for classifiers, R² for regressors).
    selection : {"best", "1se"} or callable, default="best"
        How ``best_sparsity_`` is chosen from ``cv_results_``. ``"best"``: the
        best mean score (ties go to the larger sparsity). ``"1se"``: the
        largest sparsity whose mean score is within one standard error of
        the best mean (see :func:`skprune.one_standard_error_index`). A
        callable gets ``cv_results_`` and returns an index, like
        ``GridSearchCV``'s callable ``refit``.
    dense_epochs : int or None, default=None
        Epochs of the dense fit that starts each path; ``None`` uses the
        estimator's ``max_epochs``.
    finetune_epochs : int or None, default=None
        Epochs at each sparsity (prune, then fine-tune). ``None`` makes the
        budget follow the step: a level that halves the remaining density
        ``h`` times gets ``ceil(h * dense_epochs / 8)`` epochs (at least 1,
        none for a first level of 0;
        e.g. with 20 dense epochs, 0.9 -> 0.95 gets 3 and 0.7 -> 0.8 gets
        2), so large jumps get the fine-tuning they need while the whole
        path over ``(0, 0.5, 0.7, 0.8, 0.9, 0.95)`` costs about 1.7 dense
        fits. This is the knob of the trade-off: more epochs score sparse
        levels closer to what a full gradual ``GridSearchCV`` fit reaches,
        at a proportional cost; ``benchmarks/cv_cost.py`` measures both
        (figures in ``benchmarks/RESULTS.md``). An int gives every level
        that many epochs.
    n_jobs : int or None, default=None
        Folds run in parallel with joblib (``None`` is 1 unless in a
        ``joblib.parallel_config`` context, ``-1`` all processors). More
        than one job runs the folds sequentially, in parallel processes,
        instead of batched (see ``batch_folds``).
    batch_folds : {"auto", True, False}, default="auto"
        Train the k fold networks as one batched model: their parameters
        stacked, one batched forward/backward pass and one optimizer update
        per step for all folds, each fold on its own rows in the order its own
        fit would see them. The scores, fitted sparsities and chosen
        sparsity are those of the sequential path up to float rounding. On
        a GPU this costs about one fold's time instead of k; on a CPU the
        arithmetic stays k times larger and only the per-step overhead is
        shared (``benchmarks/batched_cv.py``). ``"auto"`` batches whenever
        the setup allows it and otherwise runs the folds one after another;
        ``True`` requires batching and raises a ``ValueError`` naming what
        prevents it; ``False`` always runs the folds one after another.
        Batched training needs skprune's ``MLP`` (without dropout) or a
        module without buffers or random operations that
        ``torch.func.vmap`` runs, an element-wise optimizer (Adam, AdamW,
        SGD, RMSprop, ...), a criterion among
        ``CrossEntropyLoss``, ``MSELoss``, ``L1Loss``, ``SmoothL1Loss``,
        ``HuberLoss``, no callbacks, ``train_split=None``, no
        ``class_weight``, ``verbose=0``, ``compile`` other than ``True``,
        dense inputs, ``n_jobs`` of one, and a pruner that neither rewinds weights, adds a loss penalty nor
        records activations (magnitude, random and gradient-based pruners
        qualify). ``batched_`` and ``batched_reason_`` say what ran.
    refit : bool, default=True
        Refit on all the data at the chosen sparsity into
        ``best_estimator_``, with the same path procedure (dense fit, then
        the levels up to and including the chosen one), so the refit model
        is made the way the cross-validated ones were.
    verbose : int, default=0
        Verbosity of joblib's ``Parallel``; from 1, a line says whether the
        folds were batched, and why not.

    Attributes
    ----------
    sparsities_ : ndarray of shape (n_sparsities,)
        The sparsities evaluated.
    scores_path_ : ndarray of shape (n_sparsities, n_folds)
        Held-out score of each fold at each sparsity.
    fitted_sparsity_path_ : ndarray of shape (n_sparsities, n_folds)
        Sparsity measured (exact zeros) on each fold's network at each level.
    cv_results_ : pandas.DataFrame
        One row per sparsity, laid out like ``GridSearchCV.cv_results_``:
        ``param_<...>pruner__sparsity``, ``params``, ``split<k>_test_score``,
        ``mean_test_score``, ``std_test_score``, ``se_test_score``
        (``std(ddof=1) / sqrt(n_folds)``), ``rank_test_score``,
        ``mean_fitted_sparsity``, ``mean_fit_time``/``std_fit_time`` (the
        level's fine-tune only), ``mean_score_time``/``std_score_time``.
    dense_fit_times_ : ndarray of shape (n_folds,)
        Seconds of each fold's dense fit.
    best_index_ : int
        Row of ``cv_results_`` chosen by ``selection``.
    best_sparsity_ : float
        The chosen sparsity level (a value of ``sparsities``). The refit
        network's own ``sparsity_`` is the measured share of zero weights,
        which can differ (other layers, the connectivity floor).
    sparsity_ : float
        Deprecated alias of ``best_sparsity_`` (a ``FutureWarning``; removed
        in the next release): on the estimators ``sparsity_`` is the measured
        share of zero weights, not a chosen level.
    best_score_ : float
        Mean cross-validated score at ``best_sparsity_``.
    best_params_ : dict
        ``{"<...>pruner__sparsity": best_sparsity_}``.
    best_estimator_ : estimator
        Refit on all data at ``best_sparsity_`` (only when ``refit=True``).
    refit_time_ : float
        Seconds spent refitting.
    scorer_ : callable
        The scorer used on held-out folds and by :meth:`score`.
    n_splits_ : int
        Number of folds.
    batched_ : bool
        Whether the folds were trained as one batched model (``batch_folds``).
        With batched folds, ``mean_fit_time`` and ``dense_fit_times_`` split
        the batched training time equally among the folds.
    batched_reason_ : str
        Why the folds ran one after another, or how they were batched.

    See Also
    --------
    OneStandardErrorRule : the ``"1se"`` rule as a ``GridSearchCV`` refit callable.
    skprune.plot_sparsity_path : plot ``cv_results_`` with the chosen point.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import PrunedNetCV, PrunedNetClassifier, MagnitudePruning
    >>> X, y = load_digits(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(), random_state=0)
    >>> search = PrunedNetCV(net, sparsities=[0.5, 0.8, 0.9, 0.95], cv=3,
    ...                      dense_epochs=10, finetune_epochs=2, selection="1se")
    >>> search.fit(X / 16, y).best_sparsity_  # doctest: +SKIP
    0.9
    """

    def __init__(
        self,
        estimator,
        *,
        sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95),
        cv=5,
        scoring=None,
        selection="best",
        dense_epochs=None,
        finetune_epochs=None,
        n_jobs=None,
        batch_folds="auto",
        refit=True,
        verbose=0,
    ):
        self.estimator = estimator
        self.sparsities = sparsities
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.dense_epochs = dense_epochs
        self.finetune_epochs = finetune_epochs
        self.n_jobs = n_jobs
        self.batch_folds = batch_folds
        self.refit = refit
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = deepcopy(sub.classifier_tags)
        tags.regressor_tags = deepcopy(sub.regressor_tags)
        tags.input_tags.sparse = sub.input_tags.sparse
        return tags

    # ------------------------------------------------------------ validation
    def _validate(self):
        net = final_pruned_net(self.estimator, name="PrunedNetCV(estimator=...)", unwrap_search=False)
        pruner = net.pruner
        if pruner is None:
            raise ValueError(
                "PrunedNetCV needs an estimator with a pruner, e.g. "
                "PrunedNetClassifier(pruner=MagnitudePruning()); its pruner is None."
            )
        if not is_pruner(pruner):
            raise TypeError(
                f"PrunedNetCV needs a pruner such as MagnitudePruning(), got {pruner!r}, which lacks "
                f"the pruner hooks {missing_hooks(pruner)}."
            )
        pruner.at_path_level(0.0, at=1.0)  # refuses a pruner that cannot be put on a path
        sparsities = _check_sparsities(self.sparsities)
        if not (self.selection in SELECTIONS or callable(self.selection)):
            raise ValueError(
                f"selection must be one of {SELECTIONS} or a callable taking cv_results_ and "
                f"returning an index, got {self.selection!r}."
            )
        if isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool) and self.cv < 2:
            raise ValueError(
                f"cv={self.cv!r} leaves nothing to cross-validate: use at least 2 folds (e.g. cv=5)."
            )
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ValueError(
                "PrunedNetCV takes a single scoring (a string or a callable), got "
                f"{self.scoring!r}; to record several metrics use GridSearchCV with "
                "refit=OneStandardErrorRule(metric=...)."
            )
        if not (
            self.batch_folds is True
            or self.batch_folds is False
            or (isinstance(self.batch_folds, str) and self.batch_folds == "auto")
        ):
            raise ValueError(f'batch_folds must be "auto", True or False, got {self.batch_folds!r}.')
        dense_epochs = _check_epochs("dense_epochs", self.dense_epochs, net.max_epochs)
        finetune_epochs = None
        if self.finetune_epochs is not None:
            finetune_epochs = _check_epochs("finetune_epochs", self.finetune_epochs, 1)
        return sparsities, dense_epochs, finetune_epochs

    def _sparsity_param(self) -> str:
        """The searched parameter's name: ``[<step>__]pruner__<path parameter>``."""
        net = final_pruned_net(self.estimator, name="PrunedNetCV(estimator=...)", unwrap_search=False)
        name = f"pruner__{net.pruner.path_parameter}"
        if isinstance(self.estimator, Pipeline):
            return f"{self.estimator.steps[-1][0]}__{name}"
        return name

    # --------------------------------------------------------------- fitting
    def fit(self, X, y=None, groups=None):
        """Cross-validate the sparsity path, choose a sparsity and refit.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
            Training data (anything the estimator accepts and
            ``sklearn.utils._safe_indexing`` can split).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware splitters such as ``GroupKFold``.

        Returns
        -------
        self
        """
        sparsities, dense_epochs, finetune_epochs = self._validate()
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        if len(splits) < 2:
            raise ValueError(
                f"cv={self.cv!r} yields {len(splits)} split; PrunedNetCV needs at least 2 folds "
                "to estimate a score and its standard error."
            )
        scorer = check_scoring(self.estimator, scoring=self.scoring)

        folds, reason = None, "batch_folds=False" if self.batch_folds is False else None
        if reason is None:
            reason = sequential_reason(self.estimator, self.n_jobs)
            if reason is not None and self.batch_folds is True:
                raise ValueError(self._refusal(reason))
        if reason is None:
            try:
                folds = fit_and_score_batched(
                    self.estimator, X, y, splits, scorer, sparsities, dense_epochs, finetune_epochs
                )
            except BatchedFallback as fallback:
                reason = str(fallback)
                if self.batch_folds is True and not fallback.diagnose:
                    raise ValueError(self._refusal(reason)) from None
        if folds is None:
            parallel = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)
            folds = parallel(
                delayed(fit_and_score_path)(
                    clone(self.estimator),
                    X,
                    y,
                    train,
                    test,
                    scorer,
                    sparsities,
                    dense_epochs,
                    finetune_epochs,
                )
                for train, test in splits
            )
        batched = reason is None
        reason = f"{len(splits)} folds trained as one batched model" if batched else reason
        if self.verbose:
            how = reason if batched else f"folds trained one after another: {reason}"
            print(f"PrunedNetCV: {how}.")

        # everything is computed first and set at the end: a selection or a refit that fails (or is
        # interrupted) leaves a fitted search as it was, not half old and half new
        fitted = {
            "sparsities_": sparsities,
            "n_splits_": len(splits),
            "scorer_": scorer,
            "scores_path_": np.column_stack([f["score"] for f in folds]),
            "fitted_sparsity_path_": np.column_stack([f["fitted_sparsity"] for f in folds]),
            "dense_fit_times_": np.array([f["dense_fit_time"] for f in folds]),
            "batched_": batched,
            "batched_reason_": reason,
        }
        cv_results = self._make_results(
            folds, sparsities, fitted["scores_path_"], fitted["fitted_sparsity_path_"]
        )
        fitted["cv_results_"] = cv_results

        if callable(self.selection):
            index = self.selection(cv_results)
            if not isinstance(index, numbers.Integral) or not 0 <= index < len(sparsities):
                raise IndexError(
                    f"selection callable must return an index in [0, {len(sparsities)}), got {index!r}."
                )
        elif self.selection == "1se":
            index = one_standard_error_index(cv_results, sparsity=f"param_{self._sparsity_param()}")
        else:
            index = best_score_index(cv_results["mean_test_score"], sparsities)
        fitted["best_index_"] = int(index)
        fitted["best_sparsity_"] = float(sparsities[fitted["best_index_"]])
        fitted["best_score_"] = float(cv_results["mean_test_score"].iloc[fitted["best_index_"]])
        fitted["best_params_"] = {self._sparsity_param(): fitted["best_sparsity_"]}

        if self.refit:
            start = time.perf_counter()
            model = clone(self.estimator)
            run_path(model, X, y, sparsities[: fitted["best_index_"] + 1], dense_epochs, finetune_epochs)
            fitted["refit_time_"] = time.perf_counter() - start
            fitted["best_estimator_"] = model
        for name in ("best_estimator_", "refit_time_"):  # from an earlier fit with refit=True
            self.__dict__.pop(name, None)
        self.__dict__.update(fitted)
        return self

    @staticmethod
    def _refusal(reason: str) -> str:
        return (
            f"batch_folds=True, but the folds cannot be trained as one batched model: {reason}. "
            'Use batch_folds="auto" to run them one after another in that case.'
        )

    def _make_results(self, folds, sparsities, scores, fitted_sparsity) -> pd.DataFrame:
        param = self._sparsity_param()
        results = {
            f"param_{param}": sparsities,
            "params": [{param: float(s)} for s in sparsities],
        }
        for k in range(scores.shape[1]):
            results[f"split{k}_test_score"] = scores[:, k]
        mean = scores.mean(axis=1)
        results["mean_test_score"] = mean
        results["std_test_score"] = scores.std(axis=1)
        results["se_test_score"] = standard_error(scores, axis=1)
        results["rank_test_score"] = _rank(mean)
        results["mean_fitted_sparsity"] = fitted_sparsity.mean(axis=1)
        for key in ("fit_time", "score_time"):
            times = np.column_stack([f[key] for f in folds])
            results[f"mean_{key}"] = times.mean(axis=1)
            results[f"std_{key}"] = times.std(axis=1)
        return pd.DataFrame(results)

    # ------------------------------------------------------------ delegation
    def _check_refitted(self, name):
        check_is_fitted(self, "cv_results_")
        if not self.refit:
            raise AttributeError(f"{name} is not available with refit=False.")

    @available_if(_search_estimator_has("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_``."""
        self._check_refitted("predict")
        return self.best_estimator_.predict(X)

    @available_if(_search_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from ``best_estimator_``."""
        self._check_refitted("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_search_estimator_has("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``."""
        self._check_refitted("transform")
        return self.best_estimator_.transform(X)

    def score(self, X, y=None):
        """Score ``best_estimator_`` on ``(X, y)`` with ``scorer_`` (the cross-validation scorer).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        float
        """
        self._check_refitted("score")
        return self.scorer_(self.best_estimator_, X, y)

    @property
    def sparsity_(self) -> float:
        """Deprecated alias of ``best_sparsity_`` (the chosen level); removed in the next release."""
        if "best_sparsity_" not in self.__dict__:
            if "sparsity_" in self.__dict__:  # a search fitted before the rename
                return self.__dict__["sparsity_"]
            raise AttributeError(f"{type(self).__name__} has no attribute 'sparsity_': call fit first.")
        warnings.warn(
            "PrunedNetCV.sparsity_ was renamed best_sparsity_ (the chosen sparsity level; an estimator's "
            "sparsity_ is the measured share of zero weights); sparsity_ will be removed in the next "
            "release.",
            FutureWarning,
            stacklevel=2,
        )
        return self.__dict__["best_sparsity_"]

    @property
    def classes_(self):
        """Class labels of ``best_estimator_``."""
        self._check_refitted("classes_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen at ``fit`` (from ``best_estimator_``)."""
        self._check_refitted("n_features_in_")
        return self.best_estimator_.n_features_in_
