"""The strategy family: random, Taylor, SNIP, L1, lottery ticket, user-written rules."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skprune import (
    BasePruner,
    FunctionPruner,
    GradientStatistics,
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    MaskStore,
    OneShot,
    PrunedNetClassifier,
    PruningContext,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)

FAST = dict(max_epochs=8, batch_size=32, lr=0.01, random_state=0, module__hidden_layer_sizes=(32, 16))
LAYERS = ["layers.fc0", "layers.fc1", "layers.output"]


def gradient_change(weight, stats):
    """The issue's example rule: prune the weights whose gradient changed least."""
    return (stats.last_grad - stats.first_grad).abs()


RECORDED = {}


def recording_rule(weight, stats):
    """A rule that remembers what it returned, so a test can check the masks against it."""
    scores = stats.grad_var + weight.abs()
    RECORDED[tuple(weight.shape)] = scores.clone()
    return scores


def wrong_shape(weight, stats):
    return weight.flatten()


def nan_scores(weight, stats):
    return torch.full_like(weight, float("nan"))


STRATEGIES = {
    "random": lambda s, **kw: RandomPruning(s, **kw),
    "taylor": lambda s, **kw: TaylorPruning(s, **kw),
    "snip": lambda s, **kw: SNIPPruning(s, **kw),
    "l1": lambda s, **kw: L1Pruning(s, strength=1e-4, **kw),
    "lottery": lambda s, **kw: LotteryTicket(s, n_rounds=2, **kw),
    "function": lambda s, **kw: FunctionPruner(gradient_change, s, **kw),
}


def _fit(pruner, X, y, **params):
    return PrunedNetClassifier(pruner=pruner, **{**FAST, **params}).fit(X, y)


def _weights(net):
    return {name: p.detach().clone() for name, p in net.module_.named_parameters() if name.endswith("weight")}


# --------------------------------------------------------- every strategy
@pytest.mark.parametrize("name", STRATEGIES)
def test_exact_sparsity_masks_kept_clone_pickle(name, clf_data):
    X, y = clf_data
    net = _fit(STRATEGIES[name](0.8), X, y)
    assert net.sparsity_ == pytest.approx(0.8, abs=1e-9)
    # masks hold through fine-tuning: pruned entries are zero, and only those
    for param_name, weight in _weights(net).items():
        if param_name in net.masks_:
            pruned = net.masks_.pruned[param_name]
            assert torch.all(weight[pruned] == 0)
            assert torch.all(weight[~pruned] != 0)
    assert net.score(X, y) > 0.5
    # clone reaches the parameters and drops fitted state
    cloned = clone(net)
    assert cloned.get_params()["pruner"].get_params() == net.pruner.get_params()
    assert not hasattr(cloned, "pruner_")
    # pickle round trip keeps predictions and masks
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    assert restored.sparsity_ == net.sparsity_
    assert pickle.loads(pickle.dumps(net.pruner)).get_params() == net.pruner.get_params()


@pytest.mark.parametrize(
    "name, param, values",
    [
        ("random", "schedule", [OneShot(at=0.5), OneShot(at=0.25)]),
        ("taylor", "n_batches", [1, 2]),
        ("snip", "n_batches", [1, 3]),
        ("l1", "strength", [0.0, 1e-3]),
        ("lottery", "n_rounds", [1, 2]),
        ("function", "score_fn", [gradient_change, recording_rule]),
    ],
)
def test_grid_search_reaches_strategy_parameters(name, param, values, clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=STRATEGIES[name](0.6), **{**FAST, "max_epochs": 6})
    search = GridSearchCV(net, {f"pruner__{param}": values, "pruner__sparsity": [0.6]}, cv=2)
    search.fit(X, y)
    assert [p[f"pruner__{param}"] for p in search.cv_results_["params"]] == values
    best = search.best_estimator_
    assert repr(getattr(best.pruner_, param)) == repr(search.best_params_[f"pruner__{param}"])
    assert best.sparsity_ == pytest.approx(0.6, abs=1e-9)
    assert getattr(net.pruner, param) == getattr(STRATEGIES[name](0.6), param)  # original untouched


@pytest.mark.parametrize("name", STRATEGIES)
def test_layer_selection_on_every_strategy(name, clf_data):
    X, y = clf_data
    net = _fit(STRATEGIES[name](0.7, layers="layers.fc0"), X, y)
    sparsity = net.layer_sparsity_
    assert sparsity["layers.fc0"] == pytest.approx(0.7, abs=1e-9)
    assert sparsity["layers.fc1"] == 0 and sparsity["layers.output"] == 0
    assert list(net.masks_.pruned) == ["layers.fc0.weight"]

    net = _fit(STRATEGIES[name](0.6, scope="layer", prune_output_layer=False), X, y)
    sparsity = net.layer_sparsity_
    # every layer pruned to round(0.6 * n) of its n weights
    assert sparsity["layers.fc0"] == round(0.6 * 320) / 320
    assert sparsity["layers.fc1"] == round(0.6 * 512) / 512
    assert sparsity["layers.output"] == 0

    net = _fit(STRATEGIES[name](0.5, layers=torch.nn.Linear, scope="layer"), X, y)
    assert all(v == pytest.approx(0.5, abs=1e-9) for v in net.layer_sparsity_.values())


@pytest.mark.parametrize("name", STRATEGIES)
def test_layers_matching_nothing_is_a_clear_error(name, clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match=r"layers='conv\*'.*selects no layer"):
        _fit(STRATEGIES[name](0.5, layers="conv*"), X, y)


# ------------------------------------------------------------------ random
def test_random_pruning_is_reproducible_and_not_magnitude(clf_data):
    X, y = clf_data
    pruner = RandomPruning(0.7, schedule=OneShot(at=0.5))
    a, b = _fit(pruner, X, y), _fit(pruner, X, y)
    c = _fit(pruner, X, y, random_state=1)
    for name in a.masks_.pruned:
        assert torch.equal(a.masks_.pruned[name], b.masks_.pruned[name])
    assert any(not torch.equal(a.masks_.pruned[n], c.masks_.pruned[n]) for n in a.masks_.pruned)
    # at a single step on the same trained weights, magnitude chooses otherwise
    m = _fit(MagnitudePruning(0.7, schedule=OneShot(at=0.5)), X, y)
    overlap = np.mean(
        [(a.masks_.pruned[n] == m.masks_.pruned[n]).float().mean().item() for n in a.masks_.pruned]
    )
    assert overlap < 0.8  # random keeps unrelated weights (independent choice: about 0.58)


# ------------------------------------------------------------------ taylor
def test_taylor_ranks_by_accumulated_statistics():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2))
    stats = {n + ".weight": torch.rand_like(m.weight) for n, m in module.named_children()}
    context = PruningContext(0, 1, 0, target=0.5, generator=torch.Generator(), statistics=stats)
    keep = TaylorPruning(0.5).compute_masks(module, MaskStore(), context)
    flat_stats = torch.cat([s.flatten() for s in stats.values()])
    flat_keep = torch.cat([k.flatten() for k in keep.values()])
    assert flat_keep.sum() == 18
    assert flat_stats[flat_keep].min() > flat_stats[~flat_keep].max()


def test_taylor_gathers_only_until_the_last_step(clf_data):
    X, y = clf_data
    seen = []

    class Spy(TaylorPruning):
        def observe(self, name, weight, grad):
            seen.append(name)

    net = _fit(Spy(0.5, schedule=OneShot(at=0.5)), X, y)  # 300 samples, batch 32: 10 batches
    assert net.sparsity_ == pytest.approx(0.5)
    assert len(seen) == 3 * 4 * 10  # 3 layers, 4 epochs before the step, 10 batches each


def test_snip_equals_taylor_at_initialization_and_leaves_training_alone(clf_data):
    X, y = clf_data
    snip = _fit(SNIPPruning(0.9, n_batches=3), X, y)
    taylor = _fit(TaylorPruning(0.9, n_batches=3, schedule=OneShot(at=0)), X, y)
    for name in LAYERS:
        assert torch.equal(snip.masks_.pruned[name + ".weight"], taylor.masks_.pruned[name + ".weight"])
    assert snip.history[0, "sparsity"] == pytest.approx(0.9)  # pruned before the first epoch
    # the sensitivity pass updates no weight and does not change the batch order
    dense = _fit(None, X, y)
    unpruned = _fit(SNIPPruning(0.0), X, y)
    for name, weight in _weights(dense).items():
        torch.testing.assert_close(_weights(unpruned)[name], weight, rtol=0, atol=0)
    # more sensitivity batches change the estimate
    other = _fit(SNIPPruning(0.9, n_batches=1), X, y)
    assert not all(torch.equal(snip.masks_.pruned[n], other.masks_.pruned[n]) for n in snip.masks_.pruned)


# ---------------------------------------------------------------------- L1
def test_l1_penalty_value_and_effect(clf_data):
    X, y = clf_data
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2))
    expected = 0.01 * module[0].weight.abs().sum()
    torch.testing.assert_close(L1Pruning(strength=0.01, layers="0").penalty(module), expected)
    assert L1Pruning(strength=0.0).penalty(module) is None
    # the penalty shrinks the weights (sparsity 0: no masks, only the penalty acts)
    plain = _fit(L1Pruning(0.0, strength=0.0), X, y, alpha=0.0)
    shrunk = _fit(L1Pruning(0.0, strength=1e-2), X, y, alpha=0.0)
    l1 = [sum(w.abs().sum().item() for w in _weights(n).values()) for n in (plain, shrunk)]
    assert l1[1] < 0.5 * l1[0]


# ----------------------------------------------------------------- lottery
def test_lottery_rounds_are_geometric():
    steps = LotteryTicket(0.875, n_rounds=3).get_schedule().steps(40)
    assert [e for e, _ in steps] == [10, 20, 30]
    targets = [0.875 * f for _, f in steps]
    np.testing.assert_allclose(targets, [0.5, 0.75, 0.875])


class RecordWeights(Callback):
    """Weights at the beginning of every epoch (after that epoch's pruning step)."""

    def initialize(self):
        self.weights, self.optimizer_states = [], []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.weights.append({n: p.detach().clone() for n, p in net.module_.named_parameters()})
        self.optimizer_states.append(len(net.optimizer_.state))


@pytest.mark.parametrize("rewind_epoch", [0, 2])
def test_lottery_rewinds_survivors_and_resets_optimizer(rewind_epoch, clf_data):
    X, y = clf_data
    recorder = RecordWeights()
    pruner = LotteryTicket(0.75, n_rounds=2, rewind_epoch=rewind_epoch)
    net = _fit(pruner, X, y, max_epochs=12, callbacks=[recorder])
    assert net.sparsity_ == pytest.approx(0.75)
    reference = recorder.weights[rewind_epoch]
    for epoch in (4, 8):  # the round ends: prune, then rewind
        after = recorder.weights[epoch]
        assert recorder.optimizer_states[epoch] == 0
        for name, value in after.items():
            pruned = net.masks_.pruned.get(name) if epoch == 8 else None
            if pruned is None:
                if name.endswith("bias") or epoch == 8:
                    torch.testing.assert_close(value, reference[name], rtol=0, atol=0)
                continue
            torch.testing.assert_close(value[~pruned], reference[name][~pruned], rtol=0, atol=0)
            assert torch.all(value[pruned] == 0)
    assert recorder.optimizer_states[5] > 0  # training resumed with a fresh optimizer
    assert "rewind_state_" not in vars(net.pruner_)  # snapshot dropped after the last round


# -------------------------------------------------------- user-written rules
def test_function_pruner_applies_the_users_rule(clf_data):
    X, y = clf_data
    RECORDED.clear()
    # raw global ranking, pruning after the last epoch
    pruner = FunctionPruner(recording_rule, 0.7, scope="global", schedule=OneShot(at=1.0))
    net = _fit(pruner, X, y)
    scores = torch.cat([RECORDED[tuple(w.shape)].flatten() for w in _weights(net).values()])
    keep = torch.cat([~net.masks_.pruned[n + ".weight"].flatten() for n in LAYERS])
    assert keep.sum() == round(0.3 * keep.numel())
    assert scores[keep].min() >= scores[~keep].max()


def test_gradient_changed_least_rule_in_a_grid(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=FunctionPruner(gradient_change, 0.9), **FAST)
    search = GridSearchCV(net, {"pruner__sparsity": [0.8, 0.9]}, cv=2).fit(X, y)
    assert search.best_estimator_.sparsity_ == pytest.approx(search.best_params_["pruner__sparsity"])
    assert search.best_score_ > 0.6
    pickle.loads(pickle.dumps(search.best_estimator_))


def test_gradient_statistics_record_what_was_observed():
    pruner = FunctionPruner(gradient_change)
    w = torch.tensor([1.0, -2.0])
    grads = [torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0]), torch.tensor([2.0, -1.0])]
    for g in grads:
        pruner.observe("w", w, g)
    stats = pruner.statistics_["w"]
    assert isinstance(stats, GradientStatistics) and stats.n_batches == 3
    torch.testing.assert_close(stats.grad_mean, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(stats.grad_var, torch.tensor([2 / 3, 2 / 3]))
    torch.testing.assert_close(stats.taylor, torch.tensor([6.0, 4.0]))
    torch.testing.assert_close(stats.first_grad, grads[0])
    torch.testing.assert_close(stats.last_grad, grads[2])
    assert "statistics_" not in clone(pruner).__dict__


def test_function_pruner_without_gradients(clf_data):
    X, y = clf_data

    calls = []

    def by_magnitude(weight, stats):  # nested: fits, but the estimator cannot be pickled
        calls.append(stats)
        return weight.abs()

    net = _fit(FunctionPruner(by_magnitude, 0.6, gradients=False, schedule=OneShot()), X, y)
    assert net.sparsity_ == pytest.approx(0.6) and calls == [None, None, None]
    assert FunctionPruner(by_magnitude, gradients=False).requires_gradient_statistics is False
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(net)


class SignFlips(BasePruner):
    """A custom rule on the documented base class: keep weights whose gradient sign flips most."""

    requires_gradient_statistics = True

    def observe(self, name, weight, grad):
        state = self.__dict__.setdefault("flips_", {})
        last = self.__dict__.setdefault("last_sign_", {})
        sign = grad.sign()
        if name in last:
            state[name] = state.get(name, torch.zeros_like(grad)) + (sign != last[name]).float()
        last[name] = sign

    def score(self, weights, context):
        return {n: self.flips_.get(n, torch.zeros_like(w)) + 1e-3 * w.abs() for n, w in weights.items()}


def test_custom_base_class_rule_observes_gradients(clf_data):
    X, y = clf_data
    pruner = SignFlips(0.8, schedule=OneShot(at=0.5))
    net = _fit(pruner, X, y)
    assert net.sparsity_ == pytest.approx(0.8)
    assert set(net.pruner_.flips_) == {n + ".weight" for n in LAYERS}
    assert "flips_" not in vars(pruner)  # the user's object holds no fitted state
    assert clone(net.pruner_).sparsity == 0.8 and not hasattr(clone(net.pruner_), "flips_")


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "pruner, match",
    [
        (FunctionPruner(wrong_shape, 0.5), r"score_fn=wrong_shape.*shape \(\d+,\).*one score per weight"),
        (FunctionPruner(nan_scores, 0.5), r"score_fn=nan_scores.*NaN"),
        (FunctionPruner("abs", 0.5), "'score_fn' parameter of FunctionPruner must be a callable"),
        (LotteryTicket(0.5, n_rounds=0), r"'n_rounds' parameter of LotteryTicket must be an int.*Got 0"),
        (LotteryTicket(0.5, n_rounds=2.5), r"'n_rounds' parameter.*Got 2.5"),
        (LotteryTicket(0.5, rewind_epoch=-1), r"'rewind_epoch' parameter.*Got -1"),
        (LotteryTicket(0.5, n_rounds=3, rewind_epoch=2), r"max_epochs=8.*at least 12"),
        (L1Pruning(0.5, strength=-1e-3), r"'strength' parameter of L1Pruning must be a float.*Got -0.001"),
        (L1Pruning(0.5, strength=float("nan")), r"'strength' parameter.*Got nan"),
        (SNIPPruning(0.5, n_batches=0), r"'n_batches' parameter of SNIPPruning.*Got 0"),
        (TaylorPruning(0.5, n_batches=-2), r"'n_batches' parameter of TaylorPruning.*Got -2"),
    ],
)
def test_bad_input_is_a_clear_error(pruner, match, clf_data):
    X, y = clf_data
    with pytest.raises((ValueError, TypeError), match=match):
        _fit(pruner, X, y)


def test_bad_parameters_fail_before_fitted_state_is_lost(clf_data):
    X, y = clf_data
    net = _fit(LotteryTicket(0.5, n_rounds=1), X, y)
    module = net.module_
    for params in ({"pruner__n_rounds": 20}, {"pruner__n_rounds": 0}):
        with pytest.raises(ValueError, match="n_rounds"):
            net.set_params(**params).fit(X, y)
        assert net.module_ is module
