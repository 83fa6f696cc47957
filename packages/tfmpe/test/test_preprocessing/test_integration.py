"""Integration tests: the bottom_up use cases, jit/vmap, a mock estimator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import (
    TokenGenerator,
    Tokens,
    flatten_pytree,
    generate_static_dataset,
    stable_label,
)

E2E_LABELS = {"mu": 0, "theta": 1, "obs": 2}
SWAP_SPEC = {"local": ["theta", "obs"], "cross_local": [("theta", "obs", (0, 0))]}


def assert_same(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def group_pairing(n_groups, per_group):
    """``bool[n_groups, n_groups * per_group]``: theta_i <-> obs_ij, by hand."""
    out = np.zeros((n_groups, n_groups * per_group), dtype=bool)
    for i in range(n_groups):
        out[i, i * per_group : (i + 1) * per_group] = True
    return out


class MockEstimator:
    """Records what an estimator would receive for target/conditioning keys."""

    def __init__(self):
        self.calls = []

    def sample(self, tokens, target_keys, conditioning_keys):
        target = tokens.select_tokens(target_keys)
        conditioning = tokens.select_tokens(conditioning_keys)
        cross = tokens.cross_attention_mask(target_keys, conditioning_keys)
        self.calls.append((target, conditioning, cross))
        # "samples": the target layout filled with the conditioning mean
        mean = conditioning.data.mean(axis=(-2, -1), keepdims=True)
        return target.decode(jnp.broadcast_to(mean, target.data.shape))

    fit = sample


# --------------------------------------------------------------------------
# bottom_up.py use cases
# --------------------------------------------------------------------------


def test_use_case_1_key_swapping(bottom_up_swap_case):
    theta = bottom_up_swap_case["theta_samples"]["theta"]
    y = bottom_up_swap_case["y_samples"]["obs"]
    target_keys = bottom_up_swap_case["expected_target_keys"]
    cond_keys = bottom_up_swap_case["expected_cond_keys"]
    tokens = Tokens.from_pytree({"theta": theta, "obs": y}, SWAP_SPEC)
    estimator = MockEstimator()
    samples = estimator.sample(tokens, target_keys, cond_keys)

    target, conditioning, cross = estimator.calls[-1]
    # legacy: the observations went to the "theta" slot, parameters to "y"
    assert_same(target.data, y.reshape(4, 25, 1))
    assert_same(conditioning.data, theta.reshape(4, 5, 1))
    assert_same(flatten_pytree({"theta": y})[0], target.data)
    assert_same(flatten_pytree({"y": theta})[0], conditioning.data)
    assert_same(cross, group_pairing(5, 5).T)
    assert_same(target.self_attention_mask, np.zeros((25, 25), dtype=bool))
    assert list(samples) == ["obs"]
    np.testing.assert_allclose(
        samples["obs"],
        np.broadcast_to(theta.mean(axis=(1, 2))[:, None, None, None], (4, 5, 5, 1)),
        rtol=1e-6,
    )

    # swap back at call time, without rebuilding the tokens
    estimator.sample(tokens, cond_keys, target_keys)
    target, conditioning, cross = estimator.calls[-1]
    assert target.parent is tokens and conditioning.parent is tokens
    assert_same(target.data, theta.reshape(4, 5, 1))
    assert_same(cross, group_pairing(5, 5))


def test_use_case_2_selective_extraction():
    rng = np.random.default_rng(10)
    theta_samples = {
        "mu": rng.normal(size=(4, 1, 1)).astype(np.float32),
        "sigma": rng.normal(size=(4, 1, 1)).astype(np.float32),
        "theta": rng.normal(size=(4, 5, 1)).astype(np.float32),
    }
    global_names = ["mu", "sigma"]
    legacy = {k: v for k, v in theta_samples.items() if k in global_names}

    tokens = Tokens.from_pytree(theta_samples, {"local": ["theta"]})
    global_tokens = tokens.select_tokens(global_names)
    assert global_tokens.parent is tokens
    decoded = global_tokens.decode()
    assert list(decoded) == list(legacy)
    for key, value in legacy.items():
        assert_same(decoded[key], value)
    assert_same(
        global_tokens.data,
        np.concatenate([theta_samples["mu"], theta_samples["sigma"]], axis=1),
    )
    assert_same(global_tokens.self_attention_mask, np.ones((2, 2), dtype=bool))
    labels = [stable_label("mu"), stable_label("sigma")]
    assert_same(global_tokens.labels, np.broadcast_to(labels, (4, 2)))


def test_use_case_3_value_override():
    rng = np.random.default_rng(11)
    names = ["mu", "sigma", "theta", "obs"]
    shapes = [(4, 1, 1), (4, 1, 1), (4, 5, 1), (4, 5, 5, 1)]
    y_data = {k: rng.normal(size=s).astype(np.float32) for k, s in zip(names, shapes)}
    global_samples = {
        "mu": rng.normal(size=(4, 1, 1)).astype(np.float32),
        "sigma": rng.normal(size=(4, 1, 1)).astype(np.float32),
    }
    local_samples = {"theta": y_data["theta"], "obs": y_data["obs"]}
    # legacy
    theta = global_samples | local_samples
    theta = {key: theta[key] for key in y_data}

    tokens = Tokens.from_pytree(y_data)
    tokens = tokens.with_values(mu=global_samples["mu"], sigma=global_samples["sigma"])
    decoded = tokens.decode()
    assert list(decoded) == list(theta)
    for key, value in theta.items():
        assert_same(decoded[key], value)
    assert_same(tokens.data[:, 0, 0], global_samples["mu"][:, 0, 0])
    assert_same(tokens.data[:, 1, 0], global_samples["sigma"][:, 0, 0])


def test_use_case_4_dynamic_restructuring(
    hierarchical_gaussian_data, hierarchical_gaussian_spec, hierarchical_gaussian_mask
):
    y_sim = {"y": {k: hierarchical_gaussian_data[k] for k in ("mu", "theta")}}
    y_vec = {"obs": hierarchical_gaussian_data["obs"]}
    all_data = {**y_sim["y"], "obs": y_vec["obs"]}
    tokens = Tokens.from_pytree(all_data, hierarchical_gaussian_spec)
    estimator = MockEstimator()
    estimator.fit(
        tokens, target_keys=list(y_sim["y"].keys()), conditioning_keys=["obs"]
    )
    target, conditioning, cross = estimator.calls[-1]
    # legacy: 'theta' and 'y' blocks flattened separately
    legacy_theta, _ = flatten_pytree(y_sim["y"])
    legacy_y, _ = flatten_pytree(y_vec)
    assert_same(target.data, legacy_theta)
    assert_same(conditioning.data, legacy_y)
    assert_same(target.self_attention_mask, hierarchical_gaussian_mask[:6, :6])
    assert_same(conditioning.self_attention_mask, hierarchical_gaussian_mask[6:, 6:])
    assert_same(cross, hierarchical_gaussian_mask[:6, 6:])
    expected_cross = np.zeros((6, 25), dtype=bool)
    expected_cross[1:] = group_pairing(5, 5)
    assert_same(cross, expected_cross)


# --------------------------------------------------------------------------
# Hierarchical structures (legacy examples: masks by hand)
# --------------------------------------------------------------------------


def test_three_level_mask(three_level_data, three_level_spec, three_level_mask):
    tokens = Tokens.from_pytree(three_level_data, three_level_spec)
    assert_same(tokens.self_attention_mask, three_level_mask)
    # row sums: mu sees itself and tau; tau_g sees mu, its 3 theta and 3 obs;
    # theta_gu sees tau_g and obs_gu; obs_gu sees tau_g and theta_gu
    assert_same(three_level_mask.sum(axis=1), [3, 7, 7] + [2] * 12)
    assert_same(
        tokens.cross_attention_mask(["tau"], ["theta", "obs"]),
        np.array(
            [
                [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0],
                [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1],
            ],
            dtype=bool,
        ),
    )
    assert_same(tokens.cross_attention_mask(["theta"], ["obs"]), np.eye(6, dtype=bool))
    decoded = tokens.decode()
    for key, value in three_level_data.items():
        assert_same(decoded[key], value)


@pytest.mark.parametrize(("groups", "units"), [(3, 2), (4, 3)])
def test_three_level_mask_matches_reference(
    groups, units, three_level_spec, reference_mask
):
    data = {
        "mu": jnp.zeros((2, 1, 1)),
        "tau": jnp.zeros((2, groups, 1)),
        "theta": jnp.zeros((2, groups, units, 1)),
        "obs": jnp.zeros((2, groups, units, 1)),
    }
    tokens = Tokens.from_pytree(data, three_level_spec)
    layout = [("mu", (1,)), ("tau", (groups,)), ("theta", (groups, units))]
    layout.append(("obs", (groups, units)))
    expected = reference_mask(layout, layout, three_level_spec)
    assert_same(tokens.self_attention_mask, expected)


def test_many_sites_mask():
    # seir-like: a global parameter, 120 sites, 6 observations per site
    sites, per_site = 120, 6
    spec = {
        "local": ["site", "obs"],
        "cross": [("beta", "obs"), ("obs", "beta")],
        "cross_local": [("site", "obs", (0, 0))],
    }
    data = {
        "beta": jnp.zeros((1, 1, 1)),
        "site": jnp.zeros((1, sites, 1)),
        "obs": jnp.zeros((1, sites, per_site, 1)),
    }
    mask = np.asarray(Tokens.from_pytree(data, spec).self_attention_mask)
    n = 1 + sites + sites * per_site
    assert mask.dtype == np.bool_ and mask.shape == (n, n)
    site_of_obs = np.repeat(np.arange(sites), per_site)
    expected = np.zeros((n, n), dtype=bool)
    expected[0, : 1 + sites] = True
    expected[1 : 1 + sites, 0] = True
    expected[1 : 1 + sites, 1 + sites :] = (
        np.arange(sites)[:, None] == site_of_obs[None, :]
    )
    expected[1 + sites :, 1 : 1 + sites] = expected[1 : 1 + sites, 1 + sites :].T
    assert_same(mask, expected)


# --------------------------------------------------------------------------
# jit and vmap
# --------------------------------------------------------------------------


def test_jit_traces_once_for_equal_layouts(
    hierarchical_gaussian_data, hierarchical_gaussian_spec
):
    traces = []

    @jax.jit
    def summary(tokens):
        traces.append(1)
        view = tokens.select_tokens(["theta", "obs"])
        cross = tokens.cross_attention_mask(["theta"], ["obs"])
        masked = jnp.where(tokens.self_attention_mask, 1.0, 0.0)
        return (
            view.data.sum()
            + cross.sum()
            + masked.sum()
            + tokens.padding_mask.sum()
            + (tokens.labels == tokens.label_map["theta"]).sum()
        )

    def fresh(scale):
        data = {k: np.asarray(v) * scale for k, v in hierarchical_gaussian_data.items()}
        return Tokens.from_pytree(data, dict(hierarchical_gaussian_spec))

    first = summary(fresh(1.0))
    second = summary(fresh(1.0))
    assert len(traces) == 1
    assert float(first) == float(second)
    summary(fresh(2.0))  # other values, same layout
    assert len(traces) == 1
    data = hierarchical_gaussian_data
    # view data + 25 paired (theta, obs) + 61 allowed pairs (6 rows of 6, 25 of
    # 1) + 31 x 4 real tokens + 5 x 4 theta labels
    expected = data["theta"].sum() + data["obs"].sum() + 25 + 61 + 124 + 20
    np.testing.assert_allclose(float(first), expected, rtol=1e-5)

    summary(Tokens.from_pytree(data, {"local": ["obs"]}))  # another layout
    assert len(traces) == 2


def test_jit_with_values_and_decode(gaussian_data_jnp, hierarchical_gaussian_spec):
    tokens = Tokens.from_pytree(gaussian_data_jnp, hierarchical_gaussian_spec)

    @jax.jit
    def override(tokens, mu):
        return tokens.with_values(mu=mu).decode()

    new_mu = jnp.full((4, 1, 1), 3.0)
    decoded = override(tokens, new_mu)
    assert_same(decoded["mu"], np.full((4, 1, 1), 3.0, dtype=np.float32))
    assert_same(decoded["obs"], gaussian_data_jnp["obs"])

    traces = []

    @jax.jit
    def view_sum(view):
        traces.append(1)
        return view.data.sum()

    view_sum(tokens.select_tokens(["obs"]))
    view_sum(
        Tokens.from_pytree(gaussian_data_jnp, hierarchical_gaussian_spec).select_tokens(
            ["obs"]
        )
    )
    assert len(traces) == 1


@pytest.fixture
def gaussian_data_jnp(hierarchical_gaussian_data):
    return {k: jnp.asarray(v) for k, v in hierarchical_gaussian_data.items()}


def test_vmap_over_samples(
    hierarchical_gaussian_data, hierarchical_gaussian_spec, hierarchical_gaussian_mask
):
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data,
        hierarchical_gaussian_spec,
        event_shapes={"obs": np.array([[5, 5], [5, 2], [1, 5], [3, 3]])},
    )

    def masked_mean(tok):
        assert tok.data.shape == (31, 1)
        assert tok.labels.shape == (31,)
        mask = tok.self_attention_mask & tok.padding_mask[None, :]
        x = tok.data[:, 0]
        return (mask * x[None, :]).sum(-1) / jnp.maximum(mask.sum(-1), 1)

    out = np.asarray(jax.vmap(masked_mean)(tokens))
    flat = np.asarray(tokens.data)[..., 0]
    padding = np.asarray(tokens.padding_mask)
    expected = np.zeros((4, 31), dtype=np.float32)
    for s in range(4):
        for r in range(31):
            cols = [
                c
                for c in range(31)
                if hierarchical_gaussian_mask[r, c] and padding[s, c]
            ]
            expected[s, r] = np.mean(flat[s, cols]) if cols else 0.0
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)

    new_mu = np.arange(4, dtype=np.float32).reshape(4, 1, 1)
    replaced = jax.vmap(lambda tok, mu: tok.with_values(mu=mu).data)(tokens, new_mu)
    assert_same(replaced[:, 0, 0], np.arange(4))
    assert_same(replaced[:, 1:], np.asarray(tokens.data)[:, 1:])


# --------------------------------------------------------------------------
# End to end with a mock estimator
# --------------------------------------------------------------------------

GROUPS, PER_GROUP, REAL = 5, 5, 4
E2E_SPEC = {
    "local": ["obs", "theta"],
    "cross": [("mu", "obs"), ("obs", "mu")],
    "cross_local": [("theta", "obs", (0, 0))],
}
TARGET_KEYS = ("mu", "theta")


def e2e_prior(rng_key):
    mu_rng_key, theta_rng_key = jax.random.split(rng_key)
    mu = jax.random.normal(mu_rng_key, (1, 1))
    return {"mu": mu, "theta": mu + 0.5 * jax.random.normal(theta_rng_key, (GROUPS, 1))}


def e2e_simulator(rng_key, params):
    obs = params["theta"][:, None, :] + 0.3 * jax.random.normal(
        rng_key, (GROUPS, PER_GROUP, 1)
    )
    # the last observation of every group is padding: garbage the mask hides
    return {"obs": obs.at[:, REAL:].set(1e3)}


def target_mask(tokens):
    """``bool[n_tokens]`` from the static slices: tokens of the target keys."""
    out = np.zeros(tokens.n_tokens, dtype=bool)
    for key in TARGET_KEYS:
        s = tokens.slices[key]
        out[s["offset"] : s["offset"] + int(np.prod(s["event_shape"]))] = True
    return out


def mock_loss(params, tokens):
    """Masked attention-like averaging of the visible tokens, then linear."""
    x = tokens.data[..., 0]
    is_target = jnp.asarray(target_mask(tokens))
    visible = tokens.padding_mask & ~is_target  # targets are hidden
    attend = tokens.self_attention_mask[None] & visible[:, None, :]
    avg = (attend * jnp.where(visible, x, 0.0)[:, None, :]).sum(-1)
    avg = avg / jnp.maximum(attend.sum(-1), 1)
    label = tokens.labels
    pred = params["w"][label] * avg + params["b"][label]
    weight = is_target & tokens.padding_mask
    return ((pred - x) ** 2 * weight).sum() / weight.sum()


@jax.jit
def train_step(params, tokens):
    loss, grads = jax.value_and_grad(mock_loss)(params, tokens)
    return jax.tree.map(lambda p, g: p - 0.2 * g, params, grads), loss


def train(batches_per_epoch, epochs=6):
    params = {"w": jnp.zeros(3), "b": jnp.zeros(3)}
    losses = []
    for _ in range(epochs):
        for batch in batches_per_epoch():
            params, loss = train_step(params, batch)
            losses.append(float(loss))
    return params, losses


def test_mock_loss_matches_numpy(hierarchical_gaussian_data):
    data = dict(hierarchical_gaussian_data)
    tokens = Tokens.from_pytree(
        data, E2E_SPEC, event_shapes={"obs": (5, REAL)}, label_map=E2E_LABELS
    )
    params = {"w": jnp.array([0.5, 2.0, 0.0]), "b": jnp.array([0.1, -0.2, 0.0])}
    loss = float(mock_loss(params, tokens))
    # by hand: mu sees nothing visible -> pred b_mu; theta_i sees its real obs
    obs_mean = data["obs"][:, :, :REAL, 0].mean(axis=-1)  # (4, 5)
    err_mu = (0.1 - data["mu"][:, 0, 0]) ** 2
    err_theta = (2.0 * obs_mean - 0.2 - data["theta"][..., 0]) ** 2
    expected = (err_mu.sum() + err_theta.sum()) / (4 * 6)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("n_samples", "batch_size"),
    [(8, 8), pytest.param(48, 8, marks=pytest.mark.slow)],
)
def test_end_to_end_generator_and_static_dataset(n_samples, batch_size):
    kwargs = {"event_shapes": {"obs": (GROUPS, REAL)}, "label_map": E2E_LABELS}
    seed = 3
    generator = TokenGenerator(
        e2e_prior, e2e_simulator, None, E2E_SPEC, n_samples, batch_size, seed, **kwargs
    )
    static = generate_static_dataset(
        jax.random.key(seed),
        e2e_prior,
        e2e_simulator,
        None,
        E2E_SPEC,
        n_samples,
        **kwargs,
    )
    assert len(generator) == n_samples // batch_size
    cached = list(generator)

    def static_batches():
        for start in range(0, n_samples, batch_size):
            stop = start + batch_size
            yield jax.tree.map(lambda a, i=start, j=stop: a[i:j], static)

    # the first pass is the static dataset; every later pass is new data, and
    # the same seed replays the same passes
    for batch, expected in zip(cached, static_batches()):
        assert_same(batch.data, expected.data)
    second = list(generator)
    assert not np.allclose(second[0].data, cached[0].data)
    replay = TokenGenerator(
        e2e_prior, e2e_simulator, None, E2E_SPEC, n_samples, batch_size, seed, **kwargs
    )
    replayed = [list(replay), list(replay)]
    assert_same(replayed[1][0].data, second[0].data)
    params_gen, losses_gen = train(lambda: iter(generator))
    params_static, _ = train(static_batches)
    n_batches = len(generator)
    first = np.mean(losses_gen[:n_batches])
    last = np.mean(losses_gen[-n_batches:])
    assert last < 0.5 * first
    # the padded garbage never leaks into the loss
    assert max(losses_gen) < 10.0
    # theta's weight moves towards the group mean of its observations
    assert 0.5 < float(params_gen["w"][1]) < 1.5
    zeros = {"w": jnp.zeros(3), "b": jnp.zeros(3)}
    loss = jax.jit(mock_loss)
    assert float(loss(params_static, static)) < 0.5 * float(loss(zeros, static))
    assert float(loss(params_gen, static)) < 0.5 * float(loss(zeros, static))
