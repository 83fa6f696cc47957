from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from kkt_nets.data.datasets import LPDataset, pad_collate
from kkt_nets.data.generators import generate
from kkt_nets.data.lp import LP, kkt_residuals, scale, standardize
from kkt_nets.data.solve import solve
from kkt_nets.models.losses import certificate_loss, kkt_loss

TERMS = ("primal", "dual", "stationarity", "complementary_slackness")


def random_lp(
    rng: np.random.Generator, m: int, n: int, bounds_as_rows: bool = True
) -> LP:
    """Feasible (at x0) and bounded (box [-1, 1]) LP, standardized and scaled."""
    A = rng.normal(size=(m, n))
    x0 = rng.uniform(-0.5, 0.5, size=n)
    b = A @ x0 + rng.uniform(0.1, 1.0, size=m)
    return scale(
        standardize(
            rng.normal(size=n),
            A_ub=A,
            b_ub=b,
            lb=-1.0,
            ub=1.0,
            bounds_as_rows=bounds_as_rows,
        )
    )


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


@pytest.fixture
def boxed() -> list[LP]:
    """The same kind of LPs with the box on the columns (and one free variable)."""
    rng = np.random.default_rng(4)
    lps = [random_lp(rng, m, n, bounds_as_rows=False) for m, n in [(3, 4), (6, 3)]]
    lb, ub = lps[1].lb.copy(), lps[1].ub.copy()
    lb[0], ub[0] = -np.inf, np.inf  # six rows keep the LP bounded
    return [lps[0], replace(lps[1], lb=lb, ub=ub)]


def column_batch(lps, labels=None, max_m=None, max_n=None):
    ds = LPDataset(lps, max_m=max_m, max_n=max_n, labels=labels)
    return pad_collate([ds[i] for i in range(len(ds))])


def test_kkt_loss_with_column_bounds_is_zero_at_the_optimum_and_matches_residuals(
    boxed,
):
    solutions = [solve(lp) for lp in boxed]
    batch = column_batch(boxed)
    M, N = batch.A.shape[1:]
    pairs = [(s.x, s.lam) for s in solutions]
    loss, terms = kkt_loss(y_pred_of(pairs, M, N), *batch[1:], lb=batch.lb, ub=batch.ub)
    assert max(float(t) for t in terms.values()) < 1e-6 and float(loss) < 1e-6
    # a perturbed pair: stationarity vanishes (bounded variables absorb r) and
    # complementary slackness includes the bounds, as kkt_residuals says
    rng = np.random.default_rng(5)
    moved = [
        (np.clip(x + rng.normal(0, 0.3, x.size), -1, 1), np.abs(lam + 0.2))
        for x, lam in pairs
    ]
    loss, terms = kkt_loss(y_pred_of(moved, M, N), *batch[1:], lb=batch.lb, ub=batch.ub)
    stationarity = []
    for lp, (x, lam) in zip(boxed, moved):
        free = ~np.isfinite(lp.lb)  # only the free variable keeps its r_j
        r = lp.c + lp.A.T @ lam
        stationarity.append(np.mean(np.where(free, r, 0.0) ** 2))
        assert kkt_residuals(lp, x, lam)["stationarity"] == pytest.approx(
            np.abs(r[free]).max(initial=0.0)
        )
    assert stationarity[0] == 0.0 and stationarity[1] > 1e-3
    assert float(terms["stationarity"]) == pytest.approx(np.mean(stationarity), 1e-5)
    assert float(terms["complementary_slackness"]) > 1e-3
    with pytest.raises(ValueError, match="lb and ub must be given together"):
        kkt_loss(y_pred_of(moved, M, N), *batch[1:], lb=batch.lb)


def numpy_certificate(lp: LP, x: np.ndarray, lam: np.ndarray) -> dict[str, float]:
    """The terms of certificate_loss from LP methods (scaled units)."""
    primal_obj = float(lp.c @ x)
    r = lp.c + lp.A.T @ lam
    bounded = np.isfinite(lp.lb) & np.isfinite(lp.ub)
    value = np.where(
        r > 0, r * np.where(bounded, lp.lb, 0), r * np.where(bounded, lp.ub, 0)
    )
    free = np.where(bounded, 0.0, r)
    dual_obj = -float(lp.b @ lam) + float(value.sum())
    return {
        "gap": abs(primal_obj - dual_obj) / (1 + abs(primal_obj) + abs(dual_obj)),
        "primal": float(
            np.linalg.norm(np.maximum(lp.A @ x - lp.b, 0)) / (1 + np.linalg.norm(lp.b))
        ),
        "dual": float(np.linalg.norm(free) / (1 + np.linalg.norm(lp.c))),
    }


def test_certificate_loss_is_zero_at_the_optimum_and_matches_numpy(boxed):
    solutions = [solve(lp) for lp in boxed]
    labels = [(s.x, s.lam) for s in solutions]
    batch = column_batch(boxed, labels=labels)
    M, N = batch.A.shape[1:]
    extras = {
        "lb": batch.lb,
        "ub": batch.ub,
        "x_star": batch.x_star,
        "lam_star": batch.lam_star,
    }
    loss, terms = certificate_loss(
        y_pred_of(labels, M, N), *batch[1:], supervised_weight=1.0, **extras
    )
    assert max(float(t) for t in terms.values()) < 1e-6
    rng = np.random.default_rng(6)
    moved = [
        (np.clip(x + rng.normal(0, 0.3, x.size), -1, 1), np.abs(lam + 0.2))
        for x, lam in labels
    ]
    loss, terms = certificate_loss(
        y_pred_of(moved, M, N),
        *batch[1:],
        gap_weight=0.5,
        primal_weight=2.0,
        dual_weight=3.0,
        **extras,
    )
    hand = [numpy_certificate(lp, x, lam) for lp, (x, lam) in zip(boxed, moved)]
    for key in ("gap", "primal", "dual"):
        expected = np.mean([h[key] for h in hand])
        assert float(terms[key]) == pytest.approx(expected, rel=1e-4, abs=1e-6), key
    assert float(terms["gap"]) > 1e-3
    # the gap is the one LP.dual_bound certifies: |c^T x - g| relative (the
    # LP with a free variable has no finite certificate off stationarity)
    assert boxed[1].dual_bound(moved[1][1]) == -np.inf
    for lp, (x, lam), h in zip(boxed[:1], moved, hand):
        d = lp.dual_bound(lam) * lp.obj_scale
        p = float(lp.c @ x)
        assert h["gap"] == pytest.approx(abs(p - d) / (1 + abs(p) + abs(d)))
    total = 0.5 * terms["gap"] + 2.0 * terms["primal"] + 3.0 * terms["dual"]
    assert float(loss) == pytest.approx(float(total), rel=1e-6)


def test_certificate_loss_padding_invariance_and_gradients(boxed):
    labels = [(solve(lp).x * 0.5, solve(lp).lam + 0.1) for lp in boxed]
    batch = column_batch(boxed)
    single = [
        certificate_loss(
            y_pred_of([pair], lp.m, lp.n),
            *column_batch([lp])[1:],
            lb=column_batch([lp]).lb,
            ub=column_batch([lp]).ub,
        )[0]
        for lp, pair in zip(boxed, labels)
    ]
    padded = column_batch(boxed, max_m=20, max_n=12)
    y = y_pred_of(labels, 20, 12, fill=5.0).requires_grad_(True)
    loss, _ = certificate_loss(y, *padded[1:], lb=padded.lb, ub=padded.ub)
    expected = np.mean([float(s) for s in single])
    assert float(loss.detach()) == pytest.approx(expected, 1e-5)
    loss.backward()
    real = torch.cat([padded.mask_n, padded.mask_m], dim=1)
    assert torch.isfinite(y.grad).all() and torch.all(y.grad[~real] == 0)
    assert batch.A.shape[0] == 2


def test_certificate_loss_has_no_cheap_plateau_at_the_lower_bound():
    # set cover: x = lb = 0 and lambda = 0 give the spec's bounds-as-rows loss a
    # cheap point (lambda_lower = c zeroes three terms); here every cover row is
    # violated by 1 and the gap term is 0 only because both objectives are 0
    lp = scale(generate("set_cover", np.random.default_rng(0), rows=20, cols=20))
    batch = column_batch([lp])
    zero = torch.zeros(1, lp.n + lp.m)
    _, terms = certificate_loss(zero, *batch[1:], lb=batch.lb, ub=batch.ub)
    assert float(terms["primal"]) > 0.5
    sol = solve(lp)
    _, at_optimum = certificate_loss(
        y_pred_of([(sol.x, sol.lam)], lp.m, lp.n), *batch[1:], lb=batch.lb, ub=batch.ub
    )
    assert max(float(t) for t in at_optimum.values()) < 1e-6


def test_certificate_loss_rejects_bad_weights_and_missing_labels_and_takes_float64(
    boxed,
):
    batch = column_batch(boxed)
    M, N = batch.A.shape[1:]
    y = torch.zeros(2, N + M)
    with pytest.raises(ValueError, match="primal_weight must be >= 0"):
        certificate_loss(y, *batch[1:], primal_weight=-1.0)
    with pytest.raises(ValueError, match="needs the labels"):
        certificate_loss(y, *batch[1:], supervised_weight=1.0)
    loss32, _ = certificate_loss(y, *batch[1:], lb=batch.lb, ub=batch.ub)
    as64 = [t.double() if t.is_floating_point() else t for t in batch[1:]]
    loss64, _ = certificate_loss(
        y.double(), *as64, lb=batch.lb.double(), ub=batch.ub.double()
    )
    assert loss64.dtype == torch.float64
    assert float(loss64) == pytest.approx(float(loss32), rel=1e-5)
    loss_mixed, _ = kkt_loss(y, *as64)
    assert loss_mixed.dtype == torch.float32
