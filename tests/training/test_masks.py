import copy
import pickle

import torch
from torch import nn

from skprune import MaskStore
from skprune.nn import iter_prunable_weights


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_iter_prunable_weights_finds_linear_layers():
    names = [p for p, _, _ in iter_prunable_weights(_net())]
    assert names == ["0.weight", "2.weight"]


def test_apply_zeroes_exactly_and_masks_grads_and_state():
    net = _net()
    store = MaskStore()
    keep = torch.rand(8, 4) > 0.5
    store.update({"0.weight": keep})
    store.apply(net)
    assert torch.all(net[0].weight[~keep] == 0)
    assert torch.all(net[0].weight[keep] != 0)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(16, 4)).sum().backward()
        store.mask_gradients(net)
        assert torch.all(net[0].weight.grad[~keep] == 0)
        opt.step()
        store.apply(net)
    store.mask_optimizer_state(net, opt)
    assert torch.all(opt.state[net[0].weight]["exp_avg"][~keep] == 0)
    assert torch.all(net[0].weight[~keep] == 0)


def test_store_holds_no_module_reference_after_use_and_deepcopies_alone():
    net = _net()
    store = MaskStore()
    store.update({"0.weight": torch.rand_like(net[0].weight) > 0.5})
    store.apply(net)
    store.mask_optimizer_state(net, torch.optim.Adam(net.parameters()))
    store.bind(net)
    # nothing reachable from the store is a module or a parameter of the network
    reachable = list(vars(store).values()) + list(store.pruned.values())
    assert not any(isinstance(value, (nn.Module, nn.Parameter)) for value in reachable)
    assert set(vars(store)) == {"pruned"}
    clone = copy.deepcopy(store)
    assert torch.equal(clone.pruned["0.weight"], store.pruned["0.weight"])
    assert clone.pruned["0.weight"] is not store.pruned["0.weight"]
    # a pickled store is about the size of its masks alone, not of the network
    assert len(pickle.dumps(store)) < 2 * store.pruned["0.weight"].numel() + 1000
    assert f"pruned={int(store.pruned['0.weight'].sum())}/32" in repr(store)
