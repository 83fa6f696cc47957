"""A hierarchical SEIR epidemic: nonlinear, with an MCMC reference posterior.

Each of ``K`` regions runs its own SEIR epidemic (fractions of a population),

    dS/dt = -beta_i S I,  dE/dt = beta_i S I - E / d_E,
    dI/dt = E / d_E - I / d_I,

from ``E(0) = I(0) = initial``, with the basic reproduction number
``R0_i = beta_i d_I`` drawn hierarchically:

    mu ~ N(0, 1),  theta_i | mu ~ N(mu, tau^2),
    log R0_i = log(2) + scale * theta_i,

and the log prevalence observed weekly with noise:

    obs_ij | theta_i ~ N(log I_i(t_j), noise^2),  t_j = 7, 14, ... days.

The map from ``theta`` to the data is nonlinear (growth, peak, decline), so the
posterior has no closed form; :meth:`HierarchicalSEIR.reference_posterior`
samples it with NumPyro's NUTS (the optional ``mcmc`` extra) as the reference
an estimator is compared with. The observation days reach the estimator as the
functional inputs of ``obs``. Leaves are shaped for ``Tokens``: ``mu (1, 1)``,
``theta (K, 1)``, ``obs (K, J, 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from tfmpe.models.hierarchical_gaussian import INDEPENDENCE, HierarchicalPrior

__all__ = ["INDEPENDENCE", "HierarchicalSEIR"]

R_HAT_LIMIT = 1.05
STEP = 0.5  # days per Runge-Kutta step


@dataclass(frozen=True, kw_only=True)
class HierarchicalSEIR(HierarchicalPrior):
    """``n_groups`` regional epidemics observed on ``n_obs`` weekly days.

    Attributes
    ----------
    n_groups, n_obs : int
    tau : float
        Spread of the regions' ``theta`` around ``mu``.
    scale : float
        ``log R0`` per unit of ``theta``.
    noise : float
        Standard deviation of the observed log prevalence.
    incubation, infectious : float
        Mean latent (``d_E``) and infectious (``d_I``) periods in days.
    initial : float
        Exposed and infectious fractions at day 0.
    interval : float
        Days between observations.
    """

    n_groups: int = 4
    n_obs: int = 6
    tau: float = 0.3
    scale: float = 0.3
    noise: float = 0.5
    incubation: float = 3.0
    infectious: float = 5.0
    initial: float = 1e-3
    interval: float = 7.0

    def __post_init__(self) -> None:
        steps = self.interval / STEP
        if not (steps >= 1 and steps == round(steps)):
            raise ValueError(
                f"interval must be a positive multiple of {STEP} days, got "
                f"{self.interval!r}"
            )

    @property
    def times(self) -> np.ndarray:
        """``(J,)`` observation days ``interval * (j + 1)``."""
        return self.interval * (np.arange(self.n_obs) + 1.0)

    def log_prevalence(self, theta: Array) -> Array:
        """Noise-free ``log I(t_j)`` of every region.

        Parameters
        ----------
        theta : array
            ``(K,)`` (any ``K``).

        Returns
        -------
        jax.Array
            ``(K, J)``; differentiable in ``theta`` (NUTS uses its gradient).

        Notes
        -----
        Classical fourth-order Runge-Kutta with a fixed step of half a day
        inside ``lax.scan`` (the test compares it with SciPy's adaptive
        solver to 2e-4); a fixed-step scan compiles in a fraction of the time
        of an adaptive solver, which matters because NUTS compiles it into
        every leapfrog step.
        """
        beta = (
            jnp.exp(math.log(2.0) + self.scale * jnp.asarray(theta)) / self.infectious
        )
        per_interval = round(self.interval / STEP)

        def field(y: Array) -> Array:
            s, e, i = y
            infection = beta * s * i
            return jnp.stack(
                [
                    -infection,
                    infection - e / self.incubation,
                    e / self.incubation - i / self.infectious,
                ]
            )

        def rk4(y: Array, _: None) -> tuple[Array, None]:
            k1 = field(y)
            k2 = field(y + 0.5 * STEP * k1)
            k3 = field(y + 0.5 * STEP * k2)
            k4 = field(y + STEP * k3)
            return y + STEP / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None

        def between_observations(y: Array, _: None) -> tuple[Array, Array]:
            y, _ = lax.scan(rk4, y, None, length=per_interval)
            return y, y[2]

        ones = jnp.ones_like(beta)
        start = jnp.stack(
            [(1.0 - 2 * self.initial) * ones, self.initial * ones, self.initial * ones]
        )
        _, prevalence = lax.scan(between_observations, start, None, length=self.n_obs)
        return jnp.log(jnp.maximum(prevalence.T, 1e-30))

    def simulate(self, rng_key: Array, params: dict[str, Array]) -> dict[str, Array]:
        """One draw of ``obs`` given ``theta``."""
        mean = self.log_prevalence(params["theta"][:, 0])
        noise = jax.random.normal(rng_key, (self.n_groups, self.n_obs))
        return {"obs": (mean + self.noise * noise)[..., None]}

    def functional_input_fn(
        self, params: dict[str, Array], observations: dict[str, Array]
    ) -> dict[str, Array]:
        """The observation days of ``obs`` in weeks, ``(K, J, 1)``."""
        del params, observations
        weeks = jnp.asarray(self.times / 7.0, jnp.float32)[None, :, None]
        return {"obs": jnp.broadcast_to(weeks, (self.n_groups, self.n_obs, 1))}

    def numpyro_model(self, obs: Array) -> None:
        """The joint model in NumPyro, conditioned on ``obs (K, J[, 1])``."""
        import numpyro
        import numpyro.distributions as dist

        obs = jnp.reshape(obs, (obs.shape[0], -1))
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        with numpyro.plate("groups", obs.shape[0]):
            theta = numpyro.sample("theta", dist.Normal(mu, self.tau))
        mean = self.log_prevalence(theta)
        numpyro.sample("obs", dist.Normal(mean, self.noise).to_event(2), obs=obs)

    def reference_posterior(
        self,
        obs: np.ndarray,
        n: int,
        seed: int = 0,
        *,
        chains: int = 2,
        warmup: int = 1000,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``(n, K + 1)`` posterior draws (``mu`` first) by NumPyro's NUTS.

        Parameters
        ----------
        obs : array
            ``(K, J)`` or ``(K, J, 1)`` for any ``K``.
        n : int
            Draws kept, split evenly over ``chains``.
        seed : int
        chains : int
            Chains, run one after another.
        warmup : int
            Adaptation steps per chain.

        Returns
        -------
        samples : np.ndarray
        diagnostics : dict
            Largest split R-hat, smallest effective sample size and the
            number of divergent transitions.

        Raises
        ------
        ImportError
            Without NumPyro (``pip install tfmpe[mcmc]``).
        RuntimeError
            When the chains did not converge (R-hat above 1.05): the draws
            are then no reference.
        """
        try:
            from numpyro.diagnostics import summary
            from numpyro.infer import MCMC, NUTS
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "the NUTS reference needs NumPyro: pip install tfmpe[mcmc]"
            ) from error
        if isinstance(n, bool) or not isinstance(n, int) or n < chains:
            raise ValueError(f"n must be an int of at least chains={chains}, got {n!r}")
        mcmc = MCMC(
            NUTS(self.numpyro_model, target_accept_prob=0.9),
            num_warmup=warmup,
            num_samples=n // chains,
            num_chains=chains,
            chain_method="sequential",
            progress_bar=False,
        )
        mcmc.run(
            jax.random.key(seed),
            jnp.asarray(obs, jnp.float64 if jax.config.x64_enabled else jnp.float32),
            extra_fields=("diverging",),
        )
        by_chain = mcmc.get_samples(group_by_chain=True)
        stats = summary(by_chain)
        r_hat = max(float(np.max(s["r_hat"])) for s in stats.values())
        diagnostics = {
            "r_hat_max": r_hat,
            "ess_min": min(float(np.min(s["n_eff"])) for s in stats.values()),
            "divergences": int(np.sum(mcmc.get_extra_fields()["diverging"])),
        }
        if not r_hat < R_HAT_LIMIT:
            raise RuntimeError(
                f"NUTS did not converge: R-hat {r_hat:.3f} >= {R_HAT_LIMIT}; "
                "raise warmup or chains"
            )
        samples = mcmc.get_samples()
        flat = np.concatenate(
            [np.asarray(samples["mu"])[:, None], np.asarray(samples["theta"])], axis=1
        )
        return flat, diagnostics
