import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import (
    LinearConstraint,
    PersistentBuffer,
    SMMConfig,
    bin_centers,
    build_targets_from_marginals,
    build_targets_from_samples,
    exact_marginals,
    exact_variable_marginals,
    fit_smm,
)

FAST = dict(num_iterations=60, num_chains=64, progress=False)


def zero_copy(graph):
    return graph.with_theta([jnp.zeros_like(t) for t in graph.theta_groups])


def test_fit_from_samples_recovers_pair_moments(make_graph):
    scopes = [(0,), (1,), (2,), (3,), (0, 1), (1, 2), (2, 3), (0, 3), (1, 3)]
    teacher = make_graph([2, 3, 2, 3], scopes, seed=4, scale=0.8)
    truth = exact_marginals(teacher)
    buffer = PersistentBuffer.initialize(teacher, 4000, 0)
    buffer, _, _ = buffer.sample_step(teacher, n_sweeps=50)
    samples = buffer.get_states()
    targets = build_targets_from_samples(teacher, samples)
    config = SMMConfig(
        num_iterations=400, num_chains=512, learning_rate=0.05, progress=False
    )
    fitted, _ = fit_smm(zero_copy(teacher), targets, config)
    got = exact_marginals(fitted)
    for fid in (4, 5, 6, 7, 8):
        # sampling error of 4000 independent samples is ~0.008 per cell
        assert np.abs(np.asarray(got[fid]) - np.asarray(truth[fid])).max() < 0.03


def test_linear_constraints_on_a_continuous_variable(make_graph):
    graph = make_graph(
        [10, 2], [(0,), (1,), (0, 1)], seed=0, scale=0.0, continuous={0: (0.0, 10.0)}
    )
    centers = bin_centers(graph.variables[0])
    mean = LinearConstraint((0,), centers, 3.0, name="E[x]")
    tail = LinearConstraint((0,), (centers > 5).astype(float), 0.2, name="P(x>5)")
    # P(y = 1 | x > 5) = 0.7, written as E[1[x>5] (y - 0.7)] = 0
    w = np.outer(centers > 5, [-0.7, 0.3])
    cond = LinearConstraint((0, 1), w, 0.0, name="P(y|x>5)")
    targets = build_targets_from_marginals(graph, {}, [mean, tail, cond])
    config = SMMConfig(
        num_iterations=500, num_chains=512, learning_rate=0.05, progress=False
    )
    fitted, history = fit_smm(graph, targets, config)
    px = exact_variable_marginals(fitted)[0]
    assert abs(px @ centers - 3.0) < 0.05
    assert abs(px[centers > 5].sum() - 0.2) < 0.01
    pair = np.asarray(exact_marginals(fitted)[2])
    assert abs(pair[centers > 5, 1].sum() / pair[centers > 5].sum() - 0.7) < 0.03
    assert history.multipliers.shape == (3,)
    # the unconstrained factors keep their (zero) theta
    np.testing.assert_array_equal(fitted.thetas[1], np.zeros(2))


def test_same_seed_same_fit(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    runs = [
        fit_smm(zero_copy(mixed_graph), targets, SMMConfig(**FAST)) for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0][1]["max_error"], runs[1][1]["max_error"])
    for a, b in zip(runs[0][0].theta_groups, runs[1][0].theta_groups, strict=False):
        np.testing.assert_array_equal(a, b)
    other = fit_smm(zero_copy(mixed_graph), targets, SMMConfig(**FAST, seed=1))
    assert not np.array_equal(other[1]["max_error"], runs[0][1]["max_error"])


def test_sgd_clip_sequential_and_callback(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    calls = []

    def stop_after_two(iteration, states):
        calls.append(iteration)
        return len(calls) == 2

    config = SMMConfig(
        **FAST,
        optimizer="sgd",
        learning_rate=0.5,
        grad_clip=1.0,
        kernel="sequential",
        chunk_size=20,
    )
    _, history = fit_smm(
        zero_copy(mixed_graph), targets, config, callback=stop_after_two
    )
    assert calls == [20, 40]
    assert len(history.max_error) == 40
    assert history.max_error[-1] < history.max_error[0]


def test_tail_average_is_the_mean_of_the_last_iterates(mixed_graph):
    """With a constant step, a fit of ``t`` iterations is the ``t``-th iterate of
    any longer fit (same seed), so the averaged fit is checkable against them."""
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    base = dict(FAST, schedule="constant", learning_rate=0.3, progress=False)

    def fit(iterations, fraction=0.0):
        config = SMMConfig(
            **{**base, "num_iterations": iterations}, average_fraction=fraction
        )
        graph, history = fit_smm(zero_copy(mixed_graph), targets, config)
        return graph.theta_groups, history.max_error

    iterates = [fit(t)[0] for t in (6, 7, 8)]
    averaged, errors = fit(8, fraction=0.375)  # the last 3 of 8 iterations
    assert len(errors) == 8
    for j, got in enumerate(averaged):
        mean = np.mean([np.asarray(it[j]) for it in iterates], axis=0)
        np.testing.assert_allclose(got, mean, rtol=1e-5, atol=1e-6)
        assert not np.allclose(iterates[0][j], iterates[2][j])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("optimizer", "rmsprop"),
        ("learning_rate", 0.0),
        ("num_chains", 0),
        ("num_iterations", 2.5),
        ("l2_regularization", -1.0),
        ("grad_clip", 0.0),
        ("param_clip", -1.0),
        ("schedule", "linear"),
        ("average_fraction", 1.0),
        ("kernel", "metropolis"),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "kernel" else "kernel"):
        SMMConfig(**{field: value})


def test_nan_gradient_stops_the_fit(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    config = SMMConfig(
        num_iterations=40,
        num_chains=16,
        optimizer="sgd",
        learning_rate=1e38,
        l2_regularization=1.0,
        schedule="constant",
        progress=False,
    )
    with pytest.raises(FloatingPointError, match="non-finite gradient at iteration"):
        fit_smm(zero_copy(mixed_graph), targets, config)


def test_fit_runs_under_initial_states_and_jit_free_api(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    g1, h1 = fit_smm(zero_copy(mixed_graph), targets, SMMConfig(**FAST))
    _g2, h2 = fit_smm(g1, targets, SMMConfig(**FAST), initial_states=h1.final_states)
    assert jax.tree.map(jnp.shape, h2.final_states) == jax.tree.map(
        jnp.shape, h1.final_states
    )
    assert np.mean(h2.max_error) < np.mean(h1.max_error)


def test_bad_initial_states_are_rejected(mixed_graph):
    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    states = PersistentBuffer.initialize(mixed_graph, 8, 0).get_states()
    bad = {"cat": states["cat"].at[0, 0].set(9), "cont": states["cont"]}
    with pytest.raises(ValueError, match=r"initial_states\['cat'\]\[0, 0\] = 9"):
        fit_smm(mixed_graph, targets, SMMConfig(**FAST), initial_states=bad)


def test_numeric_settings_do_not_recompile(mixed_graph):
    from jax_smm.training import _train_chunk

    targets = build_targets_from_marginals(mixed_graph, exact_marginals(mixed_graph))
    fit_smm(zero_copy(mixed_graph), targets, SMMConfig(**FAST))
    compiled = _train_chunk._cache_size()
    other = dict(FAST, num_iterations=80, learning_rate=0.2, l2_regularization=0.01)
    fit_smm(zero_copy(mixed_graph), targets, SMMConfig(**other))
    assert _train_chunk._cache_size() == compiled


def test_param_clip_bounds_contradictory_multipliers(make_graph):
    graph = make_graph([2], [(0,)], scale=0.0)
    contradictory = [
        LinearConstraint((0,), np.array([0.0, 1.0]), 0.9, name="P(x)=0.9"),
        LinearConstraint((0,), np.array([0.0, 1.0]), 0.1, name="P(x)=0.1"),
    ]
    targets = build_targets_from_marginals(graph, {}, contradictory)
    config = SMMConfig(
        num_iterations=300,
        num_chains=64,
        learning_rate=0.1,
        param_clip=2.0,
        schedule="constant",
        progress=False,
    )
    fitted, history = fit_smm(graph, targets, config)
    lam = history.multipliers
    assert np.all(np.abs(lam) <= 2.0) and np.isclose(np.abs(lam).max(), 2.0)
    p_true = exact_variable_marginals(fitted)[0][1]
    assert 0.3 < p_true < 0.7  # the compromise between 0.9 and 0.1
