"""Bad input is refused with an error naming the argument."""

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
    Targets,
    Variable,
    build_targets_from_marginals,
    energy,
    estimate_moments,
    exact_marginals,
    fit_smm,
    plot_history,
)
from jax_smm.demo import main as demo_main

QUICK = dict(num_iterations=5, num_chains=16, progress=False)


@pytest.fixture
def binary_pair(make_graph):
    return make_graph([2, 2], [(0,), (1,), (0, 1)], seed=1)


def test_sizes_that_cannot_fit_are_refused_before_allocating(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    config = SMMConfig(num_iterations=1, num_chains=10**9, progress=False)
    with pytest.raises(ValueError, match=r"num_chains = 1000000000 .* needs about"):
        fit_smm(mixed_graph, targets, config)
    with pytest.raises(ValueError, match=r"num_chains = 1000000000 .* per chain"):
        PersistentBuffer.initialize(mixed_graph, 10**9, 0)
    with pytest.raises(ValueError, match=r"n = 100000000000 samples"):
        MaxEntModel(mixed_graph).sample(10**11, 0)


def test_compile_builds_only_the_tables_the_graph_uses():
    """One 128-state variable and 60 binary pairs: no K^3 triple table (it was
    0.7 GB), and an impossible triple table is refused with its estimate."""
    variables = [Variable.categorical("big", 128)]
    variables += [Variable.categorical(f"b{i}", 2) for i in range(120)]
    factors = [Factor(0, (0,), np.zeros(128))]
    factors += [
        Factor(1 + p, (1 + 2 * p, 2 + 2 * p), np.ones((2, 2))) for p in range(60)
    ]
    graph = FactorGraph(variables, factors)
    plan = graph.plan
    assert plan.triple_degree == 0 and plan.triple_cells.size == 0
    assert sum(a.nbytes for a in jax.tree.leaves(plan)) < 20 * 2**20
    huge = [Variable.categorical("big", 4096), *variables[1:4]]
    with pytest.raises(ValueError, match=r"compiled sampler tables .*K = 4096.*needs"):
        FactorGraph(huge, [Factor(0, (1, 2, 3), np.zeros((2, 2, 2)))])


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        (-1e39, 0.0, "finite in float32"),
        (0.0, 1e39, "finite in float32"),
        (-3e38, 3e38, "width high - low"),
        (1.0, 1.0 + 1e-12, "width high - low"),
    ],
)
def test_continuous_bounds_must_fit_float32(low, high, match):
    with pytest.raises(ValueError, match=match):
        Variable.continuous("t", low, high, 4)


def test_inconsistent_targets_warn_up_front_and_after_the_fit(binary_pair):
    pair = np.array([[0.4, 0.1], [0.1, 0.4]])  # margin of x0: (0.5, 0.5)
    tables = {0: np.array([0.99, 0.01]), 1: np.array([0.5, 0.5]), 2: pair}
    with pytest.warns(RuntimeWarning, match="factor 2's margin of variable 0"):
        targets = build_targets_from_marginals(binary_pair, tables)
    config = SMMConfig(num_iterations=150, num_chains=256, progress=False)
    with pytest.warns(RuntimeWarning, match=r"missed by far more .* factor \d cell"):
        fit_smm(binary_pair, targets, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consistent tables: no warning
        build_targets_from_marginals(binary_pair, exact_marginals(binary_pair))


def test_energy_and_estimate_moments_check_states(binary_pair):
    for bad in (7, -1):
        state = {"cat": jnp.array([[0, bad]]), "cont": jnp.zeros((1, 0))}
        with pytest.raises(ValueError, match=rf"state\['cat'\]\[0, 1\] = {bad}"):
            energy(binary_pair, state)
        with pytest.raises(ValueError, match=rf"states\['cat'\]\[0, 1\] = {bad}"):
            estimate_moments(binary_pair, {"cat": np.array([[0, bad]])})
    with pytest.raises(ValueError, match="must have 2 columns"):
        energy(binary_pair, {"cat": jnp.zeros((4, 3), jnp.int32)})
    with pytest.raises(ValueError, match="must hold integers"):
        energy(binary_pair, {"cat": jnp.zeros(2)})
    assert energy(binary_pair, {"cat": jnp.array([1, 0])}).shape == ()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Variable.categorical("a", 2.7), "num_states must be an integer"),
        (lambda: Variable.categorical("a", True), "num_states must be an integer"),
        (lambda: Variable.categorical("a", 2**40), r"\[2, 2147483647\]"),
        (lambda: Variable.continuous("c", 0, 1, 2.0), "num_bins must be an integer"),
        (lambda: Factor(0, (0.7,), np.zeros(2)), r"var_ids\[0\] must be an integer"),
        (lambda: Factor(0, (True,), np.zeros(2)), r"var_ids\[0\] must be an integer"),
        (lambda: Factor(1.0, (0,), np.zeros(2)), "Factor id must be an integer"),
        (lambda: Factor(0, (0,), np.array(["a", "b"])), "theta must be a numeric"),
    ],
)
def test_non_integers_and_strings_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"learning_rate": "0.1"}, "learning_rate must be a finite real number"),
        ({"seed": None}, "seed must be an integer"),
        ({"seed": 2**32}, "seed must be an integer in"),
        ({"num_chains": 2.7}, "num_chains must be an integer"),
        ({"num_iterations": True}, "num_iterations must be an integer"),
        ({"progress": "yes"}, "progress must be True or False"),
        ({"lr": 0.1, "chains": 3}, r"unknown keys \['chains', 'lr'\]"),
    ],
)
def test_config_types_are_checked_not_coerced(settings, match, binary_pair):
    with pytest.raises(ValueError, match=match):
        SMMConfig.from_dict(settings)
    targets = build_targets_from_marginals(binary_pair, exact_marginals(binary_pair))
    with pytest.raises(ValueError, match=match):
        fit_smm(binary_pair, targets, settings)


def test_fit_accepts_a_dict_config_and_returns_a_fit_history(binary_pair):
    targets = build_targets_from_marginals(binary_pair, exact_marginals(binary_pair))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 5 iterations: unfitted
        _, history = fit_smm(binary_pair, targets, QUICK)
    assert history.config == SMMConfig(**QUICK)
    np.testing.assert_array_equal(history.iteration, np.arange(5))
    for name in ("max_error", "mean_error", "runtime"):
        assert getattr(history, name).shape == (5,)
        assert history[name] is getattr(history, name)
    assert np.all(np.diff(history.runtime) >= 0)
    assert history.final_states["cat"].shape == (16, 2)
    first, second = history[:2]  # still a tuple
    assert first is history.iteration and second is history.max_error
    with pytest.raises(KeyError, match="final_states"):
        history["states"]


def test_keys_tables_and_foreign_targets(binary_pair, mixed_graph, tmp_path):
    with pytest.raises(ValueError, match="rng_key must be a JAX PRNG key"):
        PersistentBuffer.initialize(binary_pair, 8, None)
    with pytest.raises(ValueError, match=r"marginal_tables\[0\] must be a numeric"):
        build_targets_from_marginals(binary_pair, {0: np.array(["0.5", "0.5"])})
    foreign = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    with pytest.raises(ValueError, match="built for another graph"):
        fit_smm(binary_pair, foreign, QUICK)
    with pytest.raises(ValueError, match="built for another graph"):
        fit_smm(binary_pair, Targets({0: np.full((2, 2), 0.25)}), QUICK)
    exact = exact_marginals(mixed_graph)
    half = {fid: np.asarray(t, np.float16) for fid, t in exact.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float16 rounding is not an inconsistency
        targets = build_targets_from_marginals(mixed_graph, half)
    for fid, table in targets.moments.items():
        assert table.dtype == np.float32 and np.isclose(table.sum(), 1.0, atol=1e-6)
        np.testing.assert_allclose(table, exact[fid], atol=2e-3)
    history = {"iteration": [0, 1], "max_error": [1, 0.5], "mean_error": [1, 0.2]}
    with pytest.raises(ValueError, match="is a folder"):
        plot_history(history, tmp_path)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--iterations", "0"], "--iterations: must be >= 1"),
        (["--seed", "-1"], "--seed: must be >= 0"),
        (["--seed", "4294967296"], "--seed: must be >= 0 and <= 4294967295"),
    ],
)
def test_demo_arguments_are_checked_before_the_fit(argv, match, capsys):
    with pytest.raises(SystemExit):
        demo_main(argv)
    assert match in capsys.readouterr().err


def test_demo_refuses_a_file_as_output_folder(tmp_path, capsys):
    target = tmp_path / "taken.png"
    target.write_bytes(b"")
    with pytest.raises(SystemExit):
        demo_main(["--out", str(target)])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_stale_buffer_refuses_get_states(binary_pair):
    buffer = PersistentBuffer.initialize(binary_pair, 8, 0)
    start = buffer.get_states()
    new, _, _ = buffer.sample_step(binary_pair, n_sweeps=2)  # spec-style misuse:
    with pytest.raises(RuntimeError, match="sample_step returns the new one"):
        buffer.get_states()  # would return the states from before the step
    assert new.get_states()["cat"].shape == start["cat"].shape
    newer, _, _ = new.sample_step(binary_pair, rng_key=jax.random.key(3))
    assert newer.get_states() is newer.states
    with pytest.raises(ValueError, match="rng_key must be a JAX PRNG key"):
        newer.sample_step(binary_pair, rng_key="key")


def test_a_graph_is_a_jit_argument_and_tables_do_not_retrace(make_graph):
    graph = make_graph([2, 3, 2], [(0,), (1,), (0, 1), (1, 2)], seed=0)
    traces = []

    @jax.jit
    def total(graph, state):
        traces.append(1)
        return energy(graph, state).sum()

    state = PersistentBuffer.initialize(graph, 6, 0).states
    assert np.isclose(total(graph, state), energy(graph, state).sum())
    doubled = graph.with_theta([2 * t for t in graph.theta_groups])
    assert np.isclose(total(doubled, state), 2 * energy(graph, state).sum())
    same_structure = make_graph([2, 3, 2], [(0,), (1,), (0, 1), (1, 2)], seed=5)
    assert np.isclose(total(same_structure, state), energy(same_structure, state).sum())
    assert len(traces) == 1
    leaves, treedef = jax.tree.flatten(graph)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.factor_ids == graph.factor_ids
    for a, b in zip(rebuilt.factors, graph.factors, strict=True):
        np.testing.assert_array_equal(a.theta, b.theta)
    with pytest.raises(ValueError, match="theta_groups must have shapes"):
        graph.with_theta(graph.theta_groups[:1])
