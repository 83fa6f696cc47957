"""jax_smm: maximum-entropy factor graphs fitted by stochastic moment matching.

The model is ``p_theta(x) ∝ exp(sum_f theta_f[x_f])`` over categorical and
binned bounded-continuous variables, with factors of order 1 to 3. Fitting moves
theta along ``target moments - model moments``, the model moments coming from
persistent MCMC chains (chromatic block Gibbs by default).
"""

from jax_smm.config import SMMConfig
from jax_smm.diagnostics import (
    connected_correlations,
    correlation_pearson,
    exact_marginals,
    exact_variable_marginals,
    joint_size,
    max_moment_error,
    mean_moment_error,
)
from jax_smm.energy import energy, local_energy_delta
from jax_smm.features import (
    LinearFeature,
    bin_centers,
    bin_edges,
    estimate_moments,
)
from jax_smm.graph import Factor, FactorGraph, Variable
from jax_smm.mcmc import (
    ChromaticGibbs,
    HybridGibbs,
    PersistentBuffer,
    SequentialGibbs,
    gibbs_sweep,
    gibbs_update,
)
from jax_smm.model import MaxEntModel
from jax_smm.plots import plot_history
from jax_smm.targets import (
    LinearConstraint,
    Targets,
    build_targets_from_marginals,
    build_targets_from_samples,
)
from jax_smm.training import FitHistory, fit_smm

__all__ = [
    "ChromaticGibbs",
    "Factor",
    "FactorGraph",
    "FitHistory",
    "HybridGibbs",
    "LinearConstraint",
    "LinearFeature",
    "MaxEntModel",
    "PersistentBuffer",
    "SMMConfig",
    "SequentialGibbs",
    "Targets",
    "Variable",
    "bin_centers",
    "bin_edges",
    "build_targets_from_marginals",
    "build_targets_from_samples",
    "connected_correlations",
    "correlation_pearson",
    "energy",
    "estimate_moments",
    "exact_marginals",
    "exact_variable_marginals",
    "fit_smm",
    "gibbs_sweep",
    "gibbs_update",
    "joint_size",
    "local_energy_delta",
    "max_moment_error",
    "mean_moment_error",
    "plot_history",
]
