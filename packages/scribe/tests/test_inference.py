import jax
import numpy as np
import pytest
import scipy.sparse as sp

import scribe
from scribe.datasets import simulate_nb_counts


def simulate(n_cells, n_genes, p=0.3, seed=1):
    counts, r = simulate_nb_counts(n_cells, n_genes, p, seed)
    return counts, r * p / (1.0 - p)


@pytest.fixture(scope="module")
def small():
    counts, _ = simulate(150, 12)
    return counts


def test_fit_returns_parameters_samples_and_predictive(small, tmp_path):
    res = scribe.fit(small, parameterization="linked", n_steps=300, progress=False)
    assert res.loss_history.shape == (300,)
    assert res.loss_history[-50:].mean() < res.loss_history[:10].mean()
    assert {"p_mean", "p_concentration", "mu_loc", "mu_scale"} <= set(res.params)
    draws = res.posterior_samples(n_samples=7)
    assert draws["p"].shape == (7,) and draws["mu"].shape == (7, 12)
    # the derived r is computed from the drawn p and mu
    np.testing.assert_allclose(
        draws["r"],
        draws["mu"] * (1 - draws["p"][:, None]) / draws["p"][:, None],
        rtol=1e-5,
    )
    replicates = res.posterior_predictive(n_samples=3)
    assert replicates.shape == (3, 150, 12)
    assert np.all(replicates >= 0) and np.all(replicates == np.round(replicates))
    # replicated gene means track the observed ones
    observed = small.mean(0)
    assert np.corrcoef(replicates.mean((0, 1)), observed)[0, 1] > 0.9
    path = res.plot_loss(tmp_path / "loss.png")
    assert path.stat().st_size > 1000
    assert not list(tmp_path.glob(".loss*"))


def test_same_seed_same_result_and_minibatches(small):
    a = scribe.fit(small, n_steps=120, batch_size=32, seed=3, progress=False)
    b = scribe.fit(small, n_steps=120, batch_size=32, seed=3, progress=False)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    assert a.loss_history.shape == (120,)
    # minibatch losses are rescaled to the whole data set, so they are comparable
    full = scribe.fit(small, n_steps=120, seed=3, progress=False)
    assert a.final_loss(0.2) == pytest.approx(full.final_loss(0.2), rel=0.1)


def test_one_compilation_serves_every_chunk(small):
    events = []

    def listener(name, duration, **kwargs):
        if name == "/jax/compilation_cache/compile_time_saved_sec" or (
            "backend_compile" in name
        ):
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        scribe.fit(small, n_steps=200, progress=False)
        short = len(events)
        events.clear()
        scribe.fit(small, n_steps=900, progress=False)
        long = len(events)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert long == short


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"data": -np.ones((4, 3))}, ValueError, "negative count"),
        ({"data": np.full((4, 3), 0.5)}, ValueError, "non-integer count"),
        ({"data": np.ones(5)}, ValueError, "2-D"),
        ({"data": np.array([[1.0, np.nan]])}, ValueError, "non-finite"),
        ({"data": [[1, 2], [3, 4]]}, TypeError, "data must be an AnnData"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"batch_size": 500}, ValueError, "batch_size"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate"),
        ({"learning_rate": "0.1"}, ValueError, "learning_rate"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"seed": None}, ValueError, "seed"),
        ({"seed": 2**70}, ValueError, "seed"),
        ({"seed": 1.5}, ValueError, "seed"),
        ({"num_particles": 0}, ValueError, "num_particles"),
        ({"schedule": "linear"}, ValueError, "schedule"),
        ({"hidden_dims": "64"}, ValueError, "hidden_dims"),
        ({"model": "poisson"}, ValueError, "model"),
        ({"guide": "amortized"}, ValueError, "amortized"),
    ],
)
def test_bad_input_names_the_argument(small, kwargs, error, match):
    args = {"data": small, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        scribe.fit(**args)


def test_sparse_and_dense_inputs_give_identical_fits(small):
    """CSR batches are densified on the device, bit for bit as dense rows."""
    common = {"n_steps": 100, "batch_size": 40, "seed": 5, "progress": False}
    dense = scribe.fit(small, "nbvcp", **common)
    sparse = scribe.fit(sp.csc_matrix(small), "nbvcp", **common)
    np.testing.assert_array_equal(dense.loss_history, sparse.loss_history)
    for name, value in dense.params.items():
        np.testing.assert_array_equal(value, sparse.params[name])


def test_epochs_visit_every_cell_once():
    from scribe.inference import batch_indices

    steps = list(batch_indices(n_cells=10, batch_size=3, n_steps=7, seed=0))
    assert len(steps) == 7 and all(s.shape == (3,) for s in steps)
    for epoch in (steps[0:3], steps[3:6]):  # 3 batches per epoch, 1 cell dropped
        cells = np.concatenate(epoch)
        assert np.unique(cells).size == 9
    assert not np.array_equal(np.concatenate(steps[0:3]), np.concatenate(steps[3:6]))


def test_more_particles_lower_the_gradient_noise(small):
    """The loss's step-to-step spread late in the run shrinks with particles."""
    spread = {}
    for particles in (1, 8):
        res = scribe.fit(
            small, n_steps=400, num_particles=particles, seed=2, progress=False
        )
        spread[particles] = np.std(np.diff(res.loss_history[-200:]))
    assert spread[8] < 0.6 * spread[1]


def test_non_finite_loss_stops_with_the_step(small):
    with pytest.raises(FloatingPointError, match="step"):
        scribe.fit(small, n_steps=200, learning_rate=1e8, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("parameterization", ["odds_ratio", "linked"])
def test_parameter_recovery_on_simulated_counts(parameterization):
    counts, mu = simulate(2000, 200, p=0.3, seed=1)
    res = scribe.fit(
        counts, parameterization=parameterization, n_steps=3000, progress=False
    )
    mean = res.posterior_mean(n_samples=500)
    assert abs(float(mean["p"]) - 0.3) < 0.01
    assert np.median(np.abs(mean["mu"] / mu - 1.0)) < 0.05


def test_vae_trains_at_the_default_learning_rates():
    """Networks step at network_learning_rate: 0.1 for them diverged at step ~10."""
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.3, size=(500, 100))  # numpyro's p = 0.7
    res = scribe.fit(
        counts, "nbdm", "linked", "vae", n_steps=300, batch_size=64, progress=False
    )
    assert np.all(np.isfinite(res.loss_history))
    assert abs(float(res.posterior_mean(50)["p"]) - 0.7) < 0.02
    latent = res.latent_representation()
    assert latent.shape == (500, 8) and np.all(np.isfinite(latent))
