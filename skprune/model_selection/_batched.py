"""Batched cross-validation: the k fold models of :class:`~skprune.PrunedNetCV` trained as one model.

Every fold walks the same sparsity path in lock-step (a dense fit, then one
warm-started fit per level), so the k fold networks can be trained together:
their parameters are stacked along a new leading dimension and every
optimizer step is one batched forward and backward pass over ``[k, batch,
...]`` followed by one optimizer update of all folds. On a GPU, where a
tabular-sized network is launch-bound, k models then cost about one; on a
CPU the arithmetic stays k times larger and only the per-step overhead is
shared.

What makes the result the sequential one (to float rounding):

* each fold is a real estimator, cloned and initialized as the sequential
  fold's clone is (its pipeline's leading steps fitted on the fold, the net
  fitted for 0 epochs: same ``random_state``, same initial weights, same
  label encoding or target standardization), and its module's parameters
  are made *views* of the stacked tensors. The pruner, the
  :class:`~skprune._training._engine.PruningEngine` (schedule, masks,
  ``check_paths``, gradient statistics), the scorer and ``sparsity_`` work
  on these real per-fold networks, untouched;
* each fold sees its own training rows in the order its sequential fit
  would: one ``torch.Generator`` per fit seeded as
  :class:`~skprune._random.FitRandomness` seeds it, one ``randperm`` per
  epoch, batches of ``batch_size`` rows (the last one shorter). Folds of
  unequal size are padded; padded rows have weight 0, so each fold's loss is
  the mean over its own rows, and a fold without a batch at a step is not
  updated at all;
* the L2 term ``alpha * W / n`` (``n``: the fold's batch size) is added to
  each fold's gradient, one optimizer of the estimator's class and
  arguments (fused Adam by default) updates every fold's parameters (the
  optimizers allowed are element-wise, so one over all folds is k separate
  ones; a fold without a batch at a step has no gradient and is skipped),
  the masks are applied by one multiply with the stacked keep masks after
  every step, and the engines reset the optimizer state of newly pruned
  entries: the sequential training step, per fold.

What cannot be stacked falls back to the sequential path;
:func:`sequential_reason` says why, before anything is fitted, and
:class:`BatchedFallback` carries a reason found once the fold networks
exist (a module the batched forward does not reproduce, a pruner that adds
a loss penalty or records activations, sparse inputs, a diverging loss,
...).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from torch import nn

from .._classifier import PrunedNetClassifier
from .._estimator import PrunedNet
from .._random import seed_from_random_state
from .._regressor import PrunedNetRegressor
from .._training._data import ArrayDataset, BatchIterator
from .._training._engine import PruningEngine, run_sensitivity_pass
from .._training._guards import DIVERGENCE_FACTOR
from .._training._prepare import prepare_fit_data
from .._training._step import N_WARMUP, capture_graph, graphs_step, on_side_stream
from .._unwrap import final_pruned_net
from ..nn._layers import iter_prunable_weights
from ..nn._networks import MLP, ResidualBlock
from ..pruners._base import compute_masks_of_folds
from ..pruners._hook_calls import FitHooks
from ..pruners._masks import ELEMENTWISE_OPTIMIZERS
from ..pruners._protocol import PrunerProtocol
from ._path import _path_pruner, _user_pruner_at, level_epochs

__all__ = ["BatchedFallback", "fit_and_score_batched", "sequential_reason"]

#: estimator classes whose training step the batched step reproduces (a subclass may override it)
_ESTIMATORS = (PrunedNet, PrunedNetClassifier, PrunedNetRegressor)
#: losses computed per sample (``reduction="none"``) and averaged per fold
_CRITERIA = (nn.CrossEntropyLoss, nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
#: optimizers updating each entry from its own gradient and state: one over all folds is k separate ones
_OPTIMIZERS = tuple(o for o in ELEMENTWISE_OPTIMIZERS if o is not torch.optim.SparseAdam)
#: layers the stacked forward runs as batched matrix products or element-wise
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.Identity)


class BatchedFallback(Exception):
    """The folds cannot be trained as one batched model; the message says why.

    ``diagnose`` is true when the sequential path should run even if batching
    was required (a diverging loss: the sequential fit says why, or trains).
    """

    def __init__(self, reason: str, *, diagnose: bool = False):
        super().__init__(reason)
        self.diagnose = diagnose


# ----------------------------------------------------------------- eligibility
def sequential_reason(estimator, n_jobs) -> str | None:
    """Why ``estimator``'s folds must run one after another, or ``None`` if they can be batched.

    Only what the parameters tell; what needs the fitted fold networks is
    checked by :func:`fit_and_score_batched` (it raises :class:`BatchedFallback`).
    """
    net = final_pruned_net(estimator)
    if type(net) not in _ESTIMATORS:
        parent = type(net).__mro__[1].__name__
        return f"{type(net).__name__} subclasses {parent} and may change its training step"
    if effective_n_jobs(n_jobs) > 1:
        return f"n_jobs={n_jobs!r} runs the folds in parallel processes"
    callbacks = net.callbacks
    if not (callbacks is None or (isinstance(callbacks, str) and callbacks == "disable") or callbacks == []):
        return "the estimator has callbacks, which each fold's own training loop must call"
    if net.compile is True:
        return "compile=True wraps each fold's module in torch.compile"
    if net.train_split is not None:
        return f"train_split={net.train_split!r} holds out a validation set in every fit"
    if net.verbose:
        return f"verbose={net.verbose!r} prints every fold's epoch table"
    if net.iterator_train is not BatchIterator or net.get_params_for("iterator_train"):
        return "iterator_train is customized"
    if net.dataset is not ArrayDataset:
        return f"dataset={net.dataset!r} is not skprune's in-memory ArrayDataset"
    if getattr(net, "class_weight", None) is not None:
        return "class_weight weighs the samples"
    if not (isinstance(net.optimizer, type) and net.optimizer in _OPTIMIZERS):
        name = getattr(net.optimizer, "__name__", net.optimizer)
        return f"optimizer={name!r} is not an element-wise torch optimizer (Adam, AdamW, SGD, RMSprop, ...)"
    if not (isinstance(net.criterion, type) and issubclass(net.criterion, _CRITERIA)):
        names = ", ".join(c.__name__ for c in _CRITERIA)
        return f"criterion={getattr(net.criterion, '__name__', net.criterion)!r} is not one of {names}"
    if not any(net.criterion.forward is c.forward for c in _CRITERIA):  # its reduction may not be per row
        return f"criterion={net.criterion.__name__!r} overrides forward (the batched loss needs per-row ones)"
    if type(net.pruner).rewind is not PrunerProtocol.rewind:
        return f"{type(net.pruner).__name__} may rewind weights after a pruning step"
    return None


def _check_fold_networks(folds, user_pruner, sparsities) -> None:
    """Raise :class:`BatchedFallback` if what the fitted fold networks show cannot be batched."""
    net = folds[0].net
    module = net.module_
    if any(not isinstance(f.X_t, torch.Tensor) for f in folds):
        raise BatchedFallback("the training data is sparse (densified batch by batch)")
    if any(f.X_t.is_sparse or f.X_t.layout != torch.strided for f in folds):
        raise BatchedFallback("the training data is a sparse tensor")
    if list(module.buffers()):
        raise BatchedFallback(f"{type(module).__name__} has buffers (e.g. BatchNorm running statistics)")
    named = dict(module.named_parameters(remove_duplicate=False))
    if len(named) != len(list(module.parameters())):
        raise BatchedFallback(f"{type(module).__name__} shares a parameter between layers")
    shapes = [[(n, tuple(p.shape)) for n, p in f.net.module_.named_parameters()] for f in folds]
    widths = [tuple(f.X_t.shape[1:]) for f in folds]
    if any(s != shapes[0] for s in shapes[1:]) or any(w != widths[0] for w in widths[1:]):
        raise BatchedFallback(
            "the fold networks differ in shape (a class missing from a fold's training rows, or a "
            "pipeline step keeping a different number of features per fold)"
        )
    if any(p.dtype != torch.float32 for p in module.parameters()):
        raise BatchedFallback("the module has parameters that are not float32")
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:  # the stacked parameters all train, and a pruner skips frozen layers by requires_grad
        raise BatchedFallback(f"the module has frozen parameters (requires_grad=False: {frozen[:3]})")
    groups = net.optimizer_.param_groups
    if len(groups) != 1:
        raise BatchedFallback("the optimizer has several parameter groups")
    criterion = net.criterion_
    if getattr(criterion, "reduction", "mean") != "mean":
        raise BatchedFallback(f"criterion__reduction={criterion.reduction!r} (the batched loss is a mean)")
    if getattr(criterion, "weight", None) is not None:
        raise BatchedFallback("the criterion has class weights")
    if getattr(criterion, "ignore_index", -100) != -100:  # its mean is over the rows not ignored
        ignored = criterion.ignore_index
        raise BatchedFallback(f"criterion__ignore_index={ignored!r} (the batched loss averages every row)")
    for level in (sparsities[0], sparsities[-1]):
        pruner = _path_pruner(user_pruner, level, at=0.0)
        hooks = FitHooks(pruner)
        if hooks.penalty(module=module) is not None:
            raise BatchedFallback(f"{type(pruner).__name__} adds a loss penalty")
        if hooks.requires_activation_statistics(module=module):
            raise BatchedFallback(f"{type(pruner).__name__} records activations")


# --------------------------------------------------------------------- folds
class _Fold:
    """One fold: its estimator (initialized, not trained), its tensors and the seeds of its fits."""

    def __init__(self, estimator, X, y, train, test, n_fits: int):
        start = time.perf_counter()
        self.model = clone(estimator)
        self.net = net = final_pruned_net(self.model)
        X_train, y_train = _safe_indexing(X, train), (None if y is None else _safe_indexing(y, train))
        self.X_test = _safe_indexing(X, test)
        self.y_test = None if y is None else _safe_indexing(y, test)
        model = self.model
        Xt = (
            model[:-1].fit_transform(X_train, y_train)
            if isinstance(model, Pipeline) and len(model) > 1
            else X_train
        )
        # the seed of each fit of the sequential path (dense fit, then each level that trains), drawn as
        # each of those fits draws it from the fold clone's random_state
        state = net.random_state
        if state is None:  # each fit draws a fresh seed from numpy's global generator: draw them here
            state = np.random.RandomState(seed_from_random_state(None))
            net.set_params(random_state=state)
        draws = copy.deepcopy(state) if isinstance(state, np.random.RandomState) else state
        self.seeds = [seed_from_random_state(draws) for _ in range(n_fits)]
        self.user = {"pruner": net.pruner, "max_epochs": net.max_epochs, "warm_start": net.warm_start}
        shape = getattr(Xt, "shape", None)
        if shape is not None and len(shape) == 2:
            net.pruner.check_n_features(int(shape[1]))
        # 0 epochs: validates, encodes the targets, builds the module (initialized from the first seed),
        # the criterion and the optimizer, exactly as the dense fit of the sequential path starts
        net.set_params(pruner=None, max_epochs=0, warm_start=False).fit(Xt, y_train)
        self.X_t, self.y_t = prepare_fit_data(net, Xt, y_train, reset=False)
        self.n = int(self.X_t.shape[0])
        self.setup_time = time.perf_counter() - start
        self.masks = net.masks_

    def finish(self, last_level: float) -> None:
        """Leave the estimator's parameters as the sequential path leaves them."""
        user = self.user
        self.net.set_params(
            pruner=_user_pruner_at(user["pruner"], last_level),
            max_epochs=user["max_epochs"],
            warm_start=user["warm_start"],
        )


def _set_parameter(module: nn.Module, name: str, value: nn.Parameter) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    setattr(owner, attr, value)


# ------------------------------------------------------------ stacked forward
def _stacked_sequential(layers, params: dict, prefix: str, X: torch.Tensor) -> torch.Tensor:
    for name, layer in layers.named_children():
        path = f"{prefix}{name}"
        if isinstance(layer, nn.Linear):
            weight = params[f"{path}.weight"].transpose(1, 2)
            if layer.bias is None:
                X = torch.bmm(X, weight)
            else:
                X = torch.baddbmm(params[f"{path}.bias"].unsqueeze(1), X, weight)
        elif isinstance(layer, ResidualBlock):
            X = X + _stacked_sequential(layer.branch, params, f"{path}.branch.", X)
        elif isinstance(layer, nn.Sequential):
            X = _stacked_sequential(layer, params, f"{path}.", X)
        else:
            X = layer(X)  # element-wise: the same on [k, batch, ...] as on each fold's [batch, ...]
    return X


def _is_plain_sequential(layers) -> bool:
    for layer in layers.children():
        if isinstance(layer, ResidualBlock):
            if not (isinstance(layer.branch, nn.Sequential) and _is_plain_sequential(layer.branch)):
                return False
        elif isinstance(layer, nn.Sequential):
            if not _is_plain_sequential(layer):
                return False
        elif isinstance(layer, nn.Dropout):
            if layer.p > 0:
                return False
        elif not isinstance(layer, (nn.Linear, *_ELEMENTWISE)):
            return False
    return True


def _stacked_forward(module: nn.Module):
    """``forward(params, X)`` of ``k`` stacked copies of ``module`` on ``X`` of shape ``[k, batch, ...]``.

    skprune's MLP (plain or residual, without dropout) runs as batched
    matrix products; any other module through ``torch.func.vmap`` of
    ``functional_call`` (random operations refused).
    """
    layers = getattr(module, "layers", None)
    if type(module) is MLP and isinstance(layers, nn.Sequential):  # a subclass may change forward
        if _is_plain_sequential(layers):
            return lambda params, X: _stacked_sequential(layers, params, "layers.", X.flatten(2))
    if isinstance(module, nn.Sequential) and _is_plain_sequential(module):
        return lambda params, X: _stacked_sequential(module, params, "", X)
    from torch.func import functional_call, vmap

    call = vmap(lambda params, X: functional_call(module, params, (X,)), randomness="error")
    return call


# ---------------------------------------------------------------- training
def _same_optimizer(template: torch.optim.Optimizer, params: list) -> torch.optim.Optimizer:
    """An optimizer of ``template``'s class and arguments over ``params``."""
    accepted = inspect.signature(type(template).__init__).parameters
    kwargs = {key: value for key, value in template.defaults.items() if key in accepted}
    try:
        return type(template)(params, **kwargs)
    except Exception as error:  # noqa: BLE001 - any failure means: not stackable
        raise BatchedFallback(
            f"{type(template).__name__} cannot be rebuilt from its arguments "
            f"({type(error).__name__}: {error})"
        ) from None


class _StackedTraining:
    """The training step of k folds at once: stacked parameters and gradients, one optimizer, masks.

    The folds' parameters are views of the stacked ones and their gradients
    views of the stacked gradients, so one optimizer of the estimator's
    class (built with the same arguments, e.g. fused Adam) over every fold's
    parameters updates each fold as its own optimizer would: these
    optimizers are element-wise, and a fold without a batch at a step has no
    gradient, which the optimizer skips (its step count included). The
    pruning engines reset the state of newly pruned entries in it, as in a
    sequential fit.
    """

    def __init__(self, folds):
        self.folds = folds
        self.K = K = len(folds)
        net = folds[0].net
        self.net = net
        self.device = next(net.module_.parameters()).device
        modules = [f.net.module_ for f in folds]
        self.names = [name for name, _ in modules[0].named_parameters()]
        self.params: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        for name in self.names:
            stacked = torch.stack([dict(m.named_parameters())[name].detach() for m in modules])
            self.params[name] = stacked.requires_grad_(True)
            self.grads[name] = stacked.grad = torch.zeros_like(stacked)
            for k, m in enumerate(modules):  # the fold's parameter is a view of the stacked one
                _set_parameter(m, name, nn.Parameter(stacked.detach()[k]))
        self.views = [[dict(m.named_parameters())[name] for name in self.names] for m in modules]
        self.optimizer = _same_optimizer(net.optimizer_, [p for views in self.views for p in views])
        self.l2_names = [name for name, _, _ in iter_prunable_weights(modules[0])]
        self.alpha = float(net.alpha)
        self.keep: dict[str, torch.Tensor] = {}
        self.forward = _stacked_forward(modules[0])
        criterion = copy.deepcopy(net.criterion_)
        criterion.reduction = "none"
        self.criterion = criterion
        # data: each fold's rows padded to the largest fold
        n_max = max(f.n for f in folds)
        self.X = torch.stack([F.pad(f.X_t, (0, 0) * (f.X_t.dim() - 1) + (0, n_max - f.n)) for f in folds])
        self.y = torch.stack([F.pad(f.y_t, (0, 0) * (f.y_t.dim() - 1) + (0, n_max - f.n)) for f in folds])
        for k, fold in enumerate(folds):  # one copy of the data: each fold's tensors become views
            fold.X_t, fold.y_t = self.X[k, : fold.n], self.y[k, : fold.n]
        self.fold_index = torch.arange(K, device=self.device).unsqueeze(1)
        self._check_forward()
        #: the steady-state step (every fold has a batch, no gradient statistics) as a CUDA graph,
        #: as the estimator's compile="auto" does for one fit (see _training/_step.py)
        self.graphable = (
            self.device.type == "cuda"
            and graphs_step(net.compile)
            and all(
                g.get("capturable", isinstance(self.optimizer, torch.optim.SGD))
                for g in self.optimizer.param_groups
            )
        )
        self.graph = None
        self._n_warm = 0
        self._static = None
        self._static_loss = None
        self.n_graph_steps = 0

    def _check_forward(self) -> None:
        """Refuse a module the stacked forward does not reproduce (compared on each fold's first rows)."""
        rows = min(4, min(f.n for f in self.folds))
        try:
            with torch.no_grad():
                stacked = self.forward(self.params, self.X[:, :rows])
                own = torch.stack([f.net.module_(f.X_t[:rows]) for f in self.folds])
        except Exception as error:  # noqa: BLE001 - any failure means: not stackable
            name = type(self.net.module_).__name__
            if "random operation" in str(error):
                raise BatchedFallback(
                    f"{name} draws random numbers in its forward pass (e.g. dropout)"
                ) from None
            raise BatchedFallback(f"{name} cannot be run batched ({type(error).__name__}: {error})") from None
        if stacked.shape != own.shape or not torch.allclose(stacked, own, rtol=1e-4, atol=1e-5):
            raise BatchedFallback(
                f"the batched forward of {type(self.net.module_).__name__} differs from its own"
            )

    def _link_gradients(self, folds=None) -> None:
        """Make each fold's parameter gradients views of the stacked gradients."""
        for k in range(self.K) if folds is None else folds:
            for name, view in zip(self.names, self.views[k]):
                view.grad = self.grads[name][k]

    # ------------------------------------------------------------- masks
    def update_masks(self) -> None:
        """Stack the folds' keep masks (after a pruning step of any fold) and apply them.

        The stacked masks are updated in place while the same weights stay
        masked, so a captured CUDA graph (which reads them) stays valid
        across the levels of the path; a newly masked weight needs a new
        capture.
        """
        names = sorted({name for f in self.folds for name in f.masks.pruned})
        same_weights = set(names) == set(self.keep)
        with torch.no_grad():
            for name in names:
                param = self.params[name]
                keep = torch.stack(
                    [f.masks.keep_mask(name, param[k]).to(param.device) for k, f in enumerate(self.folds)]
                ).to(param.dtype)
                if same_weights:
                    self.keep[name].copy_(keep)
                else:
                    self.keep[name] = keep
                param.mul_(keep)
        if not same_weights:  # the captured step does not mask these weights: capture it again
            self.graph = None
            self._n_warm = 0

    # ------------------------------------------------------------- an epoch
    def run_epoch(self, generators, engines, first_losses) -> torch.Tensor:
        """Train every fold one epoch; return each fold's mean training loss (host tensor)."""
        K, folds = self.K, self.folds
        batch_size = self.net.batch_size
        sizes = [f.n for f in folds]
        if batch_size == -1:
            B, S = max(sizes), 1
        else:
            B = int(batch_size)
            S = max(-(-n // B) for n in sizes)
        index = torch.zeros(K, S * B, dtype=torch.long)
        for k, (n, generator) in enumerate(zip(sizes, generators)):
            index[k, :n] = torch.randperm(n, generator=generator)  # BatchIterator.epoch_index
        valid = torch.arange(S * B).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
        counts = valid.view(K, S, B).sum(-1)  # rows of each fold's batch at each step
        index = index.view(K, S, B).to(self.device, non_blocking=True)
        weight = valid.view(K, S, B).to(self.device, torch.float32, non_blocking=True)
        counts_dev = counts.to(self.device, torch.float32, non_blocking=True)
        denominators = counts_dev.clamp(min=1.0)
        idle_at = [[k for k, c in enumerate(step) if c == 0] for step in counts.T.tolist()]
        loss_sum = torch.zeros(K, device=self.device)
        observing = [k for k, e in enumerate(engines) if e.observes_gradients]
        self._link_gradients()  # a sensitivity pass (or scoring) may have reset them
        for s in range(S):
            idle = idle_at[s]
            if self.graphable and not idle and not observing and all(v is not None for v in first_losses):
                loss = self._graph_step(index[:, s], weight[:, s], denominators[:, s])
            else:
                loss = self._step(index[:, s], weight[:, s], denominators[:, s], idle, engines, observing)
            loss_sum.addcmul_(loss, counts_dev[:, s])
            if any(v is None for v in first_losses):
                values = loss.tolist()
                for k in range(K):
                    if first_losses[k] is None and k not in idle:
                        first_losses[k] = values[k]
            if observing:
                observing = [k for k in observing if engines[k].observes_gradients]
        return (loss_sum / torch.tensor(sizes, device=self.device, dtype=torch.float32)).cpu()

    def _graph_step(self, index, weight, n) -> torch.Tensor:
        """:meth:`_step` of every fold, replayed from a captured CUDA graph (static inputs copied in).

        ``N_WARMUP`` eager warm-up steps on a side stream (the optimizer's state
        exists then), one capture, then replays; captured again when a weight
        without a mask gets one (:meth:`update_masks`).
        """
        if self._static is None or self._static[0].shape != index.shape:
            self._static = (index.clone(), weight.clone(), n.clone())
            self.graph, self._n_warm = None, 0
        static_index, static_weight, static_n = self._static
        static_index.copy_(index, non_blocking=True)
        static_weight.copy_(weight, non_blocking=True)
        static_n.copy_(n, non_blocking=True)
        if self.graph is None:
            step = functools.partial(self._step, static_index, static_weight, static_n, [], (), [])
            if self._n_warm < N_WARMUP:
                self._n_warm += 1
                return on_side_stream(step)
            self.graph, self._static_loss = capture_graph(step)
        self.graph.replay()
        self.n_graph_steps += 1
        return self._static_loss

    def _step(self, index, weight, n, idle, engines, observing) -> torch.Tensor:
        params, grads = self.params, self.grads
        Xb = self.X[self.fold_index, index]
        yb = self.y[self.fold_index, index]
        out = self.forward(params, Xb)
        K, B = index.shape
        flat_out = out.reshape(K * B, *out.shape[2:])
        flat_y = yb.reshape(K * B, *yb.shape[2:])
        per_sample = self.criterion(flat_out, flat_y).reshape(K, B, -1).mean(dim=2)
        loss = (per_sample * weight).sum(dim=1) / n
        torch._foreach_zero_(list(grads.values()))
        loss.sum().backward()  # accumulates into the stacked gradients (the folds' gradients are views)
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is not grads[name]:  # pragma: no cover - autograd replaced the tensor
                    grads[name].copy_(p.grad)
                    p.grad = grads[name]
            if self.alpha > 0:  # the L2 term alpha * W / n of each fold's batch
                scale = self.alpha / n
                for name in self.l2_names:
                    p = params[name]
                    grads[name].addcmul_(p, scale.view(-1, *([1] * (p.dim() - 1))))
            for k in observing:  # per-fold gradient statistics (Taylor, SNIP)
                if k not in idle:
                    engines[k].observe_gradients()
            for k in idle:  # no batch for this fold at this step: the optimizer skips it
                for view in self.views[k]:
                    view.grad = None
            self.optimizer.step()
            if idle:
                self._link_gradients(idle)
            for name, keep in self.keep.items():
                params[name].mul_(keep)
        return loss.detach()


# -------------------------------------------------------------------- the path
def _fit(training, folds, fit_index: int, level: float, at: float, epochs: int) -> None:
    """One warm-started fit of every fold, as ``run_path`` runs it on each (``epochs`` >= 1)."""
    engines = []
    for fold in folds:
        seed = fold.seeds[fit_index]
        pruner = clone(_path_pruner(fold.user["pruner"], level, at=at))  # the net's pruner_
        engines.append(
            PruningEngine(
                pruner,
                fold.net.module_,
                fold.masks,
                n_epochs=epochs,
                generator=torch.Generator().manual_seed(seed + 1),  # FitRandomness.pruning
                optimizer=training.optimizer,  # resets the state of entries it prunes, as in a sequential fit
                compiled=False,
            )
        )
    generators = [torch.Generator().manual_seed(f.seeds[fit_index]) for f in folds]  # FitRandomness.batches
    first_losses: list = [None] * len(folds)
    try:
        for epoch in range(epochs):
            contexts = []
            for fold, engine in zip(folds, engines):  # each engine's begin_epoch, the folds' steps together
                engine.call_epoch_hook()
                dataset = ArrayDataset(fold.X_t, fold.y_t, device=fold.net.device)
                contexts.append(
                    engine.scheduled_context(
                        lambda n, f=fold, e=engine, d=dataset: run_sensitivity_pass(f.net, e, d, n)
                    )
                )
            if _take_steps(engines, folds, contexts, training.optimizer):
                training.update_masks()
            losses = training.run_epoch(generators, engines, first_losses)
            for k, engine in enumerate(engines):
                engine.end_epoch()
                loss, first = float(losses[k]), first_losses[k]
                if not math.isfinite(loss) or (
                    first is not None and loss > DIVERGENCE_FACTOR * max(first, 0.0)
                ):
                    raise BatchedFallback(
                        f"the training loss of fold {k} reached {loss:.3g} in epoch {epoch + 1}; the "
                        "sequential path runs to diagnose it",
                        diagnose=True,
                    )
        contexts = [e.scheduled_context() if e.at_end else None for e in engines]
        if _take_steps(engines, folds, contexts, training.optimizer):
            training.update_masks()
    except BaseException as error:
        for engine in engines:
            engine.close(error)
        raise
    for engine in engines:
        engine.close()


def _take_steps(engines, folds, contexts, optimizer) -> bool:
    """Take the pruning step of every fold that has one due (``contexts``); whether any was taken.

    When every fold takes one, their masks are computed in one batched pass
    (:func:`~skprune.pruners._base.compute_masks_of_folds`: the same masks as
    each pruner's own ``compute_masks``, for the built-in pruners).
    """
    due = [k for k, context in enumerate(contexts) if context is not None]
    if not due:
        return False
    masks = None
    if len(due) == len(engines) > 1:
        masks = compute_masks_of_folds(
            [e.pruner for e in engines], [f.net.module_ for f in folds], [f.masks for f in folds], contexts
        )
    for k in due:
        engines[k].take_step(contexts[k], optimizer, None if masks is None else masks[k])
    return True


def fit_and_score_batched(
    estimator, X, y, splits, scorer, sparsities, dense_epochs, finetune_epochs
) -> list[dict]:
    """Run the sparsity path of every fold as one batched model; score each test fold at each level.

    Returns the per-fold dicts of :func:`~skprune.model_selection._path.fit_and_score_path`
    (``fit_time`` and the dense fit's time are the batched time divided
    equally among the folds; ``dense_fit_time`` adds each fold's own
    preprocessing and set-up).

    Raises
    ------
    BatchedFallback
        If the fold networks cannot be trained as one batched model.
    """
    budgets = level_epochs(sparsities, dense_epochs, finetune_epochs)
    n_fits = 1 + sum(1 for epochs in budgets if epochs > 0)
    folds = [_Fold(estimator, X, y, train, test, n_fits) for train, test in splits]
    user_pruner = folds[0].user["pruner"]
    _check_fold_networks(folds, user_pruner, sparsities)
    K, n_levels = len(folds), len(sparsities)
    out = [
        {key: np.empty(n_levels) for key in ("score", "fitted_sparsity", "fit_time", "score_time")}
        for _ in folds
    ]
    start = time.perf_counter()
    training = _StackedTraining(folds)
    for fold in folds:
        fold.net.module_.train()
    _fit(training, folds, 0, 0.0, 1.0, dense_epochs)  # the dense fit (the pruner at 0, after the last epoch)
    dense_time = (time.perf_counter() - start) / K
    for k, fold in enumerate(folds):
        out[k]["dense_fit_time"] = fold.setup_time + dense_time
    fit_index = 1
    for i, (sparsity, epochs) in enumerate(zip(sparsities, budgets)):
        start = time.perf_counter()
        if epochs > 0:  # a first level of 0 scores the dense fit as it is
            at = 1.0 / epochs if user_pruner.requires_gradient_statistics and epochs > 1 else 0.0
            for fold in folds:
                fold.net.module_.train()
            _fit(training, folds, fit_index, sparsity, at, epochs)
            fit_index += 1
        fit_time = (time.perf_counter() - start) / K
        for k, fold in enumerate(folds):
            score_start = time.perf_counter()
            out[k]["score"][i] = scorer(fold.model, fold.X_test, fold.y_test)
            out[k]["score_time"][i] = time.perf_counter() - score_start
            out[k]["fit_time"][i] = fit_time
            out[k]["fitted_sparsity"][i] = fold.net.sparsity_
    for fold in folds:
        fold.finish(float(sparsities[-1]))
    return out
