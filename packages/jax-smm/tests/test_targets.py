import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import (
    LinearConstraint,
    build_targets_from_marginals,
    build_targets_from_samples,
    estimate_moments,
)
from jax_smm.compile import flatten_theta
from jax_smm.features import add_linear_terms, linear_expectations, wire_linear_features
from jax_smm.targets import compile_targets


def samples_of(graph, n, seed=0):
    rng = np.random.default_rng(seed)
    cat = np.stack(
        [
            rng.integers(0, graph.variables[v].cardinality, n)
            for v in graph.plan.cat_vars
        ],
        1,
    )
    cont = np.stack(
        [
            rng.uniform(graph.variables[v].low, graph.variables[v].high, n)
            for v in graph.plan.cont_vars
        ],
        1,
    )
    return {"cat": cat.astype(np.int32), "cont": cont.astype(np.float32)}


def counted(graph, samples, weights=None):
    """Empirical factor tables by np.add.at on explicit bins (independent reference)."""
    n = samples["cat"].shape[0]
    weights = np.ones(n) if weights is None else np.asarray(weights, float)
    bins = np.zeros((n, graph.num_vars), int)
    for v, (kind, pos) in graph.var_index.items():
        if kind == "cat":
            bins[:, v] = samples["cat"][:, pos]
        else:
            var = graph.variables[v]
            width = (var.high - var.low) / var.num_bins
            bins[:, v] = np.minimum(
                ((samples["cont"][:, pos] - var.low) // width).astype(int),
                var.num_bins - 1,
            )
    out = {}
    for f in graph.factors:
        table = np.zeros(f.table_shape)
        np.add.at(table, tuple(bins[:, v] for v in f.var_ids), weights)
        out[f.id] = table / weights.sum()
    return out


def test_targets_from_samples_match_counting(mixed_graph):
    samples = samples_of(mixed_graph, 500)
    weights = np.random.default_rng(1).uniform(0.1, 2.0, 500)
    for w in (None, weights):
        targets = build_targets_from_samples(mixed_graph, samples, sample_weights=w)
        want = counted(mixed_graph, samples, w)
        for fid, table in want.items():
            np.testing.assert_allclose(targets.moments[fid], table, atol=1e-6)


def test_pseudocount_mixes_in_uniform(mixed_graph):
    samples = samples_of(mixed_graph, 200)
    raw = counted(mixed_graph, samples)
    targets = build_targets_from_samples(
        mixed_graph, samples, pseudocount=0.1, factor_ids=[5, 9]
    )
    assert set(targets.moments) == {5, 9}
    for fid in (5, 9):
        want = 0.9 * raw[fid] + 0.1 / raw[fid].size
        np.testing.assert_allclose(targets.moments[fid], want, atol=1e-6)


def test_estimate_moments_averages_every_leading_axis(mixed_graph):
    samples = samples_of(mixed_graph, 60)
    stacked = {k: v.reshape(3, 20, -1) for k, v in samples.items()}  # (sweeps, chains)
    got = estimate_moments(mixed_graph, stacked)
    for fid, table in counted(mixed_graph, samples).items():
        np.testing.assert_allclose(got[fid], table, atol=1e-6)


def test_bad_marginals_and_samples(mixed_graph):
    good = {5: np.full((2, 3), 1 / 6)}
    build_targets_from_marginals(mixed_graph, good)
    with pytest.raises(ValueError, match=r"marginal_tables\[5\].*sum to 1"):
        build_targets_from_marginals(mixed_graph, {5: np.full((2, 3), 0.2)})
    with pytest.raises(ValueError, match="non-negative"):
        bad = np.full((2, 3), 1 / 6)
        bad[0, 0] -= 0.3
        bad[0, 1] += 0.3  # still sums to 1
        build_targets_from_marginals(mixed_graph, {5: bad})
    with pytest.raises(ValueError, match="shape"):
        build_targets_from_marginals(mixed_graph, {5: np.full((3, 2), 1 / 6)})
    with pytest.raises(ValueError, match="factor_id 42"):
        build_targets_from_marginals(mixed_graph, {42: np.ones(1)})
    samples = samples_of(mixed_graph, 10)
    samples["cat"][3, 1] = 7
    with pytest.raises(ValueError, match=r"sample_states\['cat'\]\[3, 1\] = 7"):
        build_targets_from_samples(mixed_graph, samples)
    samples = samples_of(mixed_graph, 10)
    samples["cont"][2, 0] = 5.0
    with pytest.raises(ValueError, match=r"sample_states\['cont'\]\[2, 0\]"):
        build_targets_from_samples(mixed_graph, samples)
    with pytest.raises(ValueError, match="pseudocount"):
        build_targets_from_samples(
            mixed_graph, samples_of(mixed_graph, 10), pseudocount=1.0
        )


def test_linear_constraint_validation_and_wiring(mixed_graph):
    g = mixed_graph
    with pytest.raises(ValueError, match="outside the range"):
        LinearConstraint((0,), np.array([0.0, 1.0]), 1.5)
    with pytest.raises(ValueError, match="no factor over var_ids"):
        wire_linear_features(
            g, [LinearConstraint((0, 3), np.zeros((2, 3)), 0.0).feature]
        )
    with pytest.raises(ValueError, match="weights shape"):
        wire_linear_features(
            g, [LinearConstraint((0, 1), np.zeros((3, 2)), 0.0).feature]
        )
    # scope given in reverse order of the factor (1, 0) -> transposed onto factor 5
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    c = LinearConstraint((1, 0), w, 2.0)
    wiring = wire_linear_features(g, [c.feature])
    flat = flatten_theta(g.theta_groups)
    out = add_linear_terms(flat, jnp.asarray([0.5]), wiring)
    start, stop = g.cell_range(5)
    np.testing.assert_allclose(
        out[start:stop], flat[start:stop] + 0.5 * w.T.ravel(), atol=1e-6
    )
    np.testing.assert_allclose(
        np.delete(out, np.arange(start, stop)), np.delete(flat, np.arange(start, stop))
    )
    # E[W] from a model table
    table = np.random.default_rng(0).dirichlet(np.ones(6)).reshape(2, 3)
    moments = np.zeros(g.plan.num_params, np.float32)
    moments[start:stop] = table.ravel()
    np.testing.assert_allclose(
        linear_expectations(jnp.asarray(moments), wiring),
        [(w.T * table).sum()],
        rtol=1e-5,
    )
    compiled = compile_targets(g, build_targets_from_marginals(g, {5: table}, [c]))
    assert float(compiled.mask.sum()) == 6 and float(compiled.linear_values[0]) == 2.0
