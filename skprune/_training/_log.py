"""The training log: skorch's per-epoch table, with an optional progress bar.

:class:`TrainingLog` is the ``print_log`` callback of every skprune
estimator. Its output follows the estimator's ``verbose``:

- ``verbose=0``: nothing is printed;
- ``verbose=1``: skorch's per-epoch table, with the measured ``sparsity``
  as a column (next to the losses and validation scores);
- on CUDA (or when compiling), a last line names the training step the fit
  used (``training_step_``: a CUDA graph or eager, and why);
- ``verbose=2``: the same table plus a tqdm progress bar over the fit's
  batches, showing the current epoch, loss and sparsity. ``tqdm.auto``
  draws a widget in Jupyter (with ``ipywidgets`` installed; otherwise, and
  in a terminal, a text bar).
"""

from __future__ import annotations

import math
import sys

from skorch.callbacks import PrintLog

__all__ = ["TrainingLog"]

_SPARSITY = "sparsity"


class TrainingLog(PrintLog):
    """skorch's ``PrintLog`` with a sparsity column and a progress bar at ``verbose >= 2``.

    Parameters
    ----------
    keys_ignored : str, list of str or None, default=None
        History keys not to print (``"batches"`` is always ignored).
    sink : callable, default=print
        Where table lines go. With the default ``print`` the table is
        printed only when ``verbose >= 1``; any other sink always receives it.
    tablefmt : str, default="simple"
        ``tabulate`` table format.
    floatfmt : str, default=".4f"
        Format of floating point numbers.
    stralign : str, default="right"
        Alignment of columns.

    Attributes
    ----------
    bar_ : tqdm or None
        The progress bar while a fit runs at ``verbose >= 2``, else ``None``.

    Examples
    --------
    It is the estimator's log; ``verbose=1`` prints its table:

    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=3, verbose=1)
    >>> net.fit(X, y)  # doctest: +SKIP
      epoch    train_loss    sparsity     dur
    -------  ------------  ----------  ------
          1        1.0972      0.0000  0.0100
    ...
    """

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_"; the private run state is no parameter
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def initialize(self):
        super().initialize()
        self.bar_ = None
        self._printed_sparsity = None
        self._batches_per_epoch = None
        self._epoch_in_fit = 0
        return self

    # ---------------------------------------------------------- table
    def _sorted_keys(self, keys):
        """skorch's order (epoch first, dur last), with the sparsity just before the duration."""
        keys = super()._sorted_keys(keys)
        if _SPARSITY in keys:
            keys.remove(_SPARSITY)
            position = keys.index("dur") if "dur" in keys else len(keys)
            keys.insert(position, _SPARSITY)
        return keys

    def _sink(self, text, verbose):
        if self.sink is print and self.bar_ is not None:
            # keeps the text bar intact in a terminal
            self.bar_.write(text, file=sys.stdout)
        else:
            super()._sink(text, verbose)

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        row = net.history[-1]
        self._printed_sparsity = row.get(_SPARSITY)
        if self.bar_ is not None:
            self.bar_.set_postfix(self._postfix(row), refresh=False)
            self._advance_to(self._epoch_in_fit * (self._batches_per_epoch or 1))
            self.bar_.refresh()

    def on_train_end(self, net, **kwargs):
        super().on_train_end(net, **kwargs)
        history = net.history
        if len(history) and self._printed_sparsity is not None:
            final = history[-1].get(_SPARSITY)
            if final is not None and not math.isclose(final, self._printed_sparsity, abs_tol=5e-5):
                # a pruning step scheduled after the last epoch (e.g. OneShot(at=1))
                self._sink(f"pruned after the last epoch: sparsity {final:{self.floatfmt}}", net.verbose)
        line = self._step_line(net)
        if line is not None:
            self._sink(line, net.verbose)
        self._close_bar()

    @staticmethod
    def _step_line(net) -> str | None:
        """The training step the fit used, where ``compile`` made a choice (CUDA, or compiling)."""
        mode = net.__dict__.get("training_step_")
        compile = getattr(net, "compile", False)
        on_cuda = str(getattr(net, "device", "cpu")).startswith("cuda")
        if mode is None or compile is False or not (on_cuda or compile is True or compile == "step"):
            return None
        names = {
            "cuda_graph": "CUDA graph",
            "eager": "eager",
            "compiled": "torch.compile",
            "compiled_module": "torch.compile of the module",
        }
        reason = net.__dict__.get("training_step_reason_")
        return f"training step ({f'compile={compile!r}'}): {names.get(mode, mode)}" + (
            f" ({reason})" if reason else ""
        )

    # ---------------------------------------------------- progress bar
    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self._close_bar()
        self._epoch_in_fit = 0
        self._batches_per_epoch = None
        self._printed_sparsity = None
        if (net.verbose or 0) >= 2:
            from tqdm.auto import tqdm

            self.bar_ = tqdm(total=None, unit="batch", desc=self._description(net), leave=True)

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, **kwargs)
        self._epoch_in_fit += 1
        if self.bar_ is None:
            return
        if self._batches_per_epoch is None and dataset_train is not None:
            try:
                self._batches_per_epoch = len(net.get_iterator(dataset_train, training=True))
            except TypeError:  # an iterator without a length: count without a total
                self._batches_per_epoch = None
            if self._batches_per_epoch:
                self.bar_.total = self._batches_per_epoch * net.max_epochs
        self.bar_.set_description(self._description(net), refresh=False)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if self.bar_ is not None and training:
            self.bar_.update(1)

    def _advance_to(self, n: int) -> None:
        # epochs can end early (a custom iterator): keep the count at the epoch boundary
        if self._batches_per_epoch and self.bar_.n < n:
            self.bar_.update(n - self.bar_.n)

    def _description(self, net) -> str:
        return f"epoch {max(self._epoch_in_fit, 1)}/{net.max_epochs}"

    @staticmethod
    def _postfix(row) -> dict:
        shown = {}
        for key in ("train_loss", "valid_loss", "valid_acc", _SPARSITY):
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                shown[key] = f"{value:.4f}"
        return shown

    def _close_bar(self) -> None:
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
        self.bar_ = None

    def __getstate__(self):
        # a live tqdm bar (a widget in Jupyter) does not pickle or deep-copy
        state = self.__dict__.copy()
        state["bar_"] = None
        return state


from .._serializable import register_builtin  # noqa: E402  (load may rebuild it from a file)

register_builtin(TrainingLog)
