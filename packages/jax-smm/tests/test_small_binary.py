"""Spec test: 5 binary variables, random theta, SMM recovers brute-force marginals."""

import itertools

import jax.numpy as jnp
import numpy as np

from jax_smm import SMMConfig, build_targets_from_marginals, exact_marginals, fit_smm


def test_smm_recovers_brute_force_marginals(make_graph, reference):
    scopes = [(i,) for i in range(5)] + list(itertools.combinations(range(5), 2))
    teacher = make_graph([2] * 5, scopes, seed=0, scale=0.7)
    target_tables = reference.marginals(teacher)
    targets = build_targets_from_marginals(teacher, target_tables)
    student = teacher.with_theta([jnp.zeros_like(t) for t in teacher.theta_groups])
    config = SMMConfig(
        num_iterations=400,
        num_chains=512,
        mcmc_steps_per_iteration=2,
        learning_rate=0.05,
        progress=False,
    )
    fitted, history = fit_smm(student, targets, config)
    fitted_marginals = exact_marginals(fitted)
    error = max(
        float(np.abs(np.asarray(fitted_marginals[k]) - target_tables[k]).max())
        for k in target_tables
    )
    assert error < 0.02
    assert history.max_error[-1] < history.max_error[0]
    assert len(history.runtime) == 400 and history.runtime[-1] > 0
