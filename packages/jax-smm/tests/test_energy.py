import jax
import jax.numpy as jnp
import numpy as np

from jax_smm import energy, local_energy_delta
from jax_smm.features import bin_centers, state_to_bins


def random_states(graph, n, seed=0):
    rng = np.random.default_rng(seed)
    cat = np.stack(
        [
            rng.integers(0, graph.variables[v].cardinality, n)
            for v in graph.plan.cat_vars
        ],
        axis=1,
    ).astype(np.int32)
    cont = np.stack(
        [
            rng.uniform(graph.variables[v].low, graph.variables[v].high, n)
            for v in graph.plan.cont_vars
        ],
        axis=1,
    ).astype(np.float32)
    return {"cat": jnp.asarray(cat), "cont": jnp.asarray(cont)}


def test_energy_matches_naive(mixed_graph, reference):
    states = random_states(mixed_graph, 50)
    bins = np.asarray(state_to_bins(mixed_graph.plan, states))
    got = np.asarray(energy(mixed_graph, states))
    want = [reference.energy(mixed_graph, b) for b in bins]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_binning_of_continuous_values(mixed_graph):
    # variable 2 is continuous on [-1, 3] with 4 bins of width 1
    state = {
        "cat": jnp.zeros((5, 4), jnp.int32),
        "cont": jnp.asarray([[-1.0], [-0.01], [0.0], [2.5], [3.0]]),
    }
    bins = np.asarray(state_to_bins(mixed_graph.plan, state))[:, 2]
    np.testing.assert_array_equal(bins, [0, 0, 1, 3, 3])
    np.testing.assert_allclose(
        bin_centers(mixed_graph.variables[2]), [-0.5, 0.5, 1.5, 2.5]
    )


def test_local_energy_delta_matches_energy_difference(mixed_graph):
    states = random_states(mixed_graph, 8, seed=1)
    rng = np.random.default_rng(2)
    for i in range(8):
        state = jax.tree.map(lambda a, i=i: a[i], states)
        for var_id, var in enumerate(mixed_graph.variables):
            kind, pos = mixed_graph.var_index[var_id]
            if var.is_continuous:
                value = float(rng.uniform(var.low, var.high))
            else:
                value = int(rng.integers(var.num_states))
            new = {k: v for k, v in state.items()}
            new[kind] = new[kind].at[pos].set(value)
            want = energy(mixed_graph, new) - energy(mixed_graph, state)
            got = local_energy_delta(mixed_graph, state, var_id, value)
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_energy_jit_vmap_and_traced_var_id(mixed_graph):
    states = random_states(mixed_graph, 6, seed=3)
    batched = energy(mixed_graph, states)
    jitted = jax.jit(lambda s: jax.vmap(lambda x: energy(mixed_graph, x))(s))(states)
    np.testing.assert_allclose(jitted, batched, rtol=1e-6)
    state = jax.tree.map(lambda a: a[0], states)

    @jax.jit
    def deltas(s):
        return jax.vmap(lambda v: local_energy_delta(mixed_graph, s, v, 1))(
            jnp.arange(mixed_graph.num_vars)
        )

    eager = [float(local_energy_delta(mixed_graph, state, v, 1)) for v in range(5)]
    np.testing.assert_allclose(deltas(state), eager, atol=1e-6)
