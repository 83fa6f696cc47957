import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from kkt_nets.data.datasets import LPDataset, pad_collate
from kkt_nets.data.lp import LP, scale, standardize
from kkt_nets.models.losses import kkt_loss

TERMS = ("primal", "dual", "stationarity", "complementary_slackness")


def random_lp(rng: np.random.Generator, m: int, n: int) -> LP:
    """Feasible (at x0) and bounded (box [-1, 1]) LP, standardized and scaled."""
    A = rng.normal(size=(m, n))
    x0 = rng.uniform(-0.5, 0.5, size=n)
    b = A @ x0 + rng.uniform(0.1, 1.0, size=m)
    return scale(standardize(rng.normal(size=n), A_ub=A, b_ub=b, lb=-1.0, ub=1.0))


def highs_solution(lp: LP) -> tuple[np.ndarray, np.ndarray]:
    res = linprog(lp.c, A_ub=lp.A, b_ub=lp.b, bounds=(None, None), method="highs")
    assert res.status == 0
    return res.x, -res.ineqlin.marginals


@pytest.fixture
def lps() -> list[LP]:
    rng = np.random.default_rng(0)
    return [random_lp(rng, m, n) for m, n in [(3, 4), (6, 3), (5, 5)]]


def batch_of(lps: list[LP], max_m=None, max_n=None):
    ds = LPDataset(lps, max_m=max_m, max_n=max_n)
    return pad_collate([ds[i] for i in range(len(ds))])


def y_pred_of(pairs, M: int, N: int, fill: float = 0.0) -> torch.Tensor:
    y = torch.full((len(pairs), N + M), fill)
    for k, (x, lam) in enumerate(pairs):
        y[k, : x.size] = torch.as_tensor(x, dtype=torch.float32)
        y[k, N : N + lam.size] = torch.as_tensor(lam, dtype=torch.float32)
    return y


def numpy_terms(lp: LP, x: np.ndarray, lam: np.ndarray) -> dict[str, float]:
    slack = lp.A @ x - lp.b
    return {
        "primal": float(np.mean(np.maximum(slack, 0.0) ** 2)),
        "dual": float(np.mean(np.maximum(-lam, 0.0) ** 2)),
        "stationarity": float(np.mean((lp.c + lp.A.T @ lam) ** 2)),
        "complementary_slackness": float(np.mean((lam * slack) ** 2)),
    }


def test_highs_optimum_has_zero_kkt_terms_and_strong_duality(lps):
    pairs = [highs_solution(lp) for lp in lps]
    for lp, (x, lam) in zip(lps, pairs):
        assert lp.c @ x == pytest.approx(-lp.b @ lam, abs=1e-8)
        assert lam.min() >= -1e-9
    _, A, b, c, mask_m, mask_n = batch_of(lps)
    loss, terms = kkt_loss(y_pred_of(pairs, *A.shape[1:]), A, b, c, mask_m, mask_n)
    assert set(terms) == set(TERMS)
    for key in TERMS:
        assert terms[key] < 1e-6, key
    assert loss < 1e-6


def perturbed(lps: list[LP], seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for lp in lps:
        x, lam = highs_solution(lp)
        out.append((x + rng.normal(0, 0.5, x.size), lam + rng.normal(0, 0.5, lam.size)))
    return out


def test_terms_match_numpy_hand_computation(lps):
    pairs = perturbed(lps, seed=1)
    _, A, b, c, mask_m, mask_n = batch_of(lps)
    weights = {
        "primal_weight": 0.3,
        "dual_weight": 0.5,
        "stationarity_weight": 0.7,
        "complementary_slackness_weight": 1.1,
    }
    loss, terms = kkt_loss(
        y_pred_of(pairs, *A.shape[1:]), A, b, c, mask_m, mask_n, **weights
    )
    hand = [numpy_terms(lp, x, lam) for lp, (x, lam) in zip(lps, pairs)]
    expected = {key: np.mean([h[key] for h in hand]) for key in TERMS}
    for key in TERMS:
        assert expected[key] > 1e-3, key  # the perturbation makes every term active
        assert float(terms[key]) == pytest.approx(expected[key], rel=1e-5), key
    total = sum(w * expected[key] for w, key in zip(weights.values(), TERMS))
    assert float(loss) == pytest.approx(total, rel=1e-5)


def test_default_weights():
    torch.manual_seed(0)
    A, b, c = torch.randn(2, 3, 4), torch.randn(2, 3), torch.randn(2, 4)
    masks = torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    loss, terms = kkt_loss(torch.randn(2, 7), A, b, c, *masks)
    weights = {
        "primal": 0.1,
        "dual": 0.1,
        "stationarity": 0.6,
        "complementary_slackness": 0.2,
    }
    assert float(loss) == pytest.approx(
        sum(weights[k] * float(terms[k]) for k in TERMS), rel=1e-6
    )


def test_padding_invariance(lps):
    pairs = perturbed(lps, seed=2)
    singles = []
    for lp, pair in zip(lps, pairs):
        _, A, b, c, mask_m, mask_n = batch_of([lp])
        singles.append(kkt_loss(y_pred_of([pair], lp.m, lp.n), A, b, c, mask_m, mask_n))
    # each instance alone but padded far beyond its size, junk in the padding
    for lp, pair, (loss_1, terms_1) in zip(lps, pairs, singles):
        _, A, b, c, mask_m, mask_n = batch_of([lp], max_m=30, max_n=15)
        loss, terms = kkt_loss(
            y_pred_of([pair], 30, 15, fill=7.0), A, b, c, mask_m, mask_n
        )
        assert float(loss) == pytest.approx(float(loss_1), rel=1e-6)
        for key in TERMS:
            assert float(terms[key]) == pytest.approx(float(terms_1[key]), rel=1e-6)
    # all instances in one padded batch: the batch terms average the single ones
    _, A, b, c, mask_m, mask_n = batch_of(lps, max_m=30, max_n=15)
    loss, terms = kkt_loss(y_pred_of(pairs, 30, 15, fill=-3.0), A, b, c, mask_m, mask_n)
    for key in TERMS:
        mean = np.mean([float(t[key]) for _, t in singles])
        assert float(terms[key]) == pytest.approx(mean, rel=1e-5)
    assert float(loss) == pytest.approx(np.mean([float(s) for s, _ in singles]), 1e-5)


def test_gradients_flow_to_real_entries_only(lps):
    pairs = perturbed(lps, seed=3)
    _, A, b, c, mask_m, mask_n = batch_of(lps, max_m=25, max_n=8)
    y = y_pred_of(pairs, 25, 8, fill=1.0).requires_grad_(True)
    loss, terms = kkt_loss(y, A, b, c, mask_m, mask_n)
    loss.backward()
    assert all(not t.requires_grad for t in terms.values())
    real = torch.cat([mask_n, mask_m], dim=1)
    assert torch.isfinite(y.grad).all()
    assert (y.grad[real] != 0).float().mean() > 0.9
    assert torch.all(y.grad[~real] == 0)


def test_shape_mismatch_is_rejected():
    A, b, c = torch.zeros(2, 3, 4), torch.zeros(2, 3), torch.zeros(2, 4)
    masks = torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="y_pred"):
        kkt_loss(torch.zeros(2, 6), A, b, c, *masks)
