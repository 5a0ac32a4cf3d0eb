"""The pruner protocol: the engine calls only declared hooks; composites forward every hook."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import make_classification
from skorch import callbacks as skorch_callbacks

from skprune import (
    CombinedPruning,
    FunctionPruner,
    InputPruning,
    LotteryTicket,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PrunedNetClassifier,
    PrunedNetCV,
    TaylorPruning,
)
from skprune.pruners import PrunerProtocol
from skprune.pruners._protocol import PROTOCOL_MEMBERS

FAST = dict(max_epochs=6, batch_size=32, random_state=0, module__hidden_layer_sizes=(16,))


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=8, n_informative=4, random_state=0)
    return X.astype(np.float32), y


# Names scikit-learn and Python themselves use on any estimator (clone, get_params, repr, ...).
_ESTIMATOR_API = {
    "get_params",
    "set_params",
    "_get_param_names",
    "__sklearn_clone__",
    "__sklearn_tags__",
    "_repr_html_",
    "_validate_params",
    "_check_params_together",
    "_parameter_constraints",
    "__dict__",
    "_metadata_request",
    "_skl_callbacks",
    "_sklearn_output_config",
    "_doc_link_module",
    "_doc_link_template",
    "__class__",
}


class _RecordingPruner(TaylorPruning):
    """A gradient-observing pruner that records every member the library touches."""

    def __getattribute__(self, name):
        if not name.startswith("__") and not name.startswith("_RecordingPruner"):
            type(self).touched.add(name)
        return super().__getattribute__(name)


def test_the_engine_uses_only_members_the_protocol_declares(data):
    X, y = data
    _RecordingPruner.touched = set()
    pruner = _RecordingPruner(0.5, schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)
    net.partial_fit(X, y)
    # the members of the pruner's own implementation are reached through the hooks
    own = {
        "score",
        "_checked_scores",
        "_ranking_inputs",
        "scope",
        "sparsity",
        "n_batches",
        "layers",
        "prune_output_layer",
    }
    own |= {"schedule", "_layer_matches", "saliency_", "get_schedule"}
    undeclared = _RecordingPruner.touched - PROTOCOL_MEMBERS - _ESTIMATOR_API - own
    assert not undeclared, f"the library used pruner members outside the protocol: {sorted(undeclared)}"
    assert {"compute_masks", "observe", "step_target", "check_params"} <= _RecordingPruner.touched
    assert {"on_fit_begin", "on_fit_end", "requires_activation_statistics"} <= _RecordingPruner.touched


class _RecordingNeurons(NeuronPruning):
    """An activation-requesting pruner that records every member the library touches."""

    def __getattribute__(self, name):
        if not name.startswith("__") and not name.startswith("_RecordingNeurons"):
            type(self).touched.add(name)
        return super().__getattribute__(name)


def test_the_engine_uses_only_protocol_members_of_a_pruner_that_asks_for_activations(data):
    X, y = data
    _RecordingNeurons.touched = set()
    pruner = _RecordingNeurons(0.5, importance="apoz", schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)
    net.partial_fit(X, y)
    own = {"importance", "criterion", "_importance", "unit_scores", "sparsity", "fraction", "scope"}
    own |= {"_unit_sparsity", "layers", "layer_type", "unit_name", "_layer_matches", "_check_names_match"}
    own |= {"_unify_channel_groups", "_unit_masks", "_global_units", "schedule", "prune_output_layer"}
    undeclared = _RecordingNeurons.touched - PROTOCOL_MEMBERS - _ESTIMATOR_API - own
    assert not undeclared, f"the library used pruner members outside the protocol: {sorted(undeclared)}"
    assert "requires_activation_statistics" in _RecordingNeurons.touched


def test_engine_and_estimator_sources_do_not_probe_the_pruner():
    import inspect

    from skprune import _estimator
    from skprune._training import _engine

    for module in (_estimator, _engine):
        source = inspect.getsource(module)
        assert "getattr(self.pruner" not in source
        assert "hasattr(self.pruner" not in source
        assert "getattr(pruner" not in source


class _RecordingTicket(LotteryTicket):
    rewinds: list = []

    def rewind(self, module, context):
        state = super().rewind(module, context)
        type(self).rewinds.append(state is not None)
        return state


def test_combined_pruning_rewinds_an_input_pruning_and_lottery_ticket_pair(data):
    X, y = data
    _RecordingTicket.rewinds = []
    ticket = _RecordingTicket(0.5, n_rounds=1, layers=["layers.fc0"])
    pruner = CombinedPruning([("in", InputPruning(n_features=6, schedule=OneShot(at=0.25))), ("w", ticket)])
    net = PrunedNetClassifier(pruner=pruner, **{**FAST, "max_epochs": 8}).fit(X, y)
    assert _RecordingTicket.rewinds == [True]
    assert len(net.selected_features_) == 6


def test_a_lottery_ticket_inside_combined_pruning_trains_as_it_does_alone(data):
    X, y = data

    class Idle(PrunerProtocol):
        def compute_masks(self, module, masks, context):
            return {}

    ticket = LotteryTicket(0.5, n_rounds=2, rewind_epoch=1)
    alone = PrunedNetClassifier(pruner=ticket, **{**FAST, "max_epochs": 9}).fit(X, y)
    combined = CombinedPruning([("idle", Idle()), ("w", clone(ticket))])
    inside = PrunedNetClassifier(pruner=combined, **{**FAST, "max_epochs": 9}).fit(X, y)
    np.testing.assert_allclose(inside.predict_proba(X), alone.predict_proba(X), atol=1e-6)


def _gradient_norm(weight, stats):
    _gradient_norm.batches.append(stats.n_batches)
    _gradient_norm.grad_sums.append(float(stats.grad_sum.abs().sum()))
    return stats.grad_sq_sum


_gradient_norm.batches = []
_gradient_norm.grad_sums = []


def test_combined_pruning_shows_real_gradients_to_a_function_pruner(data):
    X, y = data
    _gradient_norm.batches.clear()
    _gradient_norm.grad_sums.clear()
    pruner = CombinedPruning(
        [
            ("in", InputPruning(n_features=6, schedule=OneShot(at=0.5))),
            ("fn", FunctionPruner(_gradient_norm, 0.5, layers=["layers.fc0"], schedule=OneShot(at=0.5))),
        ]
    )
    PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)
    # 3 epochs of 120 rows in batches of 32 before the step: 12 backward passes observed
    assert _gradient_norm.batches == [12]
    assert _gradient_norm.grad_sums[0] > 0


def test_a_plain_estimator_missing_hooks_is_refused_with_the_hooks_named(data):
    X, y = data

    class HalfPruner(BaseEstimator):
        def compute_masks(self, module, masks, context):
            return {}

        def get_schedule(self):
            return OneShot()

    with pytest.raises(TypeError, match=r"lacks the pruner hooks \[.*'observe'.*\].*PrunerProtocol"):
        PrunedNetClassifier(pruner=HalfPruner(), **FAST).fit(X, y)


def test_a_plain_estimator_with_every_hook_works_without_parameter_constraints(data):
    X, y = data

    class Plain(BaseEstimator):
        path_parameter = None
        requires_gradient_statistics = False
        sensitivity_batches = 0

        def check_params(self):
            pass

        def check_n_features(self, n_features):
            pass

        def get_schedule(self):
            return OneShot(at=0.5)

        def select_layers(self, module):
            return []

        def step_target(self, fraction):
            return fraction

        def compute_masks(self, module, masks, context):
            keep = torch.ones_like(module.layers.fc0.weight, dtype=torch.bool)
            keep[:, ::2] = False  # half the inputs cut (cutting all would leave no path: refused)
            return {"layers.fc0.weight": keep}

        def rewind(self, module, context):
            return None

        def penalty(self, module):
            return None

        def observe(self, name, weight, grad):
            pass

        def on_epoch_begin(self, module, epoch):
            pass

        def at_path_level(self, level, at):
            raise TypeError("no path")

    # written against the first protocol: no on_fit_begin/on_fit_end, positional hooks
    with pytest.warns(FutureWarning, match=r"Plain is written against .*on_fit_begin is missing"):
        net = PrunedNetClassifier(pruner=Plain(), **FAST).fit(X, y)
    assert net.layer_sparsity_["layers.fc0"] == pytest.approx(0.5, abs=0.05)


def test_a_new_criterion_is_one_class_with_one_method(data):
    from skprune import BasePruner

    class SmallestRows(BasePruner):
        def score(self, weights, context):
            return {n: w.norm(dim=1, keepdim=True).expand_as(w) for n, w in weights.items()}

    X, y = data
    net = PrunedNetClassifier(pruner=SmallestRows(0.6, schedule=OneShot(at=0.5)), **FAST).fit(X, y)
    assert net.sparsity_ == pytest.approx(0.6, abs=0.01)
    assert net.predict(X).shape == (len(X),)


@pytest.mark.parametrize(
    "pruner, param",
    [
        (NeuronPruning(0.0), "pruner__sparsity"),
        (InputPruning(n_features=4), "pruner__sparsity"),
    ],
)
def test_pruned_net_cv_runs_a_path_over_structured_and_input_pruning(data, pruner, param):
    X, y = data
    search = PrunedNetCV(
        PrunedNetClassifier(pruner=pruner, **FAST), sparsities=(0.25, 0.5), cv=2, finetune_epochs=2
    ).fit(X, y)
    assert list(search.best_params_) == [param]
    assert search.best_sparsity_ in (0.25, 0.5)
    fitted = search.best_estimator_
    if isinstance(pruner, InputPruning):
        kept = len(fitted.selected_features_)
        assert kept == round((1 - search.best_sparsity_) * X.shape[1])
    else:
        removed = (fitted.module_.layers.fc0.weight.detach().abs().sum(dim=1) == 0).float().mean()
        assert float(removed) == pytest.approx(search.best_sparsity_)
    assert clone(search).get_params()["estimator"].pruner.get_params() == pruner.get_params()


def test_a_pruner_without_a_path_is_refused_by_pruned_net_cv(data):
    X, y = data
    pruner = CombinedPruning([("w", MagnitudePruning(0.5))])
    with pytest.raises(TypeError, match="cannot be put on a sparsity path.*GridSearchCV"):
        PrunedNetCV(PrunedNetClassifier(pruner=pruner, **FAST), sparsities=(0.5,), cv=2).fit(X, y)


@pytest.mark.parametrize(
    "pruner, new",
    [
        (NeuronPruning(fraction=0.5), "sparsity"),
        (NeuronPruning(0.5, criterion="l1"), "importance"),
        (InputPruning(fraction=0.5), "sparsity=1 - fraction"),
    ],
)
def test_deprecated_names_warn_and_keep_their_meaning(data, pruner, new):
    X, y = data
    with pytest.warns(FutureWarning, match=new):
        net = PrunedNetClassifier(pruner=pruner, compact_during_fit=False, **FAST).fit(X, y)
    if isinstance(pruner, InputPruning):
        assert len(net.selected_features_) == 4  # fraction kept = 0.5 of 8 features
    else:
        removed = (net.module_.layers.fc0.weight.detach().abs().sum(dim=1) == 0).float().mean()
        assert float(removed) == 0.5


def test_structured_sparsity_is_settable_through_the_estimator():
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5))
    net.set_params(pruner__sparsity=0.25)
    assert net.pruner.sparsity == 0.25


class _FixedMaskPruner(PrunerProtocol):
    """Returns whatever ``make_masks(weight)`` builds for the first layer (a user's rule)."""

    def __init__(self, make_masks=None):
        self.make_masks = make_masks

    def compute_masks(self, module, masks, context):
        name, _, layer = self.select_layers(module)[0]
        return self.make_masks(name, layer.weight)


@pytest.mark.parametrize(
    "make_masks, message",
    [
        (lambda name, w: {name: torch.ones(w.shape[0], 1, dtype=torch.bool)}, r"shape \(16, 1\).*\(16, 8\)"),
        (lambda name, w: {"layers.fc9.weight": torch.ones_like(w, dtype=torch.bool)}, "not a parameter"),
        (lambda name, w: {name: [[True] * w.shape[1]] * w.shape[0]}, "shape list"),
        (lambda name, w: [torch.ones_like(w, dtype=torch.bool)], "must return a dict"),
    ],
    ids=["broadcast-shape", "unknown-name", "not-a-tensor", "not-a-dict"],
)
def test_masks_of_another_shape_or_name_from_a_custom_pruner_are_refused(data, make_masks, message):
    X, y = data
    net = PrunedNetClassifier(pruner=_FixedMaskPruner(make_masks), **FAST)
    with pytest.raises((ValueError, TypeError), match=message):
        net.fit(X, y)


# ------------------------------------------------------------------ fit hooks, keyword arguments


class _Diary(MagnitudePruning):
    """Records the keyword hooks the engine calls (new-style: keyword-only signatures)."""

    def on_fit_begin(self, *, module, masks, n_epochs, **kwargs):
        _Diary.calls.append(("begin", n_epochs, len(masks)))

    def on_epoch_begin(self, *, module, epoch, **kwargs):
        _Diary.calls.append(("epoch", epoch, kwargs.get("n_epochs")))

    def on_fit_end(self, *, module, masks, epoch, error, **kwargs):
        _Diary.calls.append(("end", epoch, type(error).__name__ if error is not None else None))


class _RaiseAt(skorch_callbacks.Callback):
    def __init__(self, error, epoch=2):
        self.error = error
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.error


def test_fit_hooks_bracket_every_fit_and_partial_fit_with_keyword_arguments(data):
    X, y = data
    _Diary.calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # new-style hooks: no deprecation
        net = PrunedNetClassifier(pruner=_Diary(0.5, schedule=OneShot(at=0.5)), **{**FAST, "max_epochs": 3})
        net.fit(X, y)
        first = list(_Diary.calls)
        net.partial_fit(X, y)
    assert first == [("begin", 3, 0), ("epoch", 0, 3), ("epoch", 1, 3), ("epoch", 2, 3), ("end", 3, None)]
    second = _Diary.calls[len(first) :]
    assert second[0] == ("begin", 3, 2)  # partial_fit starts from the fitted masks
    assert second[-1] == ("end", 3, None)


@pytest.mark.parametrize(
    "error, raised",
    [(ValueError("boom"), ValueError), (KeyboardInterrupt(), None)],
    ids=["error", "interrupt"],
)
def test_on_fit_end_is_called_with_what_ended_the_fit(data, error, raised):
    X, y = data
    _Diary.calls = []
    net = PrunedNetClassifier(
        pruner=_Diary(0.5, schedule=OneShot(at=0.5)), callbacks=[("raise", _RaiseAt(error))], **FAST
    )
    if raised is None:  # skorch ends an interrupted training normally, keeping what was trained
        with pytest.warns(UserWarning, match="Training stopped after epoch 2 of 6"):
            net.fit(X, y)
    else:
        with pytest.raises(raised, match="boom"):
            net.fit(X, y)
    ends = [call for call in _Diary.calls if call[0] == "end"]
    assert ends == [("end", 2, type(error).__name__)]  # raised at the end of epoch 2 of 6


def test_on_fit_end_is_called_when_a_callback_fails_as_training_begins(data):
    X, y = data

    class FailsAtStart(skorch_callbacks.Callback):
        def on_train_begin(self, net, **kwargs):
            raise RuntimeError("no start")

    _Diary.calls = []
    net = PrunedNetClassifier(pruner=_Diary(0.5), callbacks=[("fail", FailsAtStart())], **FAST)
    with pytest.raises(RuntimeError, match="no start"):
        net.fit(X, y)
    assert _Diary.calls == [("begin", 6, 0), ("end", 0, "RuntimeError")]


class _OldStyle(PrunerProtocol):
    """Hooks with the first protocol's positional signatures (no **kwargs)."""

    def __init__(self, sparsity=0.5):
        self.sparsity = sparsity

    requires_gradient_statistics = True

    def compute_masks(self, module, masks, context):
        name, _, layer = self.select_layers(module)[0]
        keep = torch.ones_like(layer.weight, dtype=torch.bool)
        keep[: layer.weight.shape[0] // 2] = False
        return {name: keep}

    def on_epoch_begin(self, module, epoch):
        _OldStyle.seen.append(("epoch", epoch))

    def observe(self, name, weight, grad):
        _OldStyle.seen.append(("observe", name))

    def penalty(self, module):
        _OldStyle.seen.append(("penalty",))
        return None


def test_positional_hooks_of_the_first_protocol_still_work_with_one_warning_per_fit(data):
    X, y = data
    _OldStyle.seen = []
    net = PrunedNetClassifier(pruner=_OldStyle(), **{**FAST, "max_epochs": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert len(messages) == 1
    assert "on_epoch_begin(module, epoch) takes no **kwargs" in messages[0]
    assert "observe(name, weight, grad) takes no **kwargs" in messages[0]
    assert ("epoch", 0) in _OldStyle.seen and ("epoch", 1) in _OldStyle.seen
    assert ("observe", "layers.fc0.weight") in _OldStyle.seen and ("penalty",) in _OldStyle.seen
    assert net.layer_sparsity_["layers.fc0"] == 0.5


def test_an_old_style_part_of_combined_pruning_warns_once_per_fit_and_still_sees_its_hooks(data):
    X, y = data
    _OldStyle.seen = []
    pruner = CombinedPruning([("old", _OldStyle()), ("new", MagnitudePruning(0.5, layers=["layers.output"]))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PrunedNetClassifier(pruner=pruner, **{**FAST, "max_epochs": 2}).fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert len(messages) == 1 and messages[0].startswith("_OldStyle is written against")
    assert ("epoch", 1) in _OldStyle.seen and ("observe", "layers.fc0.weight") in _OldStyle.seen


def test_a_hook_whose_parameters_are_not_the_passed_keywords_is_refused_with_them(data):
    X, y = data

    class Renamed(MagnitudePruning):
        def on_epoch_begin(self, net, epoch_index, **kwargs):
            pass

    with pytest.raises(TypeError, match=r"on_epoch_begin is called with the keyword arguments \['module', "):
        PrunedNetClassifier(pruner=Renamed(0.5), **FAST).fit(X, y)


def test_a_new_hook_without_kwargs_is_refused_with_the_signature_to_write(data):
    X, y = data

    class NoKwargs(MagnitudePruning):
        def on_fit_begin(self, module, masks, n_epochs):
            pass

    with pytest.raises(TypeError, match=r"def on_fit_begin\(self, \*, module, masks, n_epochs, \*\*kwargs\)"):
        PrunedNetClassifier(pruner=NoKwargs(0.5), **FAST).fit(X, y)


class _FailingEnd(MagnitudePruning):
    def on_fit_end(self, *, error, **kwargs):
        raise OSError("cannot close")


def test_a_failing_on_fit_end_raises_after_a_normal_fit_and_only_warns_when_an_error_ended_it(data):
    X, y = data
    with pytest.raises(OSError, match="cannot close"):
        PrunedNetClassifier(pruner=_FailingEnd(0.5), **FAST).fit(X, y)
    net = PrunedNetClassifier(
        pruner=_FailingEnd(0.5), callbacks=[("raise", _RaiseAt(ValueError("boom")))], **FAST
    )
    with pytest.warns(RuntimeWarning, match="on_fit_end raised OSError.*ending on ValueError"):
        with pytest.raises(ValueError, match="boom"):
            net.fit(X, y)
