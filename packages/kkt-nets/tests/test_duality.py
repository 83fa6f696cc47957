"""The certificate: completed bound duals and the Lagrangian bound, for any output."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kkt_nets.config import TrainConfig
from kkt_nets.data.generators import generate
from kkt_nets.data.lp import kkt_residuals, scale
from kkt_nets.data.solve import solve
from kkt_nets.duality import complete_bound_duals, lagrangian_bound_terms
from kkt_nets.inference import predict_all
from kkt_nets.models.models import GNNPolicy

SMALL = {
    "set_cover": {"rows": 12, "cols": 15},
    "combinatorial_auction": {"items": 8, "bids": 16},
    "facility_location": {"customers": 4, "facilities": 3},
    "independent_set": {"nodes": 15, "affinity": 3},
}
LPS = [
    scale(generate(family, np.random.default_rng(seed), **params))
    for family, params in SMALL.items()
    for seed in range(2)
]
OPTIMA = [solve(lp) for lp in LPS]

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), which=st.integers(0, len(LPS) - 1))
def test_the_completed_dual_bound_never_exceeds_the_optimum(data, which):
    lp, optimum = LPS[which], OPTIMA[which]
    lam = data.draw(arrays(np.float64, lp.m, elements=finite))
    z_star = optimum.z / lp.obj_scale
    assert lp.dual_bound(lam) <= z_star + 1e-6 * max(1.0, abs(z_star))


@pytest.mark.parametrize("seed", range(3))
def test_random_networks_predictions_are_certified_lower_bounds(seed):
    torch.manual_seed(seed)
    config = TrainConfig(data_dir=Path("unused"), embedding_size=16, gnn_layers=2)
    model = GNNPolicy(config.embedding_size, config.gnn_layers).eval()
    for module in model.modules():  # wild outputs: large random heads
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=3.0)
    xs, lams, _ = predict_all(model, LPS, config)
    for lp, optimum, x, lam in zip(LPS, OPTIMA, xs, lams):
        z_star = optimum.z / lp.obj_scale
        assert lp.dual_bound(lam) <= z_star + 1e-6 * max(1.0, abs(z_star))
        # every prediction is inside its bounds, and stationarity holds exactly
        assert np.all(x >= lp.lb) and np.all(x <= lp.ub)
        assert kkt_residuals(lp, x, lam)["stationarity"] == 0.0


@settings(max_examples=200, deadline=None)
@given(
    r=arrays(np.float64, 8, elements=finite),
    lb=arrays(np.float64, 8, elements=st.floats(-10, 0)),
    width=arrays(np.float64, 8, elements=st.floats(0, 10)),
)
def test_completion_makes_bounded_stationarity_exact(r, lb, width):
    r_t, lb_t, ub_t = map(torch.from_numpy, (r, lb, lb + width))
    lam_lb, lam_ub = complete_bound_duals(r_t, lb_t, ub_t)
    assert torch.all(r_t - lam_lb + lam_ub == 0)
    assert torch.all(lam_lb >= 0) and torch.all(lam_ub >= 0)
    assert torch.all(lam_lb * lam_ub == 0)
    # the bound terms are the minimum of r_j x_j over the box
    value, unabsorbed = lagrangian_bound_terms(r_t, lb_t, ub_t)
    assert torch.all(unabsorbed == 0)
    expected = np.minimum(r * lb, r * (lb + width))
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=1e-9)


def test_infinite_bounds_leave_the_residual_and_no_nan_gradients():
    inf = torch.inf
    r = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0], requires_grad=True)
    lb = torch.tensor([0.0, 0.0, -inf, -inf, -inf])
    ub = torch.tensor([inf, inf, 1.0, 1.0, inf])
    value, unabsorbed = lagrangian_bound_terms(r, lb, ub)
    # r > 0 at a finite lb: absorbed; r < 0 with no ub: left over; and so on
    assert unabsorbed.tolist() == [0.0, -1.0, 1.0, 0.0, 0.0]
    assert value.tolist() == [0.0, 0.0, 0.0, -1.0, 0.0]
    (value.sum() + unabsorbed.square().sum()).backward()
    assert torch.isfinite(r.grad).all()
