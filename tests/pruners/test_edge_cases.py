"""Edge cases of the strategies found by review: infinite scores, lottery rounds on short fits."""

import numpy as np
import pytest
import torch

from skprune import (
    BasePruner,
    FunctionPruner,
    Iterative,
    LotteryTicket,
    MagnitudePruning,
    MaskStore,
    NeuronPruning,
    OneShot,
    PrunedNetClassifier,
    PruningContext,
)
from skprune.pruners._lottery import _LotteryRounds

FAST = dict(batch_size=32, lr=0.01, random_state=0, module__hidden_layer_sizes=(16,))


class _ForcedLowest(BasePruner):
    """Scores ``-inf`` (prune first) for the entries in ``forced_``, ``|w|`` elsewhere."""

    def score(self, weights, context):
        out = {}
        for name, w in weights.items():
            s = w.abs().clone()
            s[self.forced_[name]] = -torch.inf
            out[name] = s
        return out


def _context(target):
    generator = torch.Generator().manual_seed(0)
    return PruningContext(epoch=1, n_epochs=4, step=1, target=target, generator=generator)


@pytest.mark.parametrize("target", [0.1, 0.5])
@pytest.mark.parametrize("scope", ["lamp", "global", "erk", "layer"])
def test_minus_inf_scores_never_revive_pruned_weights(scope, target):
    """A rule may score entries -inf ("prune these first"); entries pruned earlier must stay pruned."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    weights = {"0.weight": module[0].weight, "2.weight": module[2].weight}
    masks = MaskStore()
    # pruned earlier: the last entries of each layer
    earlier = {}
    for name, w in weights.items():
        keep = torch.ones_like(w, dtype=torch.bool)
        keep.view(-1)[-4:] = False
        earlier[name] = keep
    masks.update(earlier)
    pruner = _ForcedLowest(0.5, scope=scope)
    # the rule now wants the first entries gone: as many as were pruned before
    pruner.forced_ = {}
    for name, w in weights.items():
        forced = torch.zeros_like(w, dtype=torch.bool)
        forced.view(-1)[:4] = True
        pruner.forced_[name] = forced
    new = pruner.compute_masks(module, masks, _context(target))
    for name in weights:
        assert not torch.any(new[name] & ~earlier[name]), f"{name}: a pruned entry was revived"
        if target == 0.5 and scope != "erk":  # erk keeps the small output layer denser than 50%
            # the -inf entries go before any finite one
            assert not torch.any(new[name] & pruner.forced_[name]), f"{name}: a -inf entry was kept"


def test_lamp_prunes_minus_inf_scores_first_and_keeps_plus_inf():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))

    class Ranked(BasePruner):
        def score(self, weights, context):
            out = {}
            for name, w in weights.items():
                s = w.abs().clone()
                s.view(-1)[:2] = -torch.inf  # must go
                s.view(-1)[2:4] = torch.inf  # must stay
                out[name] = s
            return out

    new = Ranked(0.2, scope="lamp").compute_masks(module, MaskStore(), _context(0.2))
    for name, keep in new.items():
        flat = keep.view(-1)
        assert not flat[:2].any(), name
        assert flat[2:4].all(), name
        assert int((~flat).sum()) >= 2


@pytest.mark.parametrize("n_rounds, max_epochs", [(3, 3), (4, 4), (5, 5), (4, 3)])
def test_lottery_ticket_refuses_fits_too_short_for_its_rounds(n_rounds, max_epochs):
    """Rounds that would fall on the same epoch are refused, not silently merged."""
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    net = PrunedNetClassifier(pruner=LotteryTicket(0.8, n_rounds=n_rounds), max_epochs=max_epochs, **FAST)
    with pytest.raises(ValueError, match=f"max_epochs={max_epochs}"):
        net.fit(X, y)


@pytest.mark.parametrize("n_rounds, max_epochs, rewind_epoch", [(3, 4, 0), (2, 3, 0), (3, 7, 1), (1, 2, 0)])
def test_lottery_ticket_runs_every_round_and_drops_its_snapshot(n_rounds, max_epochs, rewind_epoch):
    steps = _LotteryRounds(0.8, n_rounds, rewind_epoch).steps(max_epochs)
    assert len(steps) == n_rounds and steps[0][0] > rewind_epoch
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    pruner = LotteryTicket(0.8, n_rounds=n_rounds, rewind_epoch=rewind_epoch)
    net = PrunedNetClassifier(pruner=pruner, max_epochs=max_epochs, **FAST).fit(X, y)
    assert net.sparsity_ == pytest.approx(0.8, abs=0.02)
    assert "rewind_state_" not in net.pruner_.__dict__  # the snapshot is not kept with the fitted model


def test_iterative_schedule_still_reaches_the_target_on_a_one_epoch_fit():
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2

    class Magnitude(BasePruner):
        def score(self, weights, context):
            return {n: w.abs() for n, w in weights.items()}

    net = PrunedNetClassifier(pruner=Magnitude(0.7, schedule=Iterative()), max_epochs=1, **FAST).fit(X, y)
    assert net.sparsity_ == pytest.approx(0.7, abs=0.01)


@pytest.mark.parametrize(
    "pruner",
    [
        MagnitudePruning(0.5, layers=["layers.fc0", "layers.fc9"]),  # a typo next to a real name
        MagnitudePruning(0.5, layers=["layers.fc*", "layer.output"]),
        NeuronPruning(0.5, layers=["layers.fc0", "layers.fc_0"]),
    ],
)
def test_a_layer_name_that_matches_nothing_is_an_error_even_next_to_one_that_does(pruner):
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    net = PrunedNetClassifier(pruner=pruner, max_epochs=2, **{**FAST, "module__hidden_layer_sizes": (8, 8)})
    with pytest.raises(ValueError, match=r"matches no .*layers\.fc1"):
        net.fit(X, y)


def _forgot_return(weight, stats):
    weight.abs()


def _returns_a_dict(weight, stats):
    return {"score": weight.abs()}


class _NoneScores(BasePruner):
    def score(self, weights, context):
        return {name: None for name in weights}


@pytest.mark.parametrize(
    "pruner, match",
    [
        (FunctionPruner(_forgot_return, 0.5), r"_forgot_return.*returned None.*one score per weight"),
        (FunctionPruner(_returns_a_dict, 0.5), r"_returns_a_dict.*returned dict.*one score per weight"),
        (_NoneScores(0.5), r"_NoneScores.score returned None for 'layers.fc0.weight'"),
    ],
)
def test_scores_that_are_not_numbers_are_a_clear_error(pruner, match):
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    with pytest.raises(TypeError, match=match):
        PrunedNetClassifier(pruner=pruner, max_epochs=2, **FAST).fit(X, y)


def test_setting_a_parameter_of_the_default_schedule_none_says_what_to_do():
    pruner = MagnitudePruning()
    with pytest.raises(ValueError, match=r"schedule is None.*schedule=OneShot\(at=0.3\)"):
        pruner.set_params(schedule__at=0.3)
    net = PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=2)
    with pytest.raises(ValueError, match=r"schedule is None"):
        net.set_params(pruner__schedule__at=0.3)
    # with a schedule object the nested parameter is reachable, and both can be set at once
    assert pruner.set_params(schedule=OneShot(), schedule__at=0.3).schedule.at == 0.3
    assert MagnitudePruning(schedule=OneShot()).set_params(schedule__at=0.2).schedule.at == 0.2


def test_set_params_on_combined_pruning_built_from_a_bare_list_says_to_give_name_pruner_tuples():
    from skprune import BlockPruning, CombinedPruning

    pruner = CombinedPruning([BlockPruning(1), NeuronPruning(0.5)])
    with pytest.raises(TypeError, match=r"list of \(name, pruner\) tuples"):
        pruner.set_params(**{"0__n_blocks_to_remove": 0})
