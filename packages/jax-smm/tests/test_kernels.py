import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import PersistentBuffer, exact_marginals, gibbs_sweep, gibbs_update
from jax_smm.features import bin_index, moments_from_bins, state_to_bins
from jax_smm.mcmc import ChromaticGibbs, HybridGibbs, SequentialGibbs, threefry
from jax_smm.mcmc.conditionals import UNROLLED_DEGREE

CASES = {
    "binary_chain": (
        [2] * 6,
        [(i,) for i in range(6)] + [(i, i + 1) for i in range(5)],
        {},
    ),
    "k3_triple": ([3] * 4, [(0,), (3,), (0, 1, 2), (2, 3), (1, 3)], {}),
    "mixed_k": (
        [2, 3, 4, 5],
        [(0,), (1,), (2,), (3,), (0, 1), (1, 2), (2, 3), (3, 0)],
        {},
    ),
    # uneven degrees, so the sampler's per-slot row prefixes skip rows
    "hub_and_triples": (
        [2, 3, 2, 3, 2, 2, 3],
        [(0,), (5,), (0, 1), (0, 2), (0, 3), (1, 2, 4), (3, 5, 6), (4, 6)],
        {},
    ),
    # K > SELECT_MAX_CARD: table columns by gathers, a triple of large tables
    "large_k": ([10, 9, 3], [(0,), (1,), (0, 1), (1, 2), (0, 1, 2)], {}),
    "binned_continuous": (
        [3, 5, 2],
        [(0,), (1,), (2,), (0, 1), (1, 2)],
        {1: (0.0, 10.0)},
    ),
}


def max_abs_error(graph, flat_moments, exact):
    sampled = graph.unstack_tables(flat_moments)
    return max(float(np.abs(np.asarray(sampled[k]) - exact[k]).max()) for k in exact)


@pytest.mark.parametrize("kernel", ["chromatic", "sequential"])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_samples_exact_distribution(case, kernel, make_graph, reference):
    cards, scopes, cont = CASES[case]
    graph = make_graph(cards, scopes, seed=11, scale=1.0, continuous=cont)
    exact = reference.marginals(graph)
    buffer = PersistentBuffer.initialize(graph, 512, jax.random.key(1))
    buffer, _, _ = buffer.sample_step(graph, kernel, n_sweeps=20)  # burn-in
    buffer, moments, info = buffer.sample_step(graph, kernel, n_sweeps=300)
    assert max_abs_error(graph, moments, exact) < 0.02
    assert np.all((np.asarray(info.move_rate) > 0) & (np.asarray(info.move_rate) <= 1))


def test_public_gibbs_sweep_samples_exact_distribution(mixed_graph, reference):
    exact = reference.marginals(mixed_graph)
    init = PersistentBuffer.initialize(mixed_graph, 256, 0).get_states()

    @jax.jit
    def run(states, rng_key):
        def body(states, rng_key):
            rng_keys = jax.random.split(rng_key, states["cat"].shape[0])
            states = jax.vmap(lambda s, rng_key: gibbs_sweep(mixed_graph, s, rng_key))(
                states, rng_keys
            )
            return states, states

        return jax.lax.scan(body, states, jax.random.split(rng_key, 300))[1]

    samples = run(init, jax.random.key(4))
    samples = jax.tree.map(lambda a: a[20:], samples)
    bins = state_to_bins(mixed_graph.plan, samples)
    assert (
        max_abs_error(mixed_graph, moments_from_bins(mixed_graph.plan, bins), exact)
        < 0.02
    )


def test_gibbs_update_draws_the_full_conditional(make_graph):
    # Two binary variables; the conditional of x1 given x0 = 1 is known in closed form.
    graph = make_graph([2, 2], [(0, 1), (1,)], seed=5)
    pair, unary = (np.asarray(f.theta) for f in graph.factors)
    logits = pair[1] + unary
    p1 = np.exp(logits[1]) / np.exp(logits).sum()
    state = {"cat": jnp.asarray([1, 0], jnp.int32), "cont": jnp.zeros(0)}
    rng_keys = jax.random.split(jax.random.key(0), 20000)
    draws = jax.vmap(lambda rng_key: gibbs_update(graph, state, 1, rng_key)["cat"])(
        rng_keys
    )
    assert np.all(np.asarray(draws[:, 0]) == 1)  # x0 untouched
    assert abs(float(draws[:, 1].mean()) - p1) < 0.015


def test_continuous_values_stay_in_their_bin_and_move(mixed_graph):
    buffer = PersistentBuffer.initialize(mixed_graph, 256, 0)
    before = buffer.get_states()
    buffer, _, info = buffer.sample_step(mixed_graph, n_sweeps=3)
    after = buffer.get_states()
    var = mixed_graph.variables[2]
    values = np.asarray(after["cont"][:, 0])
    assert np.all((values >= var.low) & (values <= var.high))
    # a value is kept exactly when its bin did not change, otherwise redrawn in-bin
    b0 = bin_index(before["cont"][:, 0], var.low, var.high, var.num_bins)
    b1 = bin_index(after["cont"][:, 0], var.low, var.high, var.num_bins)
    same = np.asarray(b0 == b1)
    np.testing.assert_array_equal(values[same], np.asarray(before["cont"][:, 0])[same])
    assert 0.0 < float(info.continuous_move_rate) <= 1.0
    assert float(info.acceptance_rate) == 1.0


def test_in_bin_position_is_uniform(make_graph):
    graph = make_graph([2], [(0,)], continuous={0: (2.0, 4.0)})  # two bins [2,3), [3,4]
    buffer = PersistentBuffer.initialize(graph, 4000, 0)
    buffer, _, _ = buffer.sample_step(graph, n_sweeps=5)
    values = np.asarray(buffer.get_states()["cont"][:, 0])
    frac = values - np.floor(values)
    hist, _ = np.histogram(frac, bins=4, range=(0, 1))
    assert np.all(np.abs(hist / len(frac) - 0.25) < 0.03)


def test_same_seed_same_samples(mixed_graph):
    runs = []
    for _ in range(2):
        buffer = PersistentBuffer.initialize(mixed_graph, 64, 7)
        buffer, moments, _ = buffer.sample_step(mixed_graph, n_sweeps=4)
        runs.append((buffer.get_states(), moments))
    np.testing.assert_array_equal(runs[0][0]["cat"], runs[1][0]["cat"])
    np.testing.assert_array_equal(runs[0][0]["cont"], runs[1][0]["cont"])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_kernel_objects_and_bad_kernel(mixed_graph):
    buffer = PersistentBuffer.initialize(mixed_graph, 8, 0)
    for kernel in (ChromaticGibbs(), SequentialGibbs(), HybridGibbs(SequentialGibbs())):
        buffer.sample_step(mixed_graph, kernel, n_sweeps=1)
    with pytest.raises(ValueError, match="kernel"):
        buffer.sample_step(mixed_graph, "metropolis")
    with pytest.raises(ValueError, match="n_sweeps"):
        buffer.sample_step(mixed_graph, n_sweeps=0)
    with pytest.raises(ValueError, match="num_chains"):
        PersistentBuffer.initialize(mixed_graph, 0)


def test_exact_marginals_match_brute_force(mixed_graph, reference):
    exact = exact_marginals(mixed_graph)
    brute = reference.marginals(mixed_graph)
    for k in brute:
        np.testing.assert_allclose(exact[k], brute[k], atol=1e-6)


@pytest.mark.parametrize("kernel", ["chromatic", "sequential"])
def test_high_degree_hub_samples_exact_distribution(kernel, make_graph):
    # a hub with more pair incidences than UNROLLED_DEGREE takes the other code path
    leaves = UNROLLED_DEGREE + 1
    scopes = [(0,)] + [(0, i) for i in range(1, leaves + 1)] + [(1, 2)]
    graph = make_graph([3] + [2] * leaves, scopes, seed=2, scale=0.4)
    assert graph.plan.pair_degree > UNROLLED_DEGREE
    exact = exact_marginals(graph)
    buffer = PersistentBuffer.initialize(graph, 512, jax.random.key(0))
    buffer, _, _ = buffer.sample_step(graph, kernel, n_sweeps=10)
    _, moments, _ = buffer.sample_step(graph, kernel, n_sweeps=200)
    assert max_abs_error(graph, moments, exact) < 0.02


def test_threefry_matches_jax_and_is_uniform():
    from jax.extend.random import threefry_2x32

    rng_key = jnp.asarray([0x13198A2E, 0x03707344], jnp.uint32)
    counts = jnp.arange(64, dtype=jnp.uint32)
    y0, y1 = threefry.threefry2x32(rng_key[0], rng_key[1], counts[:32], counts[32:])
    np.testing.assert_array_equal(
        np.concatenate([y0, y1]), threefry_2x32(rng_key, counts)
    )
    u = np.asarray(threefry.uniform(jax.random.key(3), (400, 250)))
    assert u.min() >= 0.0 and u.max() < 1.0
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.all(np.abs(hist / u.size - 0.1) < 0.005)
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.01


def test_buffer_is_a_pytree_that_threads_through_jit_and_scan(mixed_graph):
    from jax_smm.energy import extended_params

    buffer = PersistentBuffer.initialize(mixed_graph, 32, 0)
    kernel = HybridGibbs()
    theta_ext = extended_params(mixed_graph.theta_groups)

    @jax.jit
    def advance(buffer):
        def body(buf, rng_key):
            states, counts, _ = kernel.step(
                mixed_graph.plan, theta_ext, buf.states, rng_key, 1
            )
            return PersistentBuffer(states, buf.rng_keys), counts

        return jax.lax.scan(body, buffer, jax.random.split(buffer.rng_keys, 5))

    new, counts = advance(buffer)
    assert isinstance(new, PersistentBuffer)
    assert counts.shape == (5, mixed_graph.plan.num_params)
    # every sweep counts each factor once per chain
    np.testing.assert_allclose(counts.sum(1), len(mixed_graph.factors) * 32)
