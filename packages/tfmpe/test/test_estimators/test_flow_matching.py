"""FlowMatchingEstimator: loss by hand, a conjugate posterior, log_prob, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import Tokens, generate_static_dataset
from tfmpe.estimators import FlowMatchingEstimator, key_statistics

SPEC = {"local": ["obs"]}
NOISE = 0.5
N_OBS = 4
SMALL = {"embed_dim": 32, "n_heads": 2, "n_layers": 2}


def prior(rng_key):
    return {"theta": jax.random.normal(rng_key, (1, 1))}


def simulate(rng_key, params):
    return {"obs": params["theta"] + NOISE * jax.random.normal(rng_key, (N_OBS, 1))}


def exact_posterior(obs):
    """theta ~ N(0, 1), obs_j ~ N(theta, NOISE^2): a Gaussian posterior."""
    precision = 1.0 + N_OBS / NOISE**2
    return float(np.sum(obs) / NOISE**2 / precision), float(precision**-0.5)


def observation(values):
    obs = jnp.asarray(values, jnp.float32).reshape(N_OBS, 1)
    return Tokens.from_pytree(
        {"theta": jnp.zeros((1, 1)), "obs": obs}, SPEC, sample_ndims=0
    )


@pytest.fixture(scope="module")
def train():
    return generate_static_dataset(0, prior, simulate, None, SPEC, 2048)


@pytest.fixture(scope="module")
def trained(train):
    est = FlowMatchingEstimator(train, ["theta"], config=SMALL, rng_key=0)
    history = est.fit(
        train,
        epochs=40,
        batch_size=128,
        learning_rate=3e-3,
        patience=None,
        progress=False,
    )
    return est, history


def test_loss_by_hand_with_a_zero_velocity_field(train):
    est = FlowMatchingEstimator(train, ["theta"], config=SMALL, sigma_min=0.01)
    zero = jax.tree.map(jnp.zeros_like, est.params)
    batch = jax.tree.map(lambda leaf: leaf[:64], train)
    rng_key = jax.random.key(5)
    loss = float(jax.jit(est.loss)(zero, batch, rng_key))
    mean, std = key_statistics(train)["theta"]
    x1 = (np.asarray(batch.data[:, :1, :1]) - mean[0]) / std[0]
    noise_rng_key, _ = jax.random.split(rng_key)
    x0 = np.asarray(jax.random.normal(noise_rng_key, x1.shape))
    np.testing.assert_allclose(loss, np.mean((x1 - 0.99 * x0) ** 2), rtol=1e-5)


def test_loss_ignores_padded_tokens(train):
    est = FlowMatchingEstimator(train, ["theta"], config=SMALL)
    batch = jax.tree.map(lambda leaf: leaf[:32], train)
    data = batch.decode()
    padded = Tokens.from_pytree(data, SPEC, event_shapes={"obs": (2,)})
    garbage = padded.with_values(obs=data["obs"].at[:, 2:].set(1e4))
    rng_key = jax.random.key(0)
    loss = jax.jit(est.loss)
    assert float(loss(est.params, padded, rng_key)) == float(
        loss(est.params, garbage, rng_key)
    )


def test_training_reduces_the_loss(trained):
    _, history = trained
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert np.all(np.isnan(history.val_loss))
    assert history.epoch_seconds.shape == (40,)


def test_posterior_matches_the_conjugate_posterior(trained):
    est, _ = trained
    values = [0.8, 1.1, 0.2, 0.9]
    samples = est.sample(observation(values), n=4000, rng_key=1)["theta"]
    assert samples.shape == (4000, 1, 1)
    mean, sd = exact_posterior(values)
    assert abs(float(samples.mean()) - mean) < 0.5 * sd
    assert abs(float(samples.std()) / sd - 1.0) < 0.3


def test_a_batch_of_observations(trained):
    est, _ = trained
    obs = jnp.array([[-1.0] * 4, [0.0] * 4, [1.0] * 4]).reshape(3, N_OBS, 1)
    tokens = Tokens.from_pytree({"theta": jnp.zeros((3, 1, 1)), "obs": obs}, SPEC)
    samples = est.sample(tokens, n=500, rng_key=2)["theta"]
    assert samples.shape == (500, 3, 1, 1)
    means = np.asarray(samples.mean(axis=(0, 2, 3)))
    exact = [exact_posterior(o)[0] for o in np.asarray(obs)]
    np.testing.assert_allclose(means, exact, atol=0.15)


def test_log_prob_agrees_with_a_histogram_of_its_own_samples(trained):
    est, _ = trained
    values = [0.8, 1.1, 0.2, 0.9]
    samples = np.asarray(est.sample(observation(values), n=4000, rng_key=3)["theta"])
    center, spread = samples.mean(), samples.std()
    edges = center + spread * np.linspace(-1.2, 1.2, 7)
    counts, _ = np.histogram(samples.ravel(), edges)
    histogram = counts / (samples.size * np.diff(edges))
    mids = jnp.asarray((edges[:-1] + edges[1:]) / 2, jnp.float32)
    tokens = Tokens.from_pytree(
        {
            "theta": mids.reshape(-1, 1, 1),
            "obs": jnp.broadcast_to(
                jnp.asarray(values).reshape(1, N_OBS, 1), (6, N_OBS, 1)
            ),
        },
        SPEC,
    )
    density = np.exp(np.asarray(est.log_prob(tokens)))
    np.testing.assert_allclose(density, histogram, rtol=0.2)


def test_save_and_load_give_the_same_samples(trained, tmp_path):
    est, _ = trained
    path = est.save(tmp_path / "est.npz")
    loaded = FlowMatchingEstimator.load(path)
    tokens = observation([0.1, 0.2, 0.3, 0.4])
    a = est.sample(tokens, n=64, rng_key=4)["theta"]
    b = loaded.sample(tokens, n=64, rng_key=4)["theta"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


def test_errors_name_the_argument(train):
    est = FlowMatchingEstimator(train, ["theta"], config=SMALL)
    tokens = observation([0.0] * 4)
    with pytest.raises(KeyError, match="target_keys: key 'sigma' not found"):
        est.sample(tokens, ["sigma"], n=4)
    with pytest.raises(TypeError, match="target_keys must be a list"):
        est.sample(tokens, "theta", n=4)
    with pytest.raises(ValueError, match="n must be >= 1"):
        est.sample(tokens, n=0)
    with pytest.raises(TypeError, match="n must be an int"):
        est.sample(tokens, n=2.5)
    with pytest.raises(ValueError, match=r"n = 1000000000 samples .* GiB"):
        est.sample(tokens, n=10**9)
    bad = observation([0.0, float("nan"), 0.0, 0.0])
    with pytest.raises(ValueError, match="tokens holds 1 non-finite"):
        est.sample(bad, n=4)
    with pytest.raises(ValueError, match="trace must be"):
        est.log_prob(tokens, trace="approximate")
    with pytest.raises(ValueError, match="both target_keys and conditioning_keys"):
        FlowMatchingEstimator(train, ["theta"], ["theta", "obs"])
    nan_data = train.with_values(theta=train.decode()["theta"].at[0].set(jnp.nan))
    with pytest.raises(ValueError, match="non-finite"):
        FlowMatchingEstimator(nan_data, ["theta"])
    with pytest.raises(ValueError, match="sigma_min must be in"):
        FlowMatchingEstimator(train, ["theta"], sigma_min=1.5)


def test_other_independence_rules_than_trained_with_are_warned(train, tmp_path):
    est = FlowMatchingEstimator(train, ["theta"], config=SMALL)
    loaded = FlowMatchingEstimator.load(est.save(tmp_path / "e.npz"))
    assert loaded.independence == est.independence == train.independence
    dense = Tokens.from_pytree(
        {"theta": jnp.zeros((1, 1)), "obs": jnp.zeros((N_OBS, 1))}, sample_ndims=0
    )
    with pytest.warns(UserWarning, match="independence rules differ"):
        est.sample(dense, n=2)


def test_chunking_and_the_progress_bar(trained, capsys):
    est, _ = trained
    tokens = observation([0.3, 0.1, 0.2, 0.4])
    one = est.sample(tokens, n=48, rng_key=6, chunk_size=48)["theta"]
    again = est.sample(tokens, n=48, rng_key=6, chunk_size=48, progress=True)
    np.testing.assert_array_equal(np.asarray(one), np.asarray(again["theta"]))
    assert "sample" in capsys.readouterr().err  # the bar was drawn
    # chunk i draws its noise from fold_in(rng_key, i): the first chunk of a
    # chunked call is the whole draw of a call with n = chunk_size
    chunked = est.sample(tokens, n=48, rng_key=6, chunk_size=16)["theta"]
    first = est.sample(tokens, n=16, rng_key=6, chunk_size=16)["theta"]
    np.testing.assert_array_equal(np.asarray(chunked[:16]), np.asarray(first))
    assert not np.allclose(np.asarray(chunked[16:32]), np.asarray(first))
