"""The single place where pruning masks touch weights.

A :class:`MaskStore` maps parameter names (as in ``module.named_parameters()``)
to boolean tensors marking *pruned* entries. The estimator calls
:meth:`MaskStore.apply` after every optimizer step and zeroes the optimizer
state of entries when they are pruned (:meth:`MaskStore.mask_optimizer_state`),
so pruned weights are exactly zero at all times, the forward pass costs
nothing extra, and no hooks or reparametrization are installed on the module
(which keeps ``copy.deepcopy`` and therefore ``sklearn.base.clone`` working).
:meth:`MaskStore.mask_gradients` is available but not called at every step:
with element-wise optimizers it does not change the surviving weights, and
the exact zeros it leaves in Adam's second moment make Adam's square root
several times slower on CPU.

The store holds no reference to the module: it is given one at each call,
which keeps pickling of the estimator free of duplicated modules.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ELEMENTWISE_OPTIMIZERS", "MaskStore", "is_elementwise"]

#: Optimizers whose update of an entry depends only on that entry's gradient
#: and state: masking the weights after each step is then exact, and the
#: state of a pruned entry can be reset entry by entry.
ELEMENTWISE_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.Adamax,
    torch.optim.NAdam,
    torch.optim.RAdam,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    torch.optim.Adadelta,
    torch.optim.ASGD,
    torch.optim.Rprop,
    torch.optim.SparseAdam,
)


def is_elementwise(optimizer) -> bool:
    """Whether ``optimizer`` updates each entry from that entry alone (see ``ELEMENTWISE_OPTIMIZERS``).

    Others (``LBFGS``, whose curvature history mixes all entries, factored
    optimizers, unknown ones) get masked gradients at every step and their
    whole state reset when weights are pruned.
    """
    return isinstance(optimizer, ELEMENTWISE_OPTIMIZERS)


class MaskStore:
    """Boolean masks of pruned weight entries, keyed by parameter name.

    The one place that applies masks: after every optimizer step the
    estimator zeroes the masked entries in place, so pruned weights stay
    exactly zero.

    Examples
    --------
    A fitted estimator's masks are in ``masks_``:

    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=5, random_state=0).fit(X, y)
    >>> sorted(net.masks_.state_dict())
    ['layers.fc0.weight', 'layers.output.weight']
    >>> "layers.fc0.weight" in net.masks_
    True
    """

    def __init__(self):
        self.pruned: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.pruned)

    def __contains__(self, name: str) -> bool:
        return name in self.pruned

    def keep_mask(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """Return the boolean *keep* mask of ``name`` (all True if unpruned)."""
        if name in self.pruned:
            return ~self.pruned[name]
        return torch.ones_like(like, dtype=torch.bool)

    def update(self, keep_masks: dict[str, torch.Tensor]) -> None:
        """Replace masks with new *keep* masks (True = weight survives)."""
        for name, keep in keep_masks.items():
            self.pruned[name] = ~keep.detach().to(dtype=torch.bool)

    def _params(self, module: nn.Module) -> dict[str, nn.Parameter]:
        params = dict(module.named_parameters())
        missing = [name for name in self.pruned if name not in params]
        if missing:
            raise KeyError(
                f"Masks exist for parameters {missing} that the module does not "
                "have; the module was changed after pruning."
            )
        return params

    def bind(self, module: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Return ``(parameter, keep_multiplier)`` pairs for fast repeated use.

        The multiplier is a 0/1 tensor of the parameter's dtype: an in-place
        multiply is several times faster on CPU than ``masked_fill_`` with a
        boolean mask, which matters at every optimizer step.

        The training loop binds once per pruning step instead of looking up
        parameters by name at every optimizer step. Rebind after
        :meth:`update`.
        """
        params = self._params(module)
        pairs = []
        for name, pruned in self.pruned.items():
            param = params[name]
            if pruned.device != param.device:
                pruned = pruned.to(param.device)
                self.pruned[name] = pruned
            pairs.append((param, (~pruned).to(dtype=param.dtype)))
        return pairs

    @staticmethod
    @torch.no_grad()
    def apply_bound(pairs: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
        """Zero pruned entries of bound parameters (see :meth:`bind`), in one foreach multiply."""
        if pairs:
            params, keeps = zip(*pairs)
            torch._foreach_mul_(list(params), list(keeps))

    @staticmethod
    @torch.no_grad()
    def mask_bound_gradients(pairs: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
        """Zero gradients of pruned entries of bound parameters."""
        for param, keep in pairs:
            if param.grad is not None:
                param.grad.mul_(keep)

    def apply(self, module: nn.Module) -> None:
        """Set the pruned entries of the module's weights to exactly zero."""
        if self.pruned:
            self.apply_bound(self.bind(module))

    def mask_gradients(self, module: nn.Module) -> None:
        """Zero the gradients of pruned entries (so optimizers see none)."""
        if self.pruned:
            self.mask_bound_gradients(self.bind(module))

    @torch.no_grad()
    def mask_optimizer_state(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Reset the optimizer state of pruned entries (after a pruning step).

        Element-wise optimizers (:data:`ELEMENTWISE_OPTIMIZERS`: Adam
        moments, momentum, ...) get the state of pruned entries zeroed.
        Without this, momentum accumulated before a pruning step would keep
        pushing a just-pruned weight away from zero until the next mask
        application; with it, pruned entries start fine-tuning from rest.
        Any other optimizer (``LBFGS``, whose curvature history describes
        the unpruned problem) has its whole state cleared.
        """
        if not self.pruned or optimizer is None:
            return
        if not is_elementwise(optimizer):
            optimizer.state.clear()
            return
        params = self._params(module)
        for name, pruned in self.pruned.items():
            state = optimizer.state.get(params[name])
            if not state:
                continue
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == pruned.shape:
                    value.masked_fill_(pruned.to(value.device), 0.0)

    def to(self, device) -> MaskStore:
        """Move all masks to ``device`` in place and return self."""
        self.pruned = {k: v.to(device) for k, v in self.pruned.items()}
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return the pruned masks as a plain dict of tensors."""
        return dict(self.pruned)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load masks produced by :meth:`state_dict`."""
        self.pruned = {k: v.to(dtype=torch.bool) for k, v in state.items()}

    def __repr__(self) -> str:
        total = sum(v.numel() for v in self.pruned.values())
        n_pruned = sum(int(v.sum()) for v in self.pruned.values())
        return f"MaskStore(layers={len(self.pruned)}, pruned={n_pruned}/{total})"
