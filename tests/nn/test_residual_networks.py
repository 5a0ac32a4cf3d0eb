"""The residual form of the default networks: MLP(n_blocks=...) and ConvNet(n_blocks=...)."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skprune import MLP, BlockPruning, ConvNet, OneShot, PrunedNetClassifier, load, save


def test_mlp_residual_blocks_are_identity_at_zero_branch_and_sized_like_the_last_hidden_layer():
    mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(8, 6), n_blocks=np.int64(3))
    assert mlp.n_blocks == 3 and type(mlp.n_blocks) is int
    assert len(mlp.layers.blocks) == 3
    assert mlp.layers.blocks[0].branch.fc_a.in_features == 6
    with torch.no_grad():
        for p in mlp.layers.blocks.parameters():
            p.zero_()
    X = torch.randn(5, 4)
    without = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(8, 6))
    without.load_state_dict({k: v for k, v in mlp.state_dict().items() if "blocks" not in k})
    torch.testing.assert_close(mlp(X), without(X))


def test_convnet_takes_one_block_count_for_all_stages_or_one_per_stage():
    kwargs = dict(n_features_in=64, n_outputs=3, input_shape=(1, 8, 8), channels=(4, 8))
    assert [
        len(s) for s in (ConvNet(**kwargs, n_blocks=2).layers.res0, ConvNet(**kwargs, n_blocks=2).layers.res1)
    ] == [2, 2]
    net = ConvNet(**kwargs, n_blocks=(0, 1))
    assert not hasattr(net.layers, "res0") and len(net.layers.res1) == 1
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", (1, 2, 3)])
def test_bad_n_blocks_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="n_blocks"):
        ConvNet(n_features_in=64, n_outputs=3, input_shape=(1, 8, 8), channels=(4, 8), n_blocks=bad)
    if not isinstance(bad, tuple):
        with pytest.raises(ValueError, match="n_blocks"):
            MLP(n_features_in=4, n_outputs=2, n_blocks=bad)


def test_mlp_blocks_need_a_hidden_layer():
    with pytest.raises(ValueError, match="needs a hidden layer"):
        MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(), n_blocks=2)


def test_load_state_dict_of_a_compacted_network_drops_the_deleted_blocks(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(8,),
        module__n_blocks=3,
        pruner=BlockPruning(2, schedule=OneShot(at=0.5)),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact().module_
    assert compacted.n_blocks == 1
    fresh = MLP(n_features_in=X.shape[1], n_outputs=compacted.n_outputs, hidden_layer_sizes=(8,), n_blocks=3)
    fresh.load_state_dict(compacted.state_dict())
    assert fresh.n_blocks == 1
    Xt = torch.as_tensor(X[:7], dtype=torch.float32)
    torch.testing.assert_close(fresh(Xt), compacted(Xt))


def test_compacted_residual_convnet_saves_and_loads_with_the_same_predictions(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1, 8, 8)).astype(np.float32)
    y = (X.mean(axis=(1, 2, 3)) > 0).astype(int)
    net = PrunedNetClassifier(
        ConvNet,
        module__channels=(4, 4),
        module__n_blocks=(1, 2),
        module__hidden=0,
        pruner=BlockPruning(2, importance="random", schedule=OneShot(at=0.5)),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact()
    assert sum(compacted.module_.n_blocks) == 1
    save(compacted, tmp_path / "net.skp")
    loaded = load(tmp_path / "net.skp")
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert loaded.removed_layers_ == compacted.removed_layers_


def test_grid_search_chooses_the_number_of_residual_blocks(clf_data):
    X, y = clf_data
    search = GridSearchCV(
        PrunedNetClassifier(module__hidden_layer_sizes=(8,), max_epochs=2, random_state=0),
        {"module__n_blocks": [0, 2]},
        cv=2,
        error_score="raise",
    ).fit(X[:60], y[:60])
    assert search.best_params_["module__n_blocks"] in (0, 2)


def test_a_partial_state_dict_leaves_the_blocks_alone():
    mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(8,), n_blocks=3)
    result = mlp.load_state_dict({"layers.fc0.weight": torch.zeros(8, 4)}, strict=False)
    assert mlp.n_blocks == 3 and len(mlp.layers.blocks) == 3
    assert "layers.blocks.2.branch.fc_b.weight" in result.missing_keys
