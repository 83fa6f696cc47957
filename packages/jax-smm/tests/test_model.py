"""MaxEntModel: sampling against exact enumeration, couplings, save and load."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import (
    Factor,
    FactorGraph,
    MaxEntModel,
    PersistentBuffer,
    SMMConfig,
    Variable,
    build_targets_from_marginals,
    estimate_moments,
    exact_marginals,
    fit_smm,
)
from jax_smm.couplings import zero_sum_gauge
from jax_smm.features import state_to_bins

N = 20_000  # samples per draw: one compilation of the sampler serves every test


@pytest.fixture(scope="module")
def fitted_model(make_graph):
    """A short fit of the mixed graph (categorical, continuous, triple factor)."""
    graph = make_graph(
        [2, 3, 4, 3, 2],
        [(0,), (1,), (2,), (3,), (4,), (0, 1), (1, 2), (2, 3), (3, 4), (0, 2, 4)],
        seed=3,
        continuous={2: (-1.0, 3.0)},
    )
    targets = build_targets_from_marginals(graph, exact_marginals(graph))
    zero = graph.with_theta([jnp.zeros_like(t) for t in graph.theta_groups])
    config = SMMConfig(num_iterations=100, num_chains=256, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converging fit must not warn
        fitted, history = fit_smm(zero, targets, config)
    return MaxEntModel.from_fit(fitted, history)


def max_z_score(graph, samples, exact):
    """Largest |p_hat - p| / sqrt(p (1 - p) / n) over every factor cell."""
    n = samples["cat"].shape[0]
    estimate = estimate_moments(graph, samples)
    worst = 0.0
    for fid, p in exact.items():
        p = np.asarray(p, np.float64)
        sigma = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
        worst = max(worst, float(np.max(np.abs(np.asarray(estimate[fid]) - p) / sigma)))
    return worst


def test_samples_reproduce_exact_marginals(fitted_model):
    """Both sampling paths (thinned snapshots of the stored chains, and one
    draw per chain) match enumeration within 5 standard errors per cell."""
    graph = fitted_model.graph
    exact = exact_marginals(graph)
    thinned = fitted_model.sample(N, jax.random.key(0))
    assert thinned["cat"].shape == (N, 4) and thinned["cat"].dtype == jnp.int32
    assert thinned["cont"].shape == (N, 1)
    assert max_z_score(graph, thinned, exact) < 5.0
    random_start = PersistentBuffer.initialize(graph, N, 1).states
    per_chain = fitted_model.sample(N, 2, initial_states=random_start)
    assert max_z_score(graph, per_chain, exact) < 5.0


def test_marginals_methods_agree_and_sampling_keeps_stored_chains(fitted_model):
    before = {k: v.copy() for k, v in fitted_model.states.items()}
    exact = fitted_model.marginals("exact")
    assert fitted_model.marginals().keys() == exact.keys()  # auto: small -> exact
    sampled = fitted_model.marginals("sample", n=N, rng_key=3)
    for fid, table in exact.items():
        assert np.isclose(table.sum(), 1.0, atol=1e-5)
        sigma = np.sqrt(np.maximum(table * (1 - table), 1e-12) / N)
        assert np.all(np.abs(sampled[fid] - table) < 5 * sigma)
    for name, value in before.items():
        np.testing.assert_array_equal(fitted_model.states[name], value)
    with pytest.raises(ValueError, match="method must be one of"):
        fitted_model.marginals("mcmc")


def test_sample_arguments_are_checked(fitted_model):
    for n in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n must be an integer"):
            fitted_model.sample(n, 0)
    with pytest.raises(ValueError, match="sweeps"):
        fitted_model.sample(10, 0, sweeps=0)
    with pytest.raises(ValueError, match="burn_in"):
        fitted_model.sample(10, 0, burn_in=-1)
    with pytest.raises(ValueError, match="rng_key must be a JAX PRNG key"):
        fitted_model.sample(10, None)
    with pytest.raises(ValueError, match="n = 100000000000 samples"):
        fitted_model.sample(10**11, 0)
    with pytest.raises(ValueError, match="history must be the FitHistory"):
        MaxEntModel.from_fit(fitted_model.graph, {"final_states": None})
    same = fitted_model.sample(N, 7)
    again = fitted_model.sample(N, jax.random.key(7))
    np.testing.assert_array_equal(same["cat"], again["cat"])


def test_energy_is_the_graph_log_potential_and_checks_states(fitted_model, reference):
    samples = {k: jnp.asarray(v) for k, v in fitted_model.states.items()}
    got = np.asarray(fitted_model.energy(samples))
    bins = np.asarray(state_to_bins(fitted_model.graph.plan, samples))
    want = [reference.energy(fitted_model.graph, b) for b in bins]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    bad = {"cat": samples["cat"].at[0, 0].set(7), "cont": samples["cont"]}
    with pytest.raises(ValueError, match=r"state\['cat'\]\[0, 0\] = 7"):
        fitted_model.energy(bad)


def planted_potts(n=8, k=3, planted=((0, 5), (2, 3), (4, 7)), seed=0):
    """All pairs of a K-state Potts graph: strong tables on ``planted`` pairs,
    gauge-only tables (``u(a) + v(b)``, zero coupling) and weak noise elsewhere."""
    rng = np.random.default_rng(seed)
    variables = [Variable.categorical(f"s{i}", k) for i in range(n)]
    factors = [Factor(i, (i,), rng.normal(size=k)) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if (i, j) in planted:
                table = 2.0 * rng.normal(size=(k, k))
            else:
                gauge = rng.normal(size=(k, 1)) + rng.normal(size=(1, k))
                table = 3.0 * gauge + 0.05 * rng.normal(size=(k, k))
            # half the pairs stored with the scope reversed
            scope, table = ((j, i), table.T) if (i + j) % 2 else ((i, j), table)
            factors.append(Factor(len(factors), scope, table))
    return FactorGraph(variables, factors)


def test_coupling_scores_rank_planted_pairs_first():
    planted = {(0, 5), (2, 3), (4, 7)}
    model = MaxEntModel(planted_potts(planted=tuple(planted)))
    top = model.top_couplings(3)
    assert {(i, j) for i, j, _ in top} == planted
    assert [s for *_, s in top] == sorted((s for *_, s in top), reverse=True)
    for apc in (True, False):
        scores = model.coupling_scores(apc=apc)
        assert scores.shape == (8, 8)
        np.testing.assert_array_equal(scores, scores.T)
        np.testing.assert_array_equal(np.diag(scores), 0.0)
        weakest_planted = min(scores[p] for p in planted)
        others = [scores[i, j] for i in range(8) for j in range(i + 1, 8)]
        assert sorted(others)[-4] < weakest_planted


def test_coupling_scores_literal_values():
    """Frobenius norms of centered tables by hand; no pair factor -> 0."""
    variables = [Variable.categorical(f"x{i}", 2) for i in range(3)]
    diag = np.array([[1.0, 0.0], [0.0, 0.0]])  # centered: +-0.25 -> norm 0.5
    graph = FactorGraph(
        variables,
        [
            Factor(0, (0, 1), diag),
            Factor(1, (1, 0), 2 * diag),  # same pair, transposed: adds up
            Factor(2, (1, 2), np.array([[0.0, 5.0], [1.0, 6.0]])),  # gauge only
        ],
    )
    np.testing.assert_allclose(
        zero_sum_gauge(diag), [[0.25, -0.25], [-0.25, 0.25]], atol=1e-12
    )
    scores = MaxEntModel(graph).coupling_scores(apc=False)
    np.testing.assert_allclose(scores[0, 1], 1.5, atol=1e-6)
    np.testing.assert_allclose(scores[1, 2], 0.0, atol=1e-6)
    assert scores[0, 2] == 0.0
    # APC: F_01 - F_0 F_1 / F with F_0 = F_1 = 0.75, F = 0.5 (means over others)
    apc = MaxEntModel(graph).coupling_scores()
    np.testing.assert_allclose(apc[0, 1], 1.5 - 0.75 * 0.75 / 0.5, atol=1e-6)
    assert apc[0, 2] == 0.0


def test_save_load_gives_identical_samples(fitted_model, tmp_path):
    path = fitted_model.save(tmp_path / "model.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp left
    loaded = MaxEntModel.load(path)
    assert loaded.config == fitted_model.config
    assert loaded.graph.variables == fitted_model.graph.variables
    for a, b in zip(loaded.graph.theta_groups, fitted_model.graph.theta_groups):
        np.testing.assert_array_equal(a, b)
    first = fitted_model.sample(N, 11)
    second = loaded.sample(N, 11)
    for name in ("cat", "cont"):
        np.testing.assert_array_equal(first[name], second[name])
    bare = MaxEntModel(fitted_model.graph)
    again = MaxEntModel.load(bare.save(tmp_path / "bare.model"))
    assert again.states is None and again.config is None


def rewrite_header(src, dst, **changes):
    with np.load(src) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays["header"].tobytes().decode())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **arrays)


def test_bad_files_are_refused_naming_the_file(fitted_model, tmp_path):
    good = fitted_model.save(tmp_path / "good.npz")
    data = bytearray(good.read_bytes())
    cases = {}
    cases["truncated.npz"] = bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    cases["flipped.npz"] = bytes(flipped)
    cases["text.npz"] = b"not a model at all\n"
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name):
            MaxEntModel.load(tmp_path / name)
    rewrite_header(good, tmp_path / "v2.npz", version=2)
    with pytest.raises(ValueError, match=r"v2\.npz.*version 2.*reads version 1"):
        MaxEntModel.load(tmp_path / "v2.npz")
    rewrite_header(good, tmp_path / "other.npz", format="someone-else")
    with pytest.raises(ValueError, match=r"other\.npz.*not a 'jax-smm-model' file"):
        MaxEntModel.load(tmp_path / "other.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"plain\.npz.*without a jax-smm header"):
        MaxEntModel.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        MaxEntModel.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is a folder"):
        fitted_model.save(tmp_path)
