"""The chromatic kernel's conditionals and cell counts against plain references.

Every pair path (binary, select, gather, one-hot, dense) is checked on random
states: block logits against the per-row gather reference, binary draws against
the sigmoid of the logit difference, and the cell counts of every counting
method against ``np.add.at`` over the factors' table indices.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm.energy import extended_params
from jax_smm.mcmc import ChromaticGibbs, conditionals, counting
from jax_smm.mcmc.kernels import bins_to_rows

GRAPHS = {
    # binary pairwise chain plus an isolated binary variable
    "binary": ([2] * 5, [(0,), (4,), (0, 1), (1, 2), (2, 3), (3, 0)]),
    # mixed cardinalities and a one-bin continuous variable (shape (1, 3))
    "pairs": (
        [2, 3, 4, 3, 1],
        [(0,), (1,), (2,), (0, 1), (1, 2), (2, 3), (3, 0), (4, 1)],
    ),
    # the same with a triple factor
    "triples": (
        [2, 3, 4, 3, 1],
        [(0,), (1,), (2,), (0, 1), (1, 2), (2, 3), (3, 0), (0, 2, 3), (4, 1)],
    ),
    # all pairs (the dense path when forced) with a triple on top
    "all_pairs": (
        [3, 2, 3, 3, 2],
        [(i,) for i in range(5)]
        + list(itertools.combinations(range(5), 2))
        + [(0, 1, 2)],
    ),
}

# (graph, thresholds to patch, expected pair path)
PATHS = {
    "binary": ("binary", {}, "binary"),
    "select": ("pairs", {}, "select"),
    "table": ("triples", {}, "table"),
    "table_gather": ("triples", {"SELECT_MAX_CARD": 2}, "table"),
    "onehot": ("all_pairs", {"UNROLLED_DEGREE": 1, "DENSE_MAX_WIDTH": 0}, "onehot"),
    "dense": ("all_pairs", {"UNROLLED_DEGREE": 1}, "dense"),
}


def build(make_graph, name, seed=0):
    cards, scopes = GRAPHS[name]
    continuous = {i: (0.0, 1.0) for i, k in enumerate(cards) if k == 1}
    return make_graph(cards, scopes, seed=seed, continuous=continuous)


def random_bins(graph, chains, seed):
    rng = np.random.default_rng(seed)
    cards = [v.cardinality for v in graph.variables]
    return np.stack([rng.integers(0, k, chains) for k in cards], 1).astype(np.int32)


def forced_path(monkeypatch, make_graph, path):
    name, patches, expected = PATHS[path]
    for attr, value in patches.items():
        monkeypatch.setattr(conditionals, attr, value)
    graph = build(make_graph, name)
    assert conditionals.pair_path(graph.plan) == expected
    return graph


@pytest.mark.parametrize("path", ["select", "table", "table_gather", "onehot", "dense"])
def test_block_logits_match_the_row_reference(path, monkeypatch, make_graph):
    monkeypatch.setattr(conditionals, "MIN_SEGMENT_ROWS", 1)  # every row range
    graph = forced_path(monkeypatch, make_graph, path)
    plan = graph.plan
    size = plan.color_size

    @jax.jit
    def logits_and_reference(groups, bins):
        tables = conditionals.sampler_tables(plan, extended_params(groups))
        rows = bins_to_rows(plan, bins)
        state = conditionals.chain_state(plan, rows)
        blocks = []
        for c in range(plan.num_colors):
            for segment in conditionals.block_segments(plan):
                logits = conditionals.block_logits(
                    plan, tables, state, c * size, segment
                )
                blocks.append(jnp.stack(logits, 1) if path == "select" else logits)
        reference = jax.vmap(lambda r: conditionals.row_logits(plan, tables, rows, r))
        return jnp.concatenate(blocks), reference(jnp.arange(plan.num_rows))

    bins = random_bins(graph, 64, 1)
    logits, expected = logits_and_reference(graph.theta_groups, bins)  # (R, K, C)
    real = np.asarray(plan.var_of_row) < graph.num_vars  # not padding rows
    np.testing.assert_allclose(
        np.asarray(logits)[real], np.asarray(expected)[real], rtol=1e-5, atol=1e-5
    )


def test_binary_draw_is_the_sigmoid_of_the_logit_difference(monkeypatch, make_graph):
    monkeypatch.setattr(conditionals, "MIN_SEGMENT_ROWS", 1)
    graph = build(make_graph, "binary")
    plan = graph.plan
    assert conditionals.pair_path(plan) == "binary"
    size = plan.color_size

    @jax.jit
    def draws_and_logits(groups, bins, rng_key):
        tables = conditionals.sampler_tables(plan, extended_params(groups))
        rows = bins_to_rows(plan, bins)
        uniforms = jax.random.uniform(rng_key, (plan.num_colors, size, bins.shape[0]))
        new = [
            conditionals.binary_block_draw(
                plan,
                tables.binary,
                rows,
                c * size,
                segment,
                uniforms[c, segment.start : segment.stop],
            )
            for c in range(plan.num_colors)
            for segment in conditionals.block_segments(plan)
        ]
        reference = jax.vmap(lambda r: conditionals.row_logits(plan, tables, rows, r))
        return jnp.concatenate(new), reference(jnp.arange(plan.num_rows)), uniforms

    bins = random_bins(graph, 256, 2)
    new, logits, uniforms = draws_and_logits(
        graph.theta_groups, bins, jax.random.key(0)
    )
    new = np.asarray(new)
    p1 = np.asarray(jax.nn.sigmoid(logits[:, 1] - logits[:, 0]))
    u = np.asarray(uniforms).reshape(p1.shape)
    real = np.asarray(plan.var_of_row) < graph.num_vars
    clear = (np.abs(u - p1) > 1e-5) & real[:, None]  # away from the boundary
    np.testing.assert_array_equal(new[clear], (u < p1)[clear])


def reference_counts(graph, bins_batches):
    counts = np.zeros(graph.plan.num_params)
    for bins in bins_batches:
        for f in graph.factors:
            start, _ = graph.cell_range(f.id)
            index = np.ravel_multi_index(
                tuple(bins[:, v] for v in f.var_ids), f.table_shape
            )
            np.add.at(counts, start + index, 1)
    return counts


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("binary", {"binary"}),
        ("table", {"scatter"}),
        ("dense", {"gram", "scatter"}),
    ],
)
def test_counts_equal_scatter_counts(path, methods, monkeypatch, make_graph):
    graph = forced_path(monkeypatch, make_graph, path)
    plan = graph.plan
    assert {g.method for g in counting.factor_groups(plan)} == methods
    batches = [random_bins(graph, 96, seed) for seed in (3, 4, 5)]

    @jax.jit
    def count(bins_batches):
        stats = counting.init_stats(plan)
        for bins in bins_batches:
            rows = bins_to_rows(plan, bins)
            state = conditionals.chain_state(plan, rows)
            stats = counting.add_counts(plan, stats, state)
        return counting.counts_from_stats(plan, stats, len(bins_batches) * 96)

    counts = count(batches)
    np.testing.assert_array_equal(np.asarray(counts), reference_counts(graph, batches))


@pytest.mark.parametrize("path", ["select", "table", "dense"])
def test_paths_sample_exact_distribution(path, monkeypatch, make_graph, reference):
    # several row ranges per block; on "select" each block is written late
    monkeypatch.setattr(conditionals, "MIN_SEGMENT_ROWS", 1)
    graph = forced_path(monkeypatch, make_graph, path)
    assert conditionals.defer_writes(graph.plan) == (path == "select")
    exact = reference.marginals(graph)
    plan, kernel = graph.plan, ChromaticGibbs()

    @jax.jit
    def run(groups, bins, rng_key):
        theta_ext = extended_params(groups)
        burn_rng_key, rng_key = jax.random.split(rng_key)
        bins, _, _ = kernel.sample_bins(plan, theta_ext, bins, burn_rng_key, 20)
        return kernel.sample_bins(plan, theta_ext, bins, rng_key, 300)

    _, counts, info = run(
        graph.theta_groups, random_bins(graph, 512, 6), jax.random.key(0)
    )
    sampled = graph.unstack_tables(np.asarray(counts) / (300 * 512))
    error = max(float(np.abs(sampled[k] - exact[k]).max()) for k in exact)
    assert error < 0.02
    movable = np.asarray(graph.plan.cards) > 1
    assert np.all(np.asarray(info.move_rate)[movable] > 0)


def test_single_state_variables_stay_put(make_graph):
    # max_card = 1 (one-bin continuous variables): not the binary path
    graph = make_graph(
        [1, 1, 1], [(0, 1), (1, 2)], continuous={i: (0, 1) for i in range(3)}
    )
    assert conditionals.pair_path(graph.plan) == "select"
    bins, counts, _ = ChromaticGibbs().sample_bins(
        graph.plan,
        extended_params(graph.theta_groups),
        jnp.zeros((4, 3), jnp.int32),
        jax.random.key(0),
        3,
    )
    assert not np.any(np.asarray(bins))
    np.testing.assert_array_equal(np.asarray(counts), [12.0, 12.0])
