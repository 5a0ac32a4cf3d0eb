"""Every output keeps a path from the inputs: the check on the unit graph, the reserved paths, the engine."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris, load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skprune import (
    L1Pruning,
    MagnitudePruning,
    OneShot,
    PrunedNetClassifier,
    RandomPruning,
    SNIPPruning,
)
from skprune.nn._paths import reserve_paths, unreachable_outputs
from skprune.pruners._allocation import allocate


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_unreachable_outputs_finds_outputs_whose_hidden_units_read_no_input():
    module = _mlp()
    alive = {"0.weight": torch.zeros(4, 3, dtype=torch.bool), "2.weight": torch.ones(2, 4, dtype=torch.bool)}
    alive["0.weight"][1, 2] = True  # only hidden unit 1 reads an input
    alive["2.weight"][0, 1] = False  # output 0 no longer reads hidden unit 1
    assert unreachable_outputs(module, alive) == [0]
    alive["2.weight"][0, 1] = True
    assert unreachable_outputs(module, alive) == []
    assert unreachable_outputs(module) == []  # dense: read from the weights themselves


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.bn(self.conv1(x)))))


class _ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = _Block()
        self.fc = nn.Linear(4, 3)

    def forward(self, X):
        x = self.block(torch.relu(self.stem(X.reshape(-1, 1, 8, 8))))
        return self.fc(x.mean(dim=(2, 3)))


def test_unreachable_outputs_follows_residual_adds_and_convolutions():
    module = _ResNet().eval()
    alive = {
        name: torch.ones_like(p, dtype=torch.bool)
        for name, p in module.named_parameters()
        if "weight" in name
    }
    alive["block.conv1.weight"][:] = False  # the block's inner path is cut; the skip connection remains
    alive["block.conv2.weight"][:] = False
    assert unreachable_outputs(module, alive) == []
    alive["stem.weight"][:] = False  # nothing leaves the input layer: every output is dead
    assert unreachable_outputs(module, alive) == [0, 1, 2]
    alive["stem.weight"][2, 0, 1, 1] = True
    alive["fc.weight"][:, 2] = False  # channel 2 carries the input, the fc no longer reads it
    assert unreachable_outputs(module, alive) == [0, 1, 2]
    alive["fc.weight"][1, 2] = True
    assert unreachable_outputs(module, alive) == [0, 2]


def test_the_allocation_reserves_the_best_scoring_path_even_when_the_best_weights_do_not_line_up():
    module = _mlp()
    # the first layer's best weights feed hidden units 0-1; the output layer's best read units 2-3
    scores = {"0.weight": torch.full((4, 3), 0.01), "2.weight": torch.full((2, 4), 0.01)}
    scores["0.weight"][:2] = 1.0
    scores["0.weight"][2, 1] = 0.5  # the best weight into hidden unit 2
    scores["2.weight"][:, 2:] = 1.0
    keep = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    plain = allocate("global", list(scores), scores, keep, 0.6, "2.weight")
    assert unreachable_outputs(module, plain) == [0, 1]  # the layer floor alone leaves a dead network
    reserved = reserve_paths(module, scores, keep)
    assert reserved["0.weight"].sum() == 1 and reserved["0.weight"][2, 1]
    assert reserved["2.weight"].sum() == 2 and reserved["2.weight"][:, 2].all()
    for allocation in ("lamp", "global", "erk", "layer"):
        masks = allocate(allocation, list(scores), scores, keep, 0.75, "2.weight", reserved)
        assert unreachable_outputs(module, masks) == []


def test_a_protocol_pruner_that_cuts_every_path_is_refused_at_fit_with_the_outputs_named():
    class CutHidden(MagnitudePruning):
        def compute_masks(self, module, masks, context):
            keep = super().compute_masks(module, masks, context)
            keep["layers.output.weight"] = torch.zeros_like(keep["layers.output.weight"])
            keep["layers.output.weight"][:, 0] = True
            keep["layers.fc0.weight"][0] = False  # hidden unit 0, the only one read, reads no input
            return keep

    X, y = load_iris(return_X_y=True)
    net = PrunedNetClassifier(pruner=CutHidden(0.5, schedule=OneShot()), max_epochs=2, random_state=0)
    with pytest.raises(
        ValueError, match=r"CutHidden.compute_masks cut every path .* output\(s\) \[0, 1, 2\]"
    ):
        net.fit(X, y)


ISSUE_CASES = [
    (load_iris, MagnitudePruning),
    (load_iris, SNIPPruning),
    (load_iris, L1Pruning),
    (load_iris, RandomPruning),
    (load_wine, MagnitudePruning),
    (load_wine, SNIPPruning),
    (load_wine, L1Pruning),
    (load_wine, RandomPruning),
]


@pytest.mark.parametrize("load, pruner", ISSUE_CASES, ids=lambda v: v.__name__)
def test_at_99_percent_every_output_keeps_a_path_and_the_scaled_model_is_not_constant(load, pruner):
    X, y = load(return_X_y=True)
    # lr=0.01: with the default 1e-3, 50 epochs move the ~16 surviving weights too little on wine
    # (constant predictions, as of a dense net of 16 weights; the fit then warns, see test_guards)
    net = PrunedNetClassifier(pruner=pruner(0.99), lr=0.01, random_state=0)
    model = make_pipeline(StandardScaler(), net).fit(X, y)
    assert unreachable_outputs(net.module_) == []
    assert len(np.unique(model.predict(X))) > 1


def test_wine_with_random_pruning_at_99_percent_and_52_hidden_units_keeps_every_output_reachable():
    X, y = load_wine(return_X_y=True)
    net = PrunedNetClassifier(pruner=RandomPruning(0.99), module__hidden_layer_sizes=(52,), random_state=0)
    model = make_pipeline(StandardScaler(), net).fit(X, y)
    assert unreachable_outputs(net.module_) == []  # 0 of 3 outputs were reachable
    assert len(np.unique(model.predict(X))) > 1  # one class was predicted


def test_masks_of_every_step_keep_a_path_in_a_convnet(digits):
    from skprune import ConvNet

    X, y = digits
    net = PrunedNetClassifier(
        module=ConvNet,
        module__input_shape=(1, 8, 8),
        module__channels=(4,),
        module__hidden=8,
        pruner=MagnitudePruning(0.99),
        max_epochs=3,
        random_state=0,
    ).fit(X[:300], y[:300])
    assert unreachable_outputs(net.module_) == []


def test_outputs_a_module_normalizes_with_softmax_are_reachable_when_their_logits_are():
    # skorch's toy classifier applies softmax in its forward: with every kept weight equal, the
    # logits were equal, the probabilities never moved and the check called every output cut
    # (skorch's test_fit_sparse_csr_learns was refused at fit with MagnitudePruning(0.5))
    from skorch.toy import make_classifier

    module = make_classifier(input_units=20, hidden_units=10, num_hidden=2, dropout=0.5)()
    assert unreachable_outputs(module) == []
    cut = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in module.named_parameters()
           if name.endswith("weight")}
    assert unreachable_outputs(module, cut) == [0, 1]


@pytest.mark.parametrize("sparsity, scope", [(0.95, "global"), (0.99, "global"), (0.99, "lamp")])
def test_a_convnet_with_residual_blocks_keeps_every_output_at_high_sparsity(sparsity, scope):
    # the reserved path took each convolution's best-scoring tap; with padding=1 a border tap reads
    # the padding at the map's edge, and a chain of six such convolutions shifted the path off the
    # 2x2 map the Linear layer reads: the engine's check refused the masks ("cut every path ...")
    from skprune import ConvNet

    rng = np.random.RandomState(0)
    X, y = rng.rand(200, 1, 8, 8).astype(np.float32), rng.randint(0, 3, 200)
    net = PrunedNetClassifier(
        module=ConvNet,
        module__channels=(3, 4),
        module__hidden=6,
        module__n_blocks=1,
        pruner=MagnitudePruning(sparsity, scope=scope),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    assert unreachable_outputs(net.module_) == []
    assert net.sparsity_ > sparsity - 0.02
