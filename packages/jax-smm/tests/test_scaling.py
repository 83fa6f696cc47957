"""Spec test: a 100-variable sparse graph trains."""

import jax.numpy as jnp
import numpy as np

from jax_smm import PersistentBuffer, SMMConfig, build_targets_from_samples, fit_smm


def test_hundred_variable_sparse_graph_trains(make_graph):
    rng = np.random.default_rng(0)
    n = 100
    cards = list(rng.integers(2, 4, n))
    ring = [(i, (i + 1) % n) for i in range(n)]
    chords = {tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(50)}
    scopes = (
        [(i,) for i in range(n)]
        + ring
        + sorted(chords - {tuple(sorted(e)) for e in ring})
    )
    teacher = make_graph(cards, scopes, seed=1, scale=0.8)
    assert teacher.plan.num_colors <= 5
    buffer = PersistentBuffer.initialize(teacher, 2000, 3)
    buffer, _, _ = buffer.sample_step(teacher, n_sweeps=30)
    targets = build_targets_from_samples(teacher, buffer.get_states(), pseudocount=0.01)
    student = teacher.with_theta([jnp.zeros_like(t) for t in teacher.theta_groups])
    config = SMMConfig(
        num_iterations=150, num_chains=256, learning_rate=0.05, progress=False
    )
    _, history = fit_smm(student, targets, config)
    errors = np.asarray(history.mean_error)
    assert np.all(np.isfinite(errors))
    assert errors[-10:].mean() < 0.5 * errors[:10].mean()
