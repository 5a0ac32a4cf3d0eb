"""The faster code of a pruning step gives exactly what the code it replaced, or the general path, gives.

* ``reserve_paths`` used to follow each output unit's chain alone, one small
  tensor operation (and one device synchronization) per unit and layer; it
  now follows every output's chain together, one layer at a time. The
  reference below is that per-unit walk, kept as the specification (with the
  in-bounds tap preference of convolutions added since), and the two are
  compared on random networks, masks (dead units, dead columns, whole layers
  cut) and scores with ties.
* ``unreachable_outputs`` of a plain chain reads the unit graph instead of
  running a structural copy of the network: compared with the probe.
* The lowest scores are found by selection instead of a stable sort; LAMP
  scores of a whole layer (accelerators) equal those of its gathered
  survivors (CPU); ``k`` networks stacked (batched cross-validation) get the
  paths and masks each gets alone.
"""

import pytest
import torch
from torch import nn

from skprune import MLP, ConvNet
from skprune.nn._layers import iter_prunable_weights
from skprune.nn._paths import (
    _chain_of,
    _chain_reach,
    _feeders,
    _probed_unreachable,
    reserve_paths,
    unreachable_outputs,
)


# ------------------------------------------------------------- the reference: the former per-unit walk
def _in_bounds(layer):
    """Taps of a zero-padded stride-1 Conv2d that read inside the input at every position (flat)."""
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    rows = [ph <= i <= kh - 1 - ph for i in range(kh)]
    cols = [pw <= j <= kw - 1 - pw for j in range(kw)]
    return torch.tensor([[r and c for c in cols] for r in rows]).reshape(-1)


def _incoming(score, keep, unit, block, n_sources, layer):
    none = torch.tensor(-torch.inf, dtype=torch.float64, device=score.device)
    row = torch.where(keep[unit], score[unit].to(torch.float64), none)
    per_input = row.reshape(row.shape[0], -1)
    if isinstance(layer, nn.Conv2d):  # a unit with a kept in-bounds tap keeps to such taps
        on_safe = per_input.masked_fill(~_in_bounds(layer), -torch.inf)
        if (on_safe > -torch.inf).any():
            per_input = on_safe
    best_pos = per_input.argmax(dim=1)
    best = per_input.gather(1, best_pos[:, None]).squeeze(1)
    if block > 1 and best.numel() == n_sources * block:
        by_source = best.reshape(n_sources, block)
        src_pos = by_source.argmax(dim=1)
        best = by_source.gather(1, src_pos[:, None]).squeeze(1)
        return best, lambda s: int(s * block + src_pos[s]), best_pos
    return best, lambda s: int(s), best_pos


def _kept(layers, keep, layer_name):
    param, layer = layers[layer_name]
    return keep.get(param, torch.ones_like(layer.weight, dtype=torch.bool))


def _reached_inputs(layer_name, layers, keep, feeder, first, reach):
    source = feeder.get(layer_name)
    if source is None:
        if layer_name != first:
            return None
        return torch.ones(layers[layer_name][1].weight.shape[1], dtype=torch.bool)
    producer, block = source
    if producer not in reach:
        reach[producer] = torch.zeros(0, dtype=torch.bool)
        inputs = _reached_inputs(producer, layers, keep, feeder, first, reach)
        kept = _kept(layers, keep, producer)
        kept = kept.reshape(kept.shape[0], kept.shape[1], -1).any(dim=2)
        if inputs is not None:
            kept = kept & inputs.to(kept.device)[None, :]
        reach[producer] = kept.any(dim=1).cpu()
    units = reach[producer]
    return units.repeat_interleave(block) if units.numel() else None


def _walk_one(layer_name, unit, layers, scores, keep, reserved, feeder, first, reach):
    chain = []
    while True:
        param, layer = layers[layer_name]
        weight = layer.weight.detach()
        score = scores.get(param, weight.abs())
        kept = keep.get(param, torch.ones_like(weight, dtype=torch.bool))
        source = feeder.get(layer_name)
        if source is None and layer_name != first:
            return
        n_sources = weight.shape[1] if source is None else layers[source[0]][1].weight.shape[0]
        inputs = _reached_inputs(layer_name, layers, keep, feeder, first, reach)
        if inputs is not None and inputs.numel() == kept.shape[1]:
            kept = kept & inputs.to(kept.device).reshape(1, -1, *([1] * (kept.dim() - 2)))
        block = 1 if source is None else source[1]
        best, entry_of, best_pos = _incoming(score, kept, unit, block, n_sources, layer)
        if not (best > -torch.inf).any():
            return
        src = int(best.argmax())
        column = entry_of(src)
        chain.append((param, unit, column, int(best_pos[column])))
        if source is None:
            break
        layer_name, unit = source[0], src
    for param, unit, column, pos in chain:
        if param in reserved:
            reserved[param][unit].view(reserved[param].shape[1], -1)[column, pos] = True


def _reference(module, scores, keep):
    reserved = {name: torch.zeros_like(k, dtype=torch.bool) for name, k in keep.items()}
    layers = {name: (param, layer) for param, name, layer in iter_prunable_weights(module)}
    first, feeder, reach = next(iter(layers)), _feeders(layers), {}
    out_layer = list(layers)[-1]
    for unit in range(layers[out_layer][1].weight.shape[0]):
        _walk_one(out_layer, unit, layers, scores, keep, reserved, feeder, first, reach)
    return reserved


# ------------------------------------------------------------------------------------ the cases
def _random_case(module, seed, density, ties, cut_units):
    generator = torch.Generator().manual_seed(seed)
    scores, keep = {}, {}
    for index, (name, _, layer) in enumerate(iter_prunable_weights(module)):
        shape = layer.weight.shape
        score = torch.rand(shape, generator=generator)
        if ties:  # few distinct values: argmax must take the first of equal ones, as before
            score = (score * 3).floor()
        kept = torch.rand(shape, generator=generator) < density
        if cut_units and index == 0:  # hidden units that read no input
            kept[: shape[0] // 2] = False
        if cut_units and index == 1:  # a whole input column of the next layer pruned
            kept[:, 0] = False
        if index % 2 == 0:  # a layer without scores is ranked by magnitude
            scores[name] = score
        keep[name] = kept
    return scores, keep


MODULES = {
    "mlp": lambda: nn.Sequential(nn.Linear(7, 9), nn.ReLU(), nn.Linear(9, 6), nn.Tanh(), nn.Linear(6, 4)),
    "wide_output": lambda: nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 12)),
    "convnet": lambda: ConvNet(64, 5, input_shape=(1, 8, 8), channels=(3, 4), hidden=6),
    "convnet_no_pool": lambda: ConvNet(16, 3, input_shape=(1, 4, 4), channels=(2,), hidden=5, pool=False),
}


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("density", [1.0, 0.5, 0.15, 0.03])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("cut_units", [False, True])
def test_the_vectorized_walk_reserves_exactly_what_the_per_unit_walk_reserved(name, density, ties, cut_units):
    torch.manual_seed(0)
    module = MODULES[name]()
    for seed in range(3):
        scores, keep = _random_case(module, seed, density, ties, cut_units)
        expected = _reference(module, scores, keep)
        got = reserve_paths(module, scores, keep)
        assert set(got) == set(expected)
        for param in expected:
            assert torch.equal(got[param], expected[param]), (param, seed)
    # the cases are not all empty: some reserve weights
    assert any(expected[p].any() for p in expected) or density < 0.1


# --------------------------------------------------- the check on a chain without running the probe
CHAINS = {
    "mlp_relu": lambda: MLP(6, 4, hidden_layer_sizes=(8, 5)),
    "mlp_tanh_dropout": lambda: MLP(6, 3, hidden_layer_sizes=(7,), activation="tanh", dropout=0.3),
    "mlp_logistic_blocks": lambda: MLP(5, 4, hidden_layer_sizes=(6,), activation="logistic", n_blocks=2),
    "mlp_gelu_blocks": lambda: MLP(5, 2, hidden_layer_sizes=(4, 6), activation="gelu", n_blocks=1),
    "sequential": lambda: nn.Sequential(
        nn.Linear(5, 6), nn.LeakyReLU(), nn.Sequential(nn.Linear(6, 4), nn.ELU()), nn.Linear(4, 3)
    ),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
@pytest.mark.parametrize("density", [1.0, 0.4, 0.2, 0.08])
def test_unreachable_outputs_of_a_plain_chain_equal_what_the_structural_probe_finds(name, density):
    torch.manual_seed(0)
    module = CHAINS[name]().eval()
    layers = list(iter_prunable_weights(module))
    assert _chain_of(module) is not None  # the fast path applies to these networks
    found_cut = 0
    for seed in range(6):
        generator = torch.Generator().manual_seed(seed)
        alive = {n: torch.rand(layer.weight.shape, generator=generator) < density for n, _, layer in layers}
        expected = _probed_unreachable(module, alive, layers[0][2])
        assert unreachable_outputs(module, alive) == expected, seed
        found_cut += bool(expected)
    assert found_cut or density > 0.3  # sparse cases do cut outputs: both answers are compared on cuts


def test_a_network_that_is_not_a_plain_chain_is_checked_by_the_probe():
    class Doubled(nn.Module):  # a forward the unit graph does not describe
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(3, 2))

        def forward(self, X):
            return self.layers(X) * 0

    assert _chain_of(Doubled()) is None
    assert _chain_reach(nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=1)), "", {}, None) is None
    assert unreachable_outputs(Doubled()) == [0, 1]  # the probe sees the outputs never move


# ------------------------------------------------ the lowest scores by selection, as a stable sort takes them
@pytest.mark.parametrize("distinct", [2, 5, 1000])
def test_the_lowest_scores_found_by_selection_are_the_first_of_a_stable_sort(distinct):
    from skprune.pruners._allocation import _lowest

    generator = torch.Generator().manual_seed(distinct)
    for size in (1, 7, 300):
        scores = torch.randint(0, distinct, (size,), generator=generator).to(torch.float64)
        scores[torch.rand(size, generator=generator) < 0.1] = -torch.inf  # entries pruned before
        scores[torch.rand(size, generator=generator) < 0.1] = torch.inf  # protected entries
        for k in sorted({1, size // 3 or 1, size // 2 or 1, size}):
            expected = torch.zeros(size, dtype=torch.bool)
            expected[torch.argsort(scores, stable=True)[:k]] = True
            assert torch.equal(_lowest(scores, k), expected), (size, k)


# ------------------------------------------- LAMP scores without gathering the survivors (accelerators)
@pytest.mark.parametrize("case", ["magnitudes", "ties", "negative", "infinite", "all_pruned", "none_finite"])
def test_lamp_scores_of_the_whole_layer_equal_those_of_the_gathered_survivors(case):
    from skprune.pruners._allocation import _lamp_scores

    generator = torch.Generator().manual_seed(len(case))
    score = torch.rand(40, 30, generator=generator)
    keep = torch.rand(40, 30, generator=generator) < 0.6
    if case == "ties":
        score = (score * 4).floor()  # zeros among the survivors, and many equal squares
    elif case == "negative":
        score = score - 0.5
    elif case == "infinite":
        score[:3] = torch.inf
        score[3:5] = -torch.inf
    elif case == "all_pruned":
        keep[:] = False
    elif case == "none_finite":
        score = torch.where(score > 0.5, torch.inf, -torch.inf)
    score, keep = score.unsqueeze(0), keep.unsqueeze(0)  # one network
    gathered = _lamp_scores(score, keep, gather=True)
    whole = _lamp_scores(score, keep, gather=False)
    assert torch.equal(gathered, whole)
    assert torch.equal(torch.isinf(gathered) & (gathered < 0), ~keep)  # pruned entries (only) at -inf


# ------------------------------------------ k networks at once (batched cross-validation's folds)
@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("allocation", ["lamp", "global", "erk", "layer"])
def test_paths_and_masks_of_stacked_networks_equal_those_of_each_network_alone(name, allocation):
    from skprune.nn._paths import reserve_paths_folds
    from skprune.pruners._allocation import allocate, allocate_folds

    torch.manual_seed(0)
    modules = [MODULES[name]() for _ in range(3)]  # same architecture, different weights
    cases = [
        _random_case(m, seed, density, True, seed == 1)
        for seed, (m, density) in enumerate(zip(modules, (0.6, 0.2, 0.05)))
    ]
    # layers without scores (every other one here): each network's weight magnitudes choose the path
    partial_names = [n for n in cases[0][0]]
    partial = reserve_paths_folds(
        modules,
        {n: torch.stack([s[n] for s, _ in cases]) for n in partial_names},
        {n: torch.stack([k[n] for _, k in cases]) for n in cases[0][1]},
    )
    for i, (module, (scores, keep)) in enumerate(zip(modules, cases)):
        alone = reserve_paths(module, scores, keep)
        for n in alone:
            assert torch.equal(partial[n][i], alone[n]), (n, i)
    for scores, _ in cases:  # the stacked call needs every network to score the same layers
        for n, _, layer in iter_prunable_weights(modules[0]):
            scores.setdefault(n, torch.rand(layer.weight.shape))
    names = [n for n, _, _ in iter_prunable_weights(modules[0])]
    stacked_scores = {n: torch.stack([s[n] for s, _ in cases]) for n in names}
    stacked_keep = {n: torch.stack([k[n] for _, k in cases]) for n in names}
    reserved = reserve_paths_folds(modules, stacked_scores, stacked_keep)
    masks = allocate_folds(allocation, names, stacked_scores, stacked_keep, 0.9, names[-1], reserved)
    for i, (module, (scores, keep)) in enumerate(zip(modules, cases)):
        alone = reserve_paths(module, scores, keep)
        alone_masks = allocate(allocation, names, scores, keep, 0.9, names[-1], alone)
        for n in names:
            assert torch.equal(reserved[n][i], alone[n]), (n, i)
            assert torch.equal(masks[n][i], alone_masks[n]), (n, i)
