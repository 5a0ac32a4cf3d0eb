"""The classifier: label encoding, class probabilities, accuracy on a validation split."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring
from skorch.utils import to_numpy

from ._estimator import PrunedNet
from ._params import with_default_criterion
from ._serializable import register_builtin

__all__ = ["PrunedNetClassifier"]


def _encoded_accuracy(net, X, y):
    """Accuracy of ``argmax(predict_proba)`` against encoded labels (internal validation)."""
    y_pred = net.predict_proba(X).argmax(axis=1)
    return float(np.mean(y_pred == to_numpy(y).ravel()))


def _given_classes(net):
    """The ``classes`` parameter as an array (``None`` when not given or empty); refused if unusable."""
    classes = net.__dict__.get("classes")
    if classes is None:
        return None
    try:
        array = np.asarray(classes)
    except Exception:  # ragged or otherwise not an array of labels
        array = None
    if array is None or array.ndim != 1:
        raise ValueError(f"classes must be a 1-D list of class labels or None, got {classes!r}.")
    if len(array) == 0:
        return None
    if len(np.unique(array)) != len(array):
        raise ValueError(f"classes must not repeat a label, got {list(array)}.")
    if len(array) < 2:
        raise ValueError(f"{type(net).__name__} needs at least 2 classes in classes; got {list(array)}.")
    return array


class PrunedNetClassifier(PrunedNet, NeuralNetClassifier):
    """Neural network classifier with pruning as a hyperparameter.

    Labels of any type (integers, strings, booleans, pandas Categorical)
    are encoded at ``fit``; ``predict`` returns the original labels and
    ``predict_proba`` has one column per entry of ``classes_``. The module
    outputs logits and is trained with cross-entropy.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network; ``n_features_in`` and ``n_outputs`` (number of classes)
        are inferred at ``fit`` when the class accepts them.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Training loss on logits.
    pruner : pruner or None, default=None
        e.g. ``MagnitudePruning(sparsity=0.9)``; ``None`` for a dense net.
    alpha : float, default=1e-4
        L2 penalty strength, as in ``MLPClassifier``.
    random_state : int, RandomState or None, default=None
        Seeds initialization, shuffling, dropout, random pruning and a
        ``ValidSplit(<fraction>)`` without its own ``random_state``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's
        classifiers: ``{label: weight}``, or ``"balanced"`` for
        ``n_samples / (n_classes * np.bincount(y))`` (computed on the ``y``
        of each ``fit``/``partial_fit`` call). Multiplied with
        ``sample_weight`` when both are given.
    classes : array-like of shape (n_classes,) or None, default=None
        skorch's parameter: the class labels, in the order of the module's
        outputs. ``None`` (or an empty list) takes them from the ``y`` of
        ``fit``, sorted. Given, ``classes_`` is known before ``fit`` (e.g.
        after ``initialize()`` and ``load_params``), ``y`` may lack some of
        them and a label outside them is refused.
    **kwargs
        See :class:`PrunedNet` for every other parameter.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen at ``fit``, sorted.
    sparsity_, layer_sparsity_, n_params_, n_nonzero_params_, pruner_, masks_, compacted_during_fit_
        See :class:`PrunedNet`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import PrunedNetClassifier, MagnitudePruning
    >>> X, y = load_digits(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.9),
    ...                           max_epochs=20, random_state=0).fit(X / 16, y)
    >>> round(net.sparsity_, 2)
    0.9
    """

    _multi_output = False
    _y_numeric = False

    __init__ = with_default_criterion(PrunedNet, torch.nn.CrossEntropyLoss, class_weight=None, classes=None)

    def _check_params(self) -> None:
        super()._check_params()
        criterion = self.criterion
        binary_losses = (torch.nn.BCEWithLogitsLoss, torch.nn.BCELoss)
        if isinstance(criterion, type) and issubclass(criterion, binary_losses):
            raise ValueError(
                f"{type(self).__name__} trains one output per class on integer labels, which "
                f"{criterion.__name__} cannot read (it wants one float target per output). Keep the default "
                "criterion=torch.nn.CrossEntropyLoss: for two classes it is the same loss (the softmax of "
                "two logits is the sigmoid of their difference). For several labels per sample, use "
                "sklearn.multioutput.MultiOutputClassifier."
            )
        _given_classes(self)  # validates ``classes``
        class_weight = self.class_weight
        if not (class_weight is None or class_weight == "balanced" or isinstance(class_weight, dict)):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}."
            )
        if isinstance(class_weight, dict):
            bad = {
                label: weight
                for label, weight in class_weight.items()
                if not (
                    isinstance(weight, numbers.Real)
                    and not isinstance(weight, (bool, np.bool_))
                    and np.isfinite(weight)
                    and weight >= 0
                )
            }
            if bad:
                raise ValueError(f"class_weight weights must be finite numbers >= 0, got {bad}.")

    def _class_sample_weight(self, y_t):
        """Per-sample weights of ``class_weight`` for encoded labels ``y_t`` (``None`` without it)."""
        if self.class_weight is None:
            return None
        labels = self.classes_[y_t.cpu().numpy()]
        class_weight = self.class_weight
        if isinstance(class_weight, dict):
            unknown = [label for label in class_weight if label not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown} that are not among the classes of y "
                    f"{list(self.classes_)}."
                )
            # classes missing from the dict weigh 1, as in scikit-learn
            class_weight = {label: class_weight.get(label, 1.0) for label in np.unique(labels)}
        return compute_sample_weight(class_weight, labels)

    @property
    def _default_callbacks(self):
        callbacks = dict(super()._default_callbacks)
        callbacks["valid_acc"] = EpochScoring(_encoded_accuracy, name="valid_acc", lower_is_better=False)
        return list(callbacks.items())

    @property
    def classes_(self):
        """Class labels seen at ``fit`` (or given as ``classes``)."""
        try:
            return self.__dict__["_classes"]
        except KeyError:
            pass
        given = _given_classes(self)
        if given is not None:
            return given
        if self.initialized_:
            raise NotFittedError(
                f"{type(self).__name__} has no classes_: it was initialized, not fitted, so it does not "
                "know which label each output is (load_params restores weights only). Pass "
                "classes=[...] in the order of the outputs, or save and load the fitted estimator "
                "with skprune.save / skprune.load, which keep classes_."
            )
        raise AttributeError(f"{type(self).__name__} has no classes_ before fit.")

    def _encode_y(self, y, *, reset: bool, sample_weight=None, classes=None):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        check_classification_targets(y)
        declared = None if classes is None else np.unique(np.asarray(classes))  # partial_fit's classes
        if declared is not None and not reset and not np.array_equal(declared, np.unique(self.classes_)):
            raise ValueError(
                f"classes={list(declared)} is not the same as the classes the network was fitted on, "
                f"{list(self.classes_)}. The fitted model is unchanged."
            )
        given = _given_classes(self)
        if declared is None and given is not None:
            declared = given
        if reset:
            found = declared if declared is not None else LabelEncoder().fit(y).classes_
            if len(found) < 2:
                where = "in classes" if declared is not None else "in y"
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes {where}; "
                    f"got only one class: {found[0]!r}."
                )
            self.__dict__["_classes"] = found
            self.n_outputs_ = 1
        classes = self.classes_
        unknown = ~np.isin(y, classes)
        if unknown.any() and declared is not None:
            raise ValueError(
                f"y contains labels not in classes: {np.unique(y[unknown])[:5]}; classes={list(classes)}."
            )
        if unknown.any():
            raise ValueError(
                f"y contains labels not seen in the first fit: {np.unique(y[unknown])[:5]}. partial_fit "
                f"and fit with warm_start=True continue the fitted network, whose outputs are the classes "
                f"{classes[:10]}; call fit (warm_start=False) to train on other classes. The fitted "
                "model is unchanged."
            )
        order = np.argsort(classes, kind="stable")  # ``classes`` keeps the order it was given in
        return torch.as_tensor(order[np.searchsorted(classes[order], y)], dtype=torch.long)

    def _n_module_outputs(self):
        classes = self.__dict__.get("_classes")
        if classes is None:
            classes = _given_classes(self)
        return None if classes is None else len(classes)

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``.

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            float64 like scikit-learn's classifiers (the network computes in
            float32); each row is rescaled in float64 to sum to 1, as
            scikit-learn's log-loss and calibration checks expect (the float32
            softmax is off by up to a few 1e-8).
        """
        proba = PrunedNet.predict_proba(self, X).astype(np.float64)
        total = proba.sum(axis=1, keepdims=True)
        return np.divide(proba, total, out=proba, where=total > 0)

    def predict(self, X):
        """Predicted class labels (the original label values).

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


register_builtin(PrunedNetClassifier)  # load may rebuild it from a file
