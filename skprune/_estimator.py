"""scikit-learn estimators that train, prune and fine-tune a PyTorch network.

The estimators own scikit-learn conformance (parameters, validation, fitted
attributes, label encoding) and the skorch training loop. Training-time
pruning is delegated to one engine per fit
(:class:`skprune._training._engine.PruningEngine`), data preparation to
:mod:`skprune._training._prepare`, fitted figures to
:class:`skprune._fitted_figures.FittedFiguresMixin`. They contain no pruning
criterion: that is the pruner's job.
"""

from __future__ import annotations

import contextlib
import copy
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet
from skorch.utils import is_dataset

from ._doc_link import DocLinkMixin
from ._fitted_figures import FittedFiguresMixin
from ._params import ParamsMixin, apply_pending_device, check_continuable, rebuild_stale_components
from ._random import FitRandomness, seed_from_random_state, seeded_valid_split
from ._serializable import register_builtin
from ._training._data import ArrayDataset, BatchIterator, batch_without_weights
from ._training._guards import reapply_masks_after_callbacks
from ._training._hooks import EngineHooksMixin
from ._training._log import TrainingLog
from ._training._predict import fast_predict_proba, predict_rows
from ._training._prepare import module_kwargs, module_to_device, prepare_fit_data, prepare_predict_data
from ._training._snapshot import restored_on_failure
from ._training._step import EpochLoss, TrainingStepMixin, check_compile
from ._training._weights import fit_sample_weight
from ._validation import check_alpha, check_device, check_loop_params
from .deploy._compaction import compact_estimator
from .deploy._shrink import compact_during_fit, removes_units
from .nn._networks import MLP
from .pruners._masks import MaskStore
from .pruners._protocol import is_pruner, missing_hooks

__all__ = ["PrunedNet"]


class PrunedNet(
    ParamsMixin, FittedFiguresMixin, DocLinkMixin, EngineHooksMixin, TrainingStepMixin, NeuralNet
):
    """A skorch ``NeuralNet`` whose pruning strategy is a hyperparameter.

    Fit trains the module with the optimizer while the pruner's schedule
    asks the pruner for masks at the scheduled epochs; pruned weights are
    kept at exactly zero after every optimizer step. Use
    :class:`PrunedNetClassifier` or :class:`PrunedNetRegressor` for the usual
    tasks; this base class trains any module with any criterion.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network. A class is instantiated at ``fit`` with ``module__*``
        parameters; if its ``__init__`` takes ``n_features_in``,
        ``n_outputs`` or ``input_shape`` they are inferred from the data
        (``input_shape`` from image-shaped ``X``). An instance, e.g. a
        network you trained, is deep-copied at every ``fit`` and keeps its
        weights: pruning and fine-tuning start from them, never from a new
        initialization, and the caller's module is never modified (so
        ``warm_start`` is not needed). The copy is moved to ``device`` and
        to float32 (the dtype of the data) wherever the instance lives; an
        instance on the ``meta`` device is refused. Giving ``module__*``
        parameters together with an instance rebuilds it from them, as in
        skorch, which drops its weights.
    criterion : torch loss class, default=torch.nn.MSELoss
        Training loss (``torch.nn.CrossEntropyLoss`` on logits for
        :class:`PrunedNetClassifier`).
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimizer; ``optimizer__*`` parameters are passed on. Adam and AdamW
        get ``fused=True`` unless ``optimizer__fused`` or ``foreach`` is given.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=50
        Training epochs, pruning and fine-tuning included. ``0`` builds the
        network for the data without training it, as in skorch (with
        ``pruner=None`` only).
    batch_size : int, default=64
        Mini-batch size (``-1`` for full batch).
    pruner : pruner or None, default=None
        Pruning strategy such as ``MagnitudePruning(sparsity=0.9)``; ``None``
        trains a dense network. Its parameters are reachable as
        ``pruner__<name>`` (e.g. in ``GridSearchCV``). ``fit`` works on a
        copy, ``pruner_``; the object passed here is never modified.
    compact_during_fit : bool, default=True
        With a pruner that removes whole units or residual blocks
        (``NeuronPruning``, ``ChannelPruning``, ``BlockPruning``, or a
        ``CombinedPruning`` with one of them) whose schedule ends before the
        last epoch, the network is compacted right after the last pruning
        step (as :meth:`compact` does; the optimizer's state is sliced to
        match) and fine-tuning trains the smaller network, which is faster.
        ``module_`` is then the compacted network, with the predictions of
        the masked one compacted at the end (to float rounding). ``False``
        fine-tunes the masked full-size network (call :meth:`compact`
        afterwards). Compaction is skipped, with the reason in
        ``compacted_during_fit_`` and the verbose log, for optimizers whose
        state cannot be sliced entry by entry (e.g. ``LBFGS``) and networks
        compaction cannot follow. ``InputPruning`` never narrows the input.
        Only a fit that builds the network compacts it: a continuing fit
        (``warm_start=True``, ``partial_fit`` after the first) keeps a
        masked network masked (as ``PrunedNetCV``'s warm-started sparsity
        path needs) and fine-tunes a compacted one without pruning it again.
    alpha : float, default=1e-4
        L2 penalty on Linear/Conv weights, scaled as in scikit-learn's
        ``MLPClassifier``: ``0.5 * alpha * ||W||^2 / batch_size``, applied
        to the gradients, so the logged ``train_loss`` (read once per epoch)
        leaves it out; see ``docs/speed.md``.
    random_state : int, RandomState or None, default=None
        Seeds weight initialization, shuffling, dropout and random pruning,
        and the split of ``train_split=ValidSplit(<fraction>)`` when that has
        no ``random_state`` of its own. An int makes ``fit`` reproducible.
    train_split : callable or None, default=None
        skorch's internal validation split (``skorch.dataset.ValidSplit``);
        ``None`` trains on all data.
    verbose : int, default=0
        ``0`` prints nothing; ``1`` prints skorch's per-epoch table, with the
        measured ``sparsity`` as a column; ``2`` adds a progress bar
        (``tqdm.auto``: a widget in Jupyter when ``ipywidgets`` is installed,
        else text). See :class:`~skprune.TrainingLog`.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    compile : "auto", bool or "step", default="auto"
        ``"auto"``: on CUDA the whole training step (batch gather, forward,
        backward, L2, optimizer, masks) is captured as a CUDA graph and
        replayed wherever that is safe (no callback listening to training
        batches, data in memory, a capturable optimizer, no per-step
        statistics to gather), recaptured after pruning steps; the eager
        step everywhere else, and on the CPU. ``False``: always the eager
        step. ``True``: skorch's ``torch.compile`` of the module. ``"step"``:
        the graph as with ``"auto"``, with a warning when it cannot be used;
        on the CPU forward and loss through ``torch.compile``. The last,
        partial batch of an epoch runs eagerly. ``training_step_`` says
        which step a fit used. See ``docs/speed.md``.
    **kwargs
        Other skorch ``NeuralNet`` parameters, and prefixed parameters such
        as ``module__hidden_layer_sizes`` or ``optimizer__weight_decay``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained (and pruned) network.
    pruner_ : pruner or None
        The fitted copy of ``pruner``.
    masks_ : MaskStore
        Masks of pruned entries, by parameter name.
    n_features_in_ : int
        Number of features seen at ``fit`` (``C * H * W`` for images).
    input_shape_ : tuple of int
        ``(C, H, W)`` of the images seen at ``fit``; only set when ``X`` was
        image-shaped, and then ``predict`` wants images of that shape.
    feature_names_in_ : ndarray of str
        Column names seen at ``fit`` (only for DataFrames with string names).
    sparsity_ : float
        Fraction of Linear/Conv weights that are exactly zero.
    layer_sparsity_ : dict
        Sparsity of each Linear/Conv layer, by layer name.
    n_params_, n_nonzero_params_ : int
        All parameters of the module, and those not exactly zero.
    feature_importances_ : ndarray of shape ``(n_features_in_,)``
        Column norms of the first layer's weight, summing to 1; exactly 0
        for input features the network no longer uses (see ``InputPruning``).
    selected_features_ : ndarray of str
        Names of the input features the network still uses.
    compacted_during_fit_ : dict or None
        ``None`` unless the network was compacted during fit (see
        ``compact_during_fit``); else ``{"after_epoch", "n_params_before",
        "n_params_after", "removed_layers"}``, or ``{"after_epoch",
        "skipped"}`` with the reason compaction was skipped. A
        ``partial_fit`` or warm start of a compacted network fine-tunes it
        without pruning again (the pruner's target was reached); a new
        ``fit`` builds the full network again.
    removed_layers_ : dict of str to str
        Layers deleted whole by compaction (residual blocks removed by
        ``BlockPruning``), with the reason; set only when some were.
    n_epochs_completed_ : int
        Epochs the last ``fit``/``partial_fit`` completed.
    stopped_early_ : bool
        Whether it stopped before ``max_epochs`` (``KeyboardInterrupt``, or a
        callback such as ``EarlyStopping``); a warning says so when pruning
        steps were left.
    training_step_ : {"cuda_graph", "eager", "compiled", "compiled_module"}
        The training step the last ``fit``/``partial_fit`` used (see
        ``compile``): ``"cuda_graph"`` when its epochs replayed a captured
        CUDA graph.
    training_step_reason_ : str or None
        Why epochs of that fit ran the eager step (``None`` when none did).

    Examples
    --------
    Any criterion, here a regression loss on a 2-output target:

    >>> import numpy as np
    >>> import torch
    >>> from skprune import MagnitudePruning, PrunedNet
    >>> X = np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32)
    >>> y = np.c_[X.sum(axis=1), X[:, 0]].astype(np.float32)
    >>> net = PrunedNet(criterion=torch.nn.MSELoss, module__n_outputs=2,
    ...                 pruner=MagnitudePruning(0.5), max_epochs=5, random_state=0).fit(X, y)
    >>> net.predict(X).shape
    (100, 2)
    """

    #: shared, read-only default until ``initialize`` (skorch sets these in
    #: ``__init__``; scikit-learn forbids setting non-parameters there).
    initialized_ = False
    history_ = None
    virtual_params_: dict = {}

    _multi_output = True
    _y_numeric = True

    def __init__(
        self,
        module=MLP,
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=50,
        batch_size=64,
        *,
        pruner=None,
        compact_during_fit=True,
        alpha=1e-4,
        random_state=None,
        iterator_train=BatchIterator,
        iterator_valid=BatchIterator,
        dataset=ArrayDataset,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="cpu",
        compile="auto",
        use_caching="auto",
        torch_load_kwargs=None,
        **kwargs,
    ):
        # vars().update, not setattr: skorch registers torch modules assigned
        # as attributes, which must not happen for the `module` parameter.
        explicit = dict(locals())
        for name in ("self", "kwargs", "__class__"):
            explicit.pop(name, None)
        vars(self).update(explicit)
        self._check_deprecated_params(**kwargs)
        for reserved in ("history", "initialized_", "virtual_params_"):
            if reserved in kwargs:
                raise TypeError(f"{reserved!r} cannot be passed to {type(self).__name__}().")
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------ validation
    def _check_params(self) -> None:
        """Validate constructor parameters (called at the start of ``fit``)."""
        if isinstance(self.pruner, type):
            raise TypeError(
                f"pruner must be a pruning strategy instance, got the class "
                f"{self.pruner.__name__}; pass {self.pruner.__name__}(...) instead."
            )
        if self.pruner is not None and not is_pruner(self.pruner):
            raise TypeError(
                f"pruner must be a pruning strategy such as MagnitudePruning(sparsity=0.9) "
                f"or None for a dense network, got {self.pruner!r} of type "
                f"{type(self.pruner).__name__}, which lacks the pruner hooks "
                f"{missing_hooks(self.pruner)}. Derive your class from "
                "skprune.pruners.PrunerProtocol (no-op defaults for every hook) or, for a rule "
                "that scores weights, from skprune.BasePruner."
            )
        if self.pruner is not None:
            self.pruner.check_params()
        if not isinstance(self.compact_during_fit, (bool, np.bool_)):
            raise ValueError(
                f"compact_during_fit must be True (fine-tune the compacted network after the last "
                f"pruning step) or False (keep the masked network), got {self.compact_during_fit!r}."
            )
        check_alpha(self)
        check_device(self.device)
        check_compile(self.compile)
        check_loop_params(self)
        if self.pruner is not None:
            # plan the schedule once here so that an impossible one (e.g. more
            # lottery-ticket rounds than epochs) fails before any state is lost
            self.pruner.get_schedule().steps(self.max_epochs)

    def _encode_y(self, y, *, reset: bool, sample_weight=None, classes=None):
        """Turn validated targets into a tensor; set target attributes on reset (``classes``: unused)."""
        y = np.ascontiguousarray(y, dtype=np.float32)  # torch refuses negative strides (y[::-1])
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        return torch.as_tensor(y)

    def _n_module_outputs(self):
        return getattr(self, "n_outputs_", None)

    def _class_sample_weight(self, y_t):  # classifier: weights from class_weight
        return None

    def check_data(self, X, y=None):
        """Data is validated in ``fit``; nothing left to check here."""

    # ------------------------------------------------------- initialization
    def initialize_module(self):
        """Instantiate the module, inferring its input and output sizes."""
        kwargs = module_kwargs(self)
        module = self.module
        rng = self.__dict__.get("_rng")
        with rng.global_stream() if rng is not None else contextlib.nullcontext():
            if isinstance(module, torch.nn.Module):
                module = type(module)(**kwargs) if kwargs else copy.deepcopy(module)
            else:
                module = module(**kwargs)  # default initialization draws from the global RNG
        self.module_ = module_to_device(module, self.device)
        return self

    def initialize(self):
        """Initialize module, criterion, optimizer, history and masks."""
        super().initialize()
        self.__dict__.pop("_stale_components", None)
        self.masks_ = MaskStore()
        if "masks_" not in self.cuda_dependent_attributes_:
            self.cuda_dependent_attributes_ = self.cuda_dependent_attributes_ + ["masks_"]
        return self

    def get_dataset(self, X, y=None):
        """Wrap converted tensors in an :class:`ArrayDataset` (no per-sample collate)."""
        if is_dataset(X):
            return X
        if self.dataset is ArrayDataset:
            if not isinstance(X, torch.Tensor) and not sp.issparse(X):
                # data as given, from a skorch helper outside fit (e.g. skorch.scoring.loss_scoring):
                # validated and converted as for predict, targets encoded as at fit
                X = prepare_predict_data(self, X)
                if y is not None:
                    y = self._encode_y(y, reset=False).to(self.device)
            weight = self.__dict__.get("_fit_sample_weight") if y is not None else None
            if weight is not None and len(weight) != len(y):
                weight = None
            given = self.__dict__.get("_fit_data")  # (X_t, X, y) of this fit: scorers get X, y
            data = given[1:] if given is not None and X is given[0] else None
            return ArrayDataset(X, y, device=self.device, sample_weight=weight, data=data)
        return super().get_dataset(X, y)

    def get_split_datasets(self, X, y=None, **fit_params):
        """skorch's validation split; an unseeded ``ValidSplit(<fraction>)`` follows the fit's seed."""
        rng = self.__dict__.get("_rng")
        split = seeded_valid_split(self.train_split, None if rng is None else rng.seed)
        if split is self.train_split:
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        return split(dataset, **fit_params) if y is None else split(dataset, y, **fit_params)

    def get_iterator(self, dataset, training=False):
        """Batches by tensor slicing; training batches are shuffled (seeded)."""
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        if not (isinstance(iterator, type) and issubclass(iterator, BatchIterator)):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = max(len(dataset), 1)
        kwargs.setdefault("shuffle", training)
        if training:
            rng = self.__dict__.get("_rng")
            kwargs.setdefault("generator", rng.batches if rng is not None else None)
        return iterator(dataset, **kwargs)

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``; callbacks see a batch's targets without the fit's sample weights."""
        if "batch" in cb_kwargs and self.__dict__.get("_fit_sample_weight") is not None:
            cb_kwargs["batch"] = batch_without_weights(cb_kwargs["batch"])
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end":
            reapply_masks_after_callbacks(self)

    # --------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Validate the data, then train and prune the network.

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)
            Training data. Images are ``(n_samples, C, H, W)`` arrays or
            tensors, channels first (a 3-D array is read as single-channel
            ``(n_samples, H, W)``); they reach the module in that shape,
            except the built-in ``MLP``, which gets them flattened. A 4-D
            array that looks channels-last (last axis 1, 3 or 4, second
            not) is refused with a hint; ``module__input_shape`` overrides
            the guess.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights, as in ``MLPClassifier`` (see
            :mod:`skprune._training._weights`); routed by ``set_fit_request``.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
        """
        self._check_params()
        shape = getattr(X, "shape", None)
        if self.pruner is not None and shape is not None and len(shape) == 2:
            self.pruner.check_n_features(int(shape[1]))
        fresh = not self.warm_start or not self.initialized_
        # a warm start of a net initialized but never fitted (e.g. weights loaded by hand) learns the data
        seen_data = "n_features_in_" in self.__dict__
        if not fresh and seen_data:
            check_continuable(self, "fit with warm_start=True")
        with restored_on_failure(self, fresh=fresh):  # a failed or interrupted refit loses nothing
            apply_pending_device(self, fresh=fresh)
            check_device(self.device)
            reset = fresh or not seen_data
            X_t, y_t = prepare_fit_data(self, X, y, reset=reset, sample_weight=sample_weight)
            with self._training_context():
                self._fit_sample_weight = fit_sample_weight(self, sample_weight, X_t, y_t)
                self._fit_data = (X_t, X, y)
                self._builds_network = fresh
                if fresh:
                    self.initialize()
                    self.__dict__.pop("removed_layers_", None)  # a new, full-size network
                    self.compacted_during_fit_ = None
                else:
                    rebuild_stale_components(self)
                NeuralNet.partial_fit(self, X_t, y_t, _routing_method="fit", **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Continue training (and the pruning schedule) for ``max_epochs``.

        Parameters
        ----------
        X, y : see :meth:`fit`.
        classes : array-like of shape (n_classes,), default=None
            Classifier only (ignored otherwise): every class of the whole
            stream, as in scikit-learn's ``partial_fit``. On the first call
            it sets ``classes_``, so later batches may hold classes the
            first one lacks; without it the classes are those of the first
            ``y``. Later calls refuse a different ``classes``.
        sample_weight : array-like of shape (n_samples,), default=None
            See :meth:`fit`.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
        """
        self._check_params()
        fresh = not self.initialized_
        # a net initialized but never fitted (e.g. weights loaded by hand) learns the data
        seen_data = "n_features_in_" in self.__dict__
        if not fresh and seen_data:
            check_continuable(self, "partial_fit")
        with restored_on_failure(self, fresh=fresh):
            apply_pending_device(self, fresh=fresh)
            check_device(self.device)
            reset = fresh or not seen_data
            X_t, y_t = prepare_fit_data(
                self, X, y, reset=reset, sample_weight=sample_weight, classes=classes
            )
            with self._training_context():
                self._fit_sample_weight = fit_sample_weight(self, sample_weight, X_t, y_t)
                self._fit_data = (X_t, X, y)
                if not fresh:
                    rebuild_stale_components(self)
                self.__dict__.setdefault("compacted_during_fit_", None)
                self._builds_network = fresh
                NeuralNet.partial_fit(self, X_t, y_t, **fit_params)
        return self

    @contextmanager
    def _training_context(self):
        """Give the fit its own random streams (see ``_random.py``); drop engine and streams afterwards."""
        rng = FitRandomness(seed_from_random_state(self.random_state), self.device)
        self._rng = rng
        try:
            with rng.active():
                yield
        finally:
            for attr in ("_rng", "_engine", "_trainer", "_fit_sample_weight", "_fit_data", "_builds_network"):
                self.__dict__.pop(attr, None)

    # ------------------------------------------------------------ prediction
    def forward(self, X, training=False, device="cpu"):
        """Module outputs for validated ``X`` (see skorch ``NeuralNet.forward``)."""
        return super().forward(prepare_predict_data(self, X), training=training, device=device)

    def predict_proba(self, X):
        """Module outputs after the predict non-linearity, as a numpy array."""
        proba = predict_rows(self, X)  # plain float rows of the fitted width: checked, not re-validated
        if proba is not None:
            return proba
        X = prepare_predict_data(self, X)
        proba = fast_predict_proba(self, X)
        return super().predict_proba(X) if proba is None else proba

    def predict(self, X):
        """Predictions for ``X``."""
        return self.predict_proba(X)

    def check_is_fitted(self, attributes=None, *args, **kwargs):
        """skorch's check, without scikit-learn's tag machinery once ``module_`` exists (per call)."""
        if attributes is None and not args and not kwargs and "module_" in self.__dict__:
            return
        super().check_is_fitted(attributes, *args, **kwargs)

    @property
    def _default_callbacks(self):
        # skorch's defaults, with the table (and progress bar) of TrainingLog
        replace = {"print_log": TrainingLog, "train_loss": lambda: EpochLoss("train_loss", on_train=True)}
        return [
            (name, replace[name]() if name in replace else callback)
            for name, callback in super()._default_callbacks
        ]

    # ----------------------------------------------------------- compaction
    def _after_last_pruning_step(self) -> None:
        """Compact the network during fit, after the pruner's last step (``compact_during_fit``)."""
        if not self.compact_during_fit or not removes_units(self.pruner_):
            return
        if not self.__dict__.get("_builds_network", False):
            return  # a continuing fit keeps the network's structure: a masked net stays masked
        after = max(len(self.history) - 1, 0)  # epochs in the history before the one starting now
        info = {"after_epoch": after, **compact_during_fit(self)}
        self.compacted_during_fit_ = info
        if "skipped" in info:
            message = f"Kept the masked network after the last pruning step: {info['skipped']}."
        else:
            self._engine.rebind(self.module_)
            self._restart_trainer()
            before, left = info["n_params_before"], info["n_params_after"]
            blocks = f", {len(info['removed_layers'])} layers of removed blocks deleted" if info[
                "removed_layers"
            ] else ""
            message = (
                f"Compacted the network after epoch {after} (the last pruning step): {before:,} -> "
                f"{left:,} parameters ({left / max(before, 1):.0%}){blocks}; fine-tuning the smaller network."
            )
        if self.verbose:
            print(message)

    def _keeps_structure(self) -> bool:
        """Whether a continuing fit fine-tunes without pruning (the network was compacted during fit)."""
        info = self.__dict__.get("compacted_during_fit_")
        return isinstance(info, dict) and "n_params_after" in info

    def compact(self):
        """Return a fitted copy whose module physically lacks the removed units.

        Units whose whole weight row is zero (as left by ``NeuronPruning``
        or ``ChannelPruning``) are deleted with their BatchNorm entries and
        the next layer's matching inputs; residual blocks whose branch
        outputs zero (as left by ``BlockPruning``) are deleted whole and
        listed in the copy's ``removed_layers_``; predictions are unchanged
        up to float rounding. This estimator is not modified. A network
        already compacted during fit (``compact_during_fit``) is copied as
        it is.

        Returns
        -------
        PrunedNet
            A copy with a smaller ``module_`` (same class); ``masks_`` keeps
            only masks of the remaining unstructured zeros.

        Raises
        ------
        skprune.CompactionError
            If removed units feed an operation that cannot be followed (the
            message names the layer).
        """
        return compact_estimator(self)


register_builtin(PrunedNet)  # load may rebuild it from a file
