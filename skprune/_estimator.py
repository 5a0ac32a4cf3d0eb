"""scikit-learn estimators that train, prune and fine-tune a PyTorch network.

The estimators own conformance (validation, fitted attributes, label
encoding) and orchestration (module, masks, training, pruning steps). They
contain no pruning criterion: that is the pruner's job.
"""

from __future__ import annotations

import copy
import inspect
import math
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EpochScoring
from skorch.dataset import unpack_data
from skorch.utils import is_dataset, to_numpy

from ._doc_link import DocLinkMixin
from ._random import seed_from_random_state, seeded_torch
from ._training._data import ArrayDataset, BatchIterator, to_tensor_once
from ._training._history import history_to_frame
from ._training._log import TrainingLog
from ._training._masks import MaskStore
from ._validation import (
    check_alpha,
    check_device,
    is_image_array,
    validate_images_X,
    validate_images_X_y,
    validate_X,
    validate_X_y,
)
from .deploy._compaction import compact_estimator
from .exceptions import TrainingDivergedError
from .nn._inputs import input_column_norms, input_layer
from .nn._layers import iter_prunable_weights
from .nn._networks import MLP, _check_input_shape
from .nn._summary import count_parameters, layer_table
from .pruners._base import PruningContext, is_pruner

__all__ = ["PrunedNet", "PrunedNetClassifier", "PrunedNetRegressor"]

_PRUNER_PREFIX = "pruner__"


def _init_param_names(cls) -> frozenset:
    """Names of the explicit ``__init__`` parameters of an estimator class."""
    cached = cls.__dict__.get("_init_param_names_cache")
    if cached is None:
        signature = inspect.signature(cls.__init__)
        cached = frozenset(
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )
        type.__setattr__(cls, "_init_param_names_cache", cached)
    return cached


class PrunedNet(DocLinkMixin, NeuralNet):
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
        Training loss.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimizer; ``optimizer__*`` parameters are passed on.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=50
        Training epochs, pruning and fine-tuning included.
    batch_size : int, default=64
        Mini-batch size (``-1`` for full batch).
    pruner : pruner or None, default=None
        Pruning strategy such as ``MagnitudePruning(sparsity=0.9)``; ``None``
        trains a dense network. Its parameters are reachable as
        ``pruner__<name>`` (e.g. in ``GridSearchCV``). ``fit`` works on a
        copy, ``pruner_``; the object passed here is never modified.
    alpha : float, default=1e-4
        L2 penalty on Linear/Conv weights, scaled as in scikit-learn's
        ``MLPClassifier``: ``0.5 * alpha * ||W||^2 / batch_size``.
    random_state : int, RandomState or None, default=None
        Seeds weight initialization, shuffling, dropout and random pruning.
        An int makes ``fit`` reproducible.
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
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        **kwargs,
    ):
        # vars().update, not setattr: skorch registers torch modules assigned
        # as attributes, which must not happen for the `module` parameter.
        vars(self).update(
            {
                "module": module,
                "criterion": criterion,
                "optimizer": optimizer,
                "lr": lr,
                "max_epochs": max_epochs,
                "batch_size": batch_size,
                "pruner": pruner,
                "alpha": alpha,
                "random_state": random_state,
                "iterator_train": iterator_train,
                "iterator_valid": iterator_valid,
                "dataset": dataset,
                "train_split": train_split,
                "callbacks": callbacks,
                "predict_nonlinearity": predict_nonlinearity,
                "warm_start": warm_start,
                "verbose": verbose,
                "device": device,
                "compile": compile,
                "use_caching": use_caching,
                "torch_load_kwargs": torch_load_kwargs,
            }
        )
        self._check_deprecated_params(**kwargs)
        for reserved in ("history", "initialized_", "virtual_params_"):
            if reserved in kwargs:
                raise TypeError(f"{reserved!r} cannot be passed to {type(self).__name__}().")
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    # ------------------------------------------------------------ parameters
    def __setattr__(self, name, value):
        # Constructor parameters (``module`` may be a torch module instance)
        # are plain attributes; skorch would register them as components.
        if name in _init_param_names(type(self)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _get_param_names(self):
        explicit = _init_param_names(type(self))
        # prefixed parameters (module__x, optimizer__y, ...) and any other
        # keyword given to __init__/set_params, which skorch validates at
        # initialize with a "did you mean" message
        extra = self.__dict__.get("_params_to_validate", set())
        dynamic = [k for k in self.__dict__ if ("__" in k or k in extra) and not k.endswith("_")]
        return sorted(set(explicit) | set(dynamic))

    def set_params(self, **params):
        """Set parameters; ``pruner__<name>`` is routed to the pruner.

        Stock skorch stores ``pruner__sparsity=0.8`` as a stray attribute and
        never updates the pruner; here it calls ``self.pruner.set_params``.
        """
        pruner_params = {
            key[len(_PRUNER_PREFIX) :]: value
            for key, value in params.items()
            if key.startswith(_PRUNER_PREFIX)
        }
        other = {key: value for key, value in params.items() if not key.startswith(_PRUNER_PREFIX)}
        if "callbacks" in other:
            # a plain value, validated when callbacks are initialized at fit
            # (skorch would initialize them here and raise on a bad value)
            BaseEstimator.set_params(self, callbacks=other.pop("callbacks"))
            if self.initialized_:
                self._initialize_callbacks()
        if other:
            super().set_params(**other)
        if pruner_params:
            if self.pruner is None or not hasattr(self.pruner, "set_params"):
                raise ValueError(
                    f"Cannot set {sorted(_PRUNER_PREFIX + k for k in pruner_params)}: "
                    f"pruner is {self.pruner!r}. Set a pruner first, e.g. "
                    "pruner=MagnitudePruning()."
                )
            self.pruner.set_params(**pruner_params)
        return self

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
                f"{type(self.pruner).__name__}."
            )
        if self.pruner is not None and hasattr(self.pruner, "_validate_params"):
            self.pruner._validate_params()
        check_alpha(self)
        check_device(self.device)
        if not isinstance(self.max_epochs, (int, np.integer)) or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be an integer >= 1, got {self.max_epochs!r}.")
        if not isinstance(self.batch_size, (int, np.integer)) or (
            self.batch_size < 1 and self.batch_size != -1
        ):
            raise ValueError(
                f"batch_size must be a positive integer or -1 (full batch), got {self.batch_size!r}."
            )
        if not (isinstance(self.lr, (int, float, np.floating)) and np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if self.pruner is not None:
            # plan the schedule once here so that an impossible one (e.g. more
            # lottery-ticket rounds than epochs) fails before any state is lost
            self.pruner.get_schedule().steps(self.max_epochs)

    def _encode_y(self, y, *, reset: bool):
        """Turn validated targets into a tensor; set target attributes on reset."""
        y = np.asarray(y, dtype=np.float32)
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        return torch.as_tensor(y)

    _multi_output = True
    _y_numeric = True

    def _prepare_fit_data(self, X, y, *, reset: bool):
        if is_image_array(X):
            X, y = validate_images_X_y(
                self,
                X,
                y,
                self._module_input_shape(),
                reset=reset,
                multi_output=self._multi_output,
                y_numeric=self._y_numeric,
            )
            X = self._images_for_module(X)
        else:
            if not reset and getattr(self, "input_shape_", None) is not None:
                validate_images_X(self, X)  # fitted on images: refuses flat rows with a reshape hint
            X, y = validate_X_y(
                self, X, y, reset=reset, multi_output=self._multi_output, y_numeric=self._y_numeric
            )
            if reset:
                self.__dict__.pop("input_shape_", None)
        y_t = self._encode_y(y, reset=reset)
        X_t = to_tensor_once(X, torch.float32, self.device)
        return X_t, y_t.to(self.device)

    def _prepare_predict_data(self, X):
        if is_dataset(X):
            return X
        self.check_is_fitted()
        if getattr(self, "input_shape_", None) is not None:
            X = self._images_for_module(validate_images_X(self, X))
        else:
            X = validate_X(self, X)
        return to_tensor_once(X, torch.float32, self.device)

    # ------------------------------------------------------------ images
    def _module_input_shape(self):
        """The ``(C, H, W)`` given as ``module__input_shape`` or held by a module instance, else None."""
        shape = self.get_params_for("module").get("input_shape")
        if shape is None and isinstance(self.module, torch.nn.Module):
            shape = getattr(self.module, "input_shape", None)
        return None if shape is None else _check_input_shape(shape, name="module__input_shape")

    def _images_for_module(self, X: np.ndarray) -> np.ndarray:
        """Images stay (N, C, H, W), except for the built-in MLP, which gets them flattened."""
        module_type = self.module if isinstance(self.module, type) else type(self.module)
        if issubclass(module_type, MLP):
            return X.reshape(X.shape[0], -1)
        return X

    def check_data(self, X, y=None):
        """Data is validated in ``fit``; nothing left to check here."""

    # ------------------------------------------------------- initialization
    def _module_kwargs(self) -> dict:
        kwargs = self.get_params_for("module")
        module = self.module
        if isinstance(module, torch.nn.Module):
            return kwargs
        try:
            parameters = inspect.signature(module).parameters
        except (TypeError, ValueError):
            return kwargs
        inferred = {
            "n_features_in": getattr(self, "n_features_in_", None),
            "n_outputs": self._n_module_outputs(),
        }
        image_shape = getattr(self, "input_shape_", None)
        if image_shape is not None and "input_shape" in parameters and "input_shape" not in kwargs:
            kwargs["input_shape"] = tuple(image_shape)  # images seen at fit (e.g. ConvNet)
        for name, value in inferred.items():
            if name in parameters and name not in kwargs:
                if value is None:
                    raise ValueError(
                        f"{type(self).__name__} infers {name} of {getattr(module, '__name__', module)} "
                        "from the training data: call fit(X, y) instead of initialize(), "
                        f"or pass module__{name}=..."
                    )
                kwargs[name] = value
        return kwargs

    def _n_module_outputs(self):
        return getattr(self, "n_outputs_", None)

    def initialize_module(self):
        """Instantiate the module, inferring its input and output sizes."""
        kwargs = self._module_kwargs()
        module = self.module
        if isinstance(module, torch.nn.Module):
            module = type(module)(**kwargs) if kwargs else copy.deepcopy(module)
        else:
            module = module(**kwargs)
        self.module_ = self._module_to_device(module)
        return self

    def _module_to_device(self, module):
        """Move the module (a copy, for an instance) to ``device`` and float32; refuse meta tensors."""
        if any(p.is_meta for p in module.parameters()) or any(b.is_meta for b in module.buffers()):
            raise ValueError(
                f"The module {type(module).__name__} has parameters on the 'meta' device, which hold no "
                "values to train or prune. Materialize it first, e.g. module.to_empty(device='cpu') and "
                "load its weights, or pass the module class."
            )
        floating = [p for p in module.parameters() if p.is_floating_point()]
        if any(p.dtype != torch.float32 for p in floating):
            module = module.to(torch.float32)  # X is always converted to float32
        return module.to(self.device)

    def initialize(self):
        """Initialize module, criterion, optimizer, history and masks."""
        super().initialize()
        self.masks_ = MaskStore()
        if "masks_" not in self.cuda_dependent_attributes_:
            self.cuda_dependent_attributes_ = self.cuda_dependent_attributes_ + ["masks_"]
        return self

    def get_dataset(self, X, y=None):
        """Wrap converted tensors in an :class:`ArrayDataset` (no per-sample collate)."""
        if is_dataset(X):
            return X
        if self.dataset is ArrayDataset:
            return ArrayDataset(X, y, device=self.device)
        return super().get_dataset(X, y)

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
            kwargs.setdefault("generator", getattr(self, "_batch_generator", None))
        return iterator(dataset, **kwargs)

    # --------------------------------------------------------------- fitting
    def fit(self, X, y=None, **fit_params):
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
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
        """
        self._check_params()
        self._check_pruner_n_features(X)
        fresh = not self.warm_start or not self.initialized_
        previous_state = dict(self.__dict__)
        try:
            X_t, y_t = self._prepare_fit_data(X, y, reset=True)
            with self._training_context():
                if fresh:
                    self.initialize()
                NeuralNet.partial_fit(self, X_t, y_t, _routing_method="fit", **fit_params)
        except Exception:
            if fresh:
                # a fresh fit builds new module/optimizer objects, so putting
                # the previous attributes back restores the previous model
                self.__dict__.clear()
                self.__dict__.update(previous_state)
            raise
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training (and the pruning schedule) for ``max_epochs``.

        Parameters
        ----------
        X, y : see :meth:`fit`.
        classes : ignored
            Accepted for scikit-learn compatibility; classes come from ``y``.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
        """
        self._check_params()
        X_t, y_t = self._prepare_fit_data(X, y, reset=not self.initialized_)
        with self._training_context():
            NeuralNet.partial_fit(self, X_t, y_t, **fit_params)
        return self

    @contextmanager
    def _training_context(self):
        """Seed torch for this fit and clean up per-fit helpers afterwards."""
        seed = seed_from_random_state(self.random_state)
        try:
            with seeded_torch(seed, self.device):
                self._batch_generator = torch.Generator().manual_seed(seed)
                self._pruning_generator = torch.Generator().manual_seed(seed + 1)
                yield
        finally:
            for attr in ("_batch_generator", "_pruning_generator", "_pruning_run"):
                self.__dict__.pop(attr, None)

    # --------------------------------------------------------- pruning hooks
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Copy the pruner, check its layer selection and plan the schedule."""
        self.pruner_ = clone(self.pruner) if self.pruner is not None else None
        steps: dict[int, float] = {}
        selected = []
        if self.pruner_ is not None:
            selected = self.pruner_.select_layers(self.module_)  # fails early on a bad selection
            steps = dict(self.pruner_.get_schedule().steps(self.max_epochs))
        self._pruning_run = {
            "epoch": 0,
            "n_epochs": self.max_epochs,
            "steps": steps,
            "step_index": 0,
            "statistics": {},
            "selected": selected,
            "bound": self.masks_.bind(self.module_),
            # looked up once per fit, not at every step
            "l2_weights": [layer.weight for _, _, layer in iter_prunable_weights(self.module_)],
        }
        super().on_train_begin(net, X=X, y=y, **kwargs)

    def _prune_now(self, epoch: int, dataset=None) -> None:
        run = self._pruning_run
        fraction = run["steps"].get(epoch)
        if fraction is None or self.pruner_ is None:
            return
        if self._wants_gradients() and not run["statistics"] and dataset is not None:
            self._sensitivity_pass(dataset, int(getattr(self.pruner_, "sensitivity_batches", 1)))
        context = PruningContext(
            epoch=epoch,
            n_epochs=run["n_epochs"],
            step=run["step_index"],
            target=float(getattr(self.pruner_, "sparsity", 1.0)) * fraction,
            generator=self._pruning_generator,
            statistics=run["statistics"],
        )
        keep = self.pruner_.compute_masks(self.module_, self.masks_, context)
        self.masks_.update(keep)
        run["bound"] = self.masks_.bind(self.module_)
        rewind = getattr(self.pruner_, "rewind", None)
        state = rewind(self.module_, context) if rewind is not None else None
        if state is not None:
            self._load_rewound_state(state)
        self.masks_.apply_bound(run["bound"])
        self.masks_.mask_optimizer_state(self.module_, self.optimizer_)
        run["step_index"] += 1
        run["statistics"] = {}

    def _load_rewound_state(self, state: dict) -> None:
        """Load parameter/buffer values a pruner asked to rewind to; reset the optimizer."""
        current = dict(self.module_.state_dict(keep_vars=True))
        unknown = sorted(set(state) - set(current))
        if unknown:
            raise KeyError(f"{type(self.pruner_).__name__}.rewind returned unknown entries {unknown}.")
        with torch.no_grad():
            for name, value in state.items():
                current[name].copy_(value)
        if self.optimizer_ is not None:
            self.optimizer_.state.clear()  # moments belong to the discarded weights

    def _wants_gradients(self) -> bool:
        pruner = getattr(self, "pruner_", None)
        return pruner is not None and bool(getattr(pruner, "requires_gradient_statistics", False))

    def _gather_gradient_statistics(self) -> None:
        """Accumulate ``|w * grad|`` of the selected weights; show gradients to the pruner."""
        stats = self._pruning_run["statistics"]
        observe = getattr(self.pruner_, "observe", None)
        with torch.no_grad():
            for name, _, layer in self._pruning_run["selected"]:
                grad = layer.weight.grad
                if grad is None:
                    continue
                contribution = (layer.weight * grad).abs()
                if name in stats:
                    stats[name] += contribution
                else:
                    stats[name] = contribution.clone()
                if observe is not None:
                    observe(name, layer.weight.detach(), grad.detach())

    def _sensitivity_pass(self, dataset, n_batches: int) -> None:
        """Gradients on the first ``n_batches`` shuffled training batches, no weight update.

        Fills the statistics for a gradient-based step at which none were
        gathered (pruning at initialization, as SNIP does). Batches are
        shuffled by the pruning generator, so the training order is the same
        as without this pass. The loss is the criterion alone (no penalty).
        """
        iterator = self.get_iterator(dataset, training=True)
        if isinstance(iterator, BatchIterator):
            iterator.generator = self._pruning_generator
        self._set_training(True)
        for index, batch in enumerate(iterator):
            if index >= n_batches:
                break
            Xi, yi = unpack_data(batch)
            self.module_.zero_grad(set_to_none=True)
            loss = self.get_loss(self.infer(Xi), yi, X=Xi, training=False)
            loss.backward()
            self.masks_.mask_bound_gradients(self._pruning_run["bound"])
            self._gather_gradient_statistics()
        self.module_.zero_grad(set_to_none=True)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Run the pruning step scheduled before this epoch, if any."""
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        epoch = self._pruning_run["epoch"]
        hook = getattr(self.pruner_, "on_epoch_begin", None)
        if hook is not None:
            hook(self.module_, epoch)
        self._prune_now(epoch, dataset_train)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Record the measured sparsity of this epoch in the history."""
        self._pruning_run["epoch"] += 1
        self.history.record("sparsity", self._measured_sparsity())
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Run a step scheduled after the last epoch (no fine-tuning after it)."""
        run = getattr(self, "_pruning_run", None)
        if run is not None and run["epoch"] == run["n_epochs"]:
            self._prune_now(run["n_epochs"])
            if len(self.history):
                self.history.record("sparsity", self._measured_sparsity())
        super().on_train_end(net, X=X, y=y, **kwargs)

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=False, **kwargs):
        """Gather the gradient statistics a pruner asked for.

        Gradients of pruned entries are deliberately not zeroed at every
        step: the masks are re-applied to the weights right after each
        optimizer step, so with element-wise optimizers (SGD, momentum, Adam,
        AdamW, RMSprop, ...) surviving weights train exactly as with masked
        gradients, and masking them would keep exact zeros in Adam's second
        moment, whose square root is several times slower on CPU (measured:
        masking gradients made pruned fits about 12% slower).
        """
        run = self._pruning_run
        if self._wants_gradients() and run["step_index"] < len(run["steps"]):
            self._gather_gradient_statistics()

    def train_step(self, batch, **fit_params):
        """One optimizer step, then re-apply masks; stop on a non-finite loss."""
        step = super().train_step(batch, **fit_params)
        self.masks_.apply_bound(self._pruning_run["bound"])
        loss = step["loss"].item()
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"Training diverged: the loss became {loss} at epoch "
                f"{self._pruning_run['epoch'] + 1}. Try a smaller lr (now {self.lr}), "
                "standardize the inputs (e.g. StandardScaler), or lower alpha."
            )
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Criterion plus, when training, the L2 penalty and the pruner's penalty."""
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training:
            return loss
        alpha = float(self.alpha)
        if alpha > 0:
            run = getattr(self, "_pruning_run", None)
            weights = (
                run["l2_weights"]
                if run is not None
                else [layer.weight for _, _, layer in iter_prunable_weights(self.module_)]
            )
            squares = sum(w.pow(2).sum() for w in weights)
            n = y_true.shape[0] if hasattr(y_true, "shape") and len(y_true.shape) else 1
            loss = loss + 0.5 * alpha * squares / n
        pruner = getattr(self, "pruner_", None)
        if pruner is not None:
            extra = pruner.penalty(self.module_)
            if extra is not None:
                loss = loss + extra
        return loss

    # ------------------------------------------------------------ prediction
    def forward(self, X, training=False, device="cpu"):
        """Module outputs for validated ``X`` (see skorch ``NeuralNet.forward``)."""
        return super().forward(self._prepare_predict_data(X), training=training, device=device)

    def predict_proba(self, X):
        """Module outputs after the predict non-linearity, as a numpy array."""
        return super().predict_proba(self._prepare_predict_data(X))

    def predict(self, X):
        """Predictions for ``X``."""
        return self.predict_proba(X)

    # -------------------------------------------------------------- history
    @property
    def _default_callbacks(self):
        # skorch's defaults, with the table (and progress bar) of TrainingLog
        return [
            (name, TrainingLog() if name == "print_log" else callback)
            for name, callback in super()._default_callbacks
        ]

    def history_frame(self) -> pd.DataFrame:
        """Training history as a DataFrame, one row per epoch.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``epoch`` (1-based, continuing across ``partial_fit``
            and warm starts), with the columns skorch records: ``train_loss``,
            ``valid_loss`` and validation scores (e.g. ``valid_acc``) when
            there is a validation split, the measured ``sparsity`` after each
            epoch, other scalar entries (``event_*``) and the epoch's
            duration ``dur`` in seconds. skorch's ``*_best`` flags, batch
            counts and per-batch records are left out. See
            :func:`~skprune.plot_history` for a plot.
        """
        self.check_is_fitted()
        return history_to_frame(self.history)

    # -------------------------------------------------------------- figures
    def _measured_sparsity(self) -> float:
        total = 0
        zeros = 0
        with torch.no_grad():
            for _, _, layer in iter_prunable_weights(self.module_):
                total += layer.weight.numel()
                zeros += layer.weight.numel() - int(torch.count_nonzero(layer.weight))
        return zeros / total if total else 0.0

    @property
    def sparsity_(self) -> float:
        """Fraction of Linear/Conv weights that are exactly zero."""
        self.check_is_fitted()
        return self._measured_sparsity()

    @property
    def layer_sparsity_(self) -> dict:
        """Sparsity of each Linear/Conv layer (exact zeros), by layer name."""
        table = self.pruning_report()
        return dict(zip(table["layer"], table["sparsity"].astype(float)))

    @property
    def n_params_(self) -> int:
        """Number of parameters of the module."""
        self.check_is_fitted()
        return count_parameters(self.module_)[0]

    @property
    def n_nonzero_params_(self) -> int:
        """Number of parameters of the module that are not exactly zero."""
        self.check_is_fitted()
        return count_parameters(self.module_)[1]

    def pruning_report(self) -> pd.DataFrame:
        """Per-layer table counted from the weights (exact zeros).

        Returns
        -------
        pandas.DataFrame
            One row per Linear/Conv layer with columns ``layer``, ``type``,
            ``shape``, ``params``, ``nonzero`` (weights and bias),
            ``weight_params``, ``weight_nonzero``, ``sparsity`` and
            ``pruned`` (whether the layer has a pruning mask).
        """
        self.check_is_fitted()
        table = layer_table(self.module_)
        masked = {name.rsplit(".weight", 1)[0] if name != "weight" else "" for name in self.masks_.pruned}
        table["pruned"] = table["layer"].isin(masked)
        return table

    # ---------------------------------------------------- input features
    def _check_pruner_n_features(self, X) -> None:
        """Let a pruner that counts input features check them before ``fit`` changes anything."""
        check = getattr(self.pruner, "_validate_n_features", None)
        shape = getattr(X, "shape", None)
        if check is not None and shape is not None and len(shape) == 2:
            check(int(shape[1]))

    def _input_column_norms(self) -> np.ndarray:
        self.check_is_fitted()
        try:
            _, layer_name, layer = input_layer(self.module_, owner="feature_importances_")
        except ValueError as exc:
            raise AttributeError(str(exc)) from None
        n_features = getattr(self, "n_features_in_", layer.in_features)
        if layer.in_features != n_features:
            raise AttributeError(
                f"feature_importances_ maps input features to the columns of the first layer "
                f"{layer_name!r}, which takes {layer.in_features} inputs, but the data has "
                f"{n_features} features."
            )
        return input_column_norms(layer).cpu().numpy().astype(np.float64)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Importance of each input feature, from the network's first layer.

        The L2 norm of the feature's column of the first layer's weight,
        normalized to sum to 1: exactly zero for a feature removed by
        :class:`~skprune.InputPruning` (or whose weights are all pruned), so
        :class:`~sklearn.feature_selection.SelectFromModel` works on it.
        Defined when the first Linear/Conv layer is an ``nn.Linear`` taking
        ``n_features_in_`` inputs; ``AttributeError`` otherwise.

        Returns
        -------
        ndarray of shape ``(n_features_in_,)``
        """
        norms = self._input_column_norms()
        total = norms.sum()
        return norms / total if total > 0 else norms

    @property
    def selected_features_(self) -> np.ndarray:
        """Names of the input features the network still uses, in input order.

        The features whose first-layer column is not all zero: after
        :class:`~skprune.InputPruning` these are the selected features.
        Names come from ``feature_names_in_`` (DataFrame columns) or are
        ``x0, x1, ...`` as in scikit-learn's ``get_feature_names_out``.

        Returns
        -------
        ndarray of str objects
        """
        used = self._input_column_norms() > 0
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.array([f"x{i}" for i in range(len(used))], dtype=object)
        return np.asarray(names, dtype=object)[used]

    # ----------------------------------------------------------- compaction
    def compact(self):
        """Return a fitted copy whose module physically lacks the removed units.

        Units whose whole weight row is zero (as left by ``NeuronPruning``
        or ``ChannelPruning``) are deleted with their BatchNorm entries and
        the next layer's matching inputs; predictions are unchanged up to
        float rounding. This estimator is not modified.

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


def _encoded_accuracy(net, X, y):
    """Accuracy of ``argmax(predict_proba)`` against encoded labels (internal validation)."""
    y_pred = net.predict_proba(X).argmax(axis=1)
    return float(np.mean(y_pred == to_numpy(y).ravel()))


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
        Seeds initialization, shuffling, dropout and random pruning.
    **kwargs
        See :class:`PrunedNet` for every other parameter.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen at ``fit``, sorted.
    sparsity_, layer_sparsity_, n_params_, n_nonzero_params_, pruner_, masks_
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

    def __init__(
        self,
        module=MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=50,
        batch_size=64,
        *,
        pruner=None,
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
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        **kwargs,
    ):
        super().__init__(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            pruner=pruner,
            alpha=alpha,
            random_state=random_state,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            train_split=train_split,
            callbacks=callbacks,
            predict_nonlinearity=predict_nonlinearity,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            compile=compile,
            use_caching=use_caching,
            torch_load_kwargs=torch_load_kwargs,
            **kwargs,
        )

    @property
    def _default_callbacks(self):
        callbacks = dict(super()._default_callbacks)
        callbacks["valid_acc"] = EpochScoring(_encoded_accuracy, name="valid_acc", lower_is_better=False)
        return list(callbacks.items())

    @property
    def classes_(self):
        """Class labels seen at ``fit``."""
        try:
            return self.__dict__["_classes"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no classes_ before fit.") from None

    def _encode_y(self, y, *, reset: bool):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        check_classification_targets(y)
        if reset:
            encoder = LabelEncoder().fit(y)
            if len(encoder.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in y; "
                    f"got only one class: {encoder.classes_[0]!r}."
                )
            self.__dict__["_classes"] = encoder.classes_
            self.n_outputs_ = 1
        classes = self.classes_
        unknown = ~np.isin(y, classes)
        if unknown.any():
            raise ValueError(f"y contains labels not seen in the first fit: {np.unique(y[unknown])[:5]}.")
        return torch.as_tensor(np.searchsorted(classes, y), dtype=torch.long)

    def _n_module_outputs(self):
        classes = self.__dict__.get("_classes")
        return None if classes is None else len(classes)

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``.

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return PrunedNet.predict_proba(self, X)

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


class PrunedNetRegressor(PrunedNet, NeuralNetRegressor):
    """Neural network regressor with pruning as a hyperparameter.

    Supports single and multi-output targets; ``predict`` returns shape
    ``(n_samples,)`` for a 1-D ``y`` and ``(n_samples, n_targets)`` otherwise.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network; sizes are inferred at ``fit``.
    criterion : torch loss class, default=torch.nn.MSELoss
        Training loss.
    pruner : pruner or None, default=None
        e.g. ``MagnitudePruning(sparsity=0.9)``; ``None`` for a dense net.
    alpha : float, default=1e-4
        L2 penalty strength, as in ``MLPRegressor``.
    random_state : int, RandomState or None, default=None
        Seeds initialization, shuffling, dropout and random pruning.
    **kwargs
        See :class:`PrunedNet` for every other parameter.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skprune import MagnitudePruning, PrunedNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> net = PrunedNetRegressor(pruner=MagnitudePruning(sparsity=0.8), max_epochs=10,
    ...                          random_state=0).fit(StandardScaler().fit_transform(X), y / y.std())
    >>> round(net.sparsity_, 2)
    0.8
    """

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
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        **kwargs,
    ):
        super().__init__(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            pruner=pruner,
            alpha=alpha,
            random_state=random_state,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            train_split=train_split,
            callbacks=callbacks,
            predict_nonlinearity=predict_nonlinearity,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            compile=compile,
            use_caching=use_caching,
            torch_load_kwargs=torch_load_kwargs,
            **kwargs,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @property
    def predict_proba(self):
        """Regressors have no ``predict_proba``; use :meth:`predict`."""
        raise AttributeError(f"{type(self).__name__} has no predict_proba; use predict.")

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        # float64 like every scikit-learn regressor (the network computes in float32)
        y_pred = PrunedNet.predict_proba(self, X).astype(np.float64)
        if getattr(self, "_y_ndim", 2) == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred
