import itertools

import numpy as np
import pytest

from kkt_nets.data.generators import (
    GENERATORS,
    auction_bids,
    barabasi_albert_edges,
    clique_partition,
    family_params,
    formulate,
    generate,
    random_lp_parts,
)
from kkt_nets.data.lp import LP
from kkt_nets.data.solve import solve

SMALL = {
    "set_cover": {"rows": 12, "cols": 15, "density": 0.15},
    "combinatorial_auction": {"items": 10, "bids": 15},
    "facility_location": {"customers": 6, "facilities": 3},
    "independent_set": {"nodes": 12, "affinity": 3},
    "random_lp": {"m": 10, "n": 12},
}


def rng(seed=0):
    return np.random.default_rng(seed)


def binary_vectors(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def rows_of(lp: LP, kind: str):
    keep = np.array([k == kind for k in lp.row_kind])
    return lp.A[keep], lp.b[keep]


@pytest.mark.parametrize("family", sorted(GENERATORS))
def test_same_seed_same_instance_different_seed_different(family):
    a, b = (
        generate(family, rng(3), **SMALL[family]),
        generate(family, rng(3), **SMALL[family]),
    )
    other = generate(family, rng(4), **SMALL[family])
    assert isinstance(a, LP) and a.name == family
    for key in ("A", "b", "c"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.row_kind == b.row_kind
    assert (
        a.A.shape != other.A.shape
        or not np.array_equal(a.A, other.A)
        or not (np.array_equal(a.c, other.c))
    )


@pytest.mark.parametrize("family", sorted(GENERATORS))
def test_relaxation_keeps_unit_box_and_highs_finds_it_optimal(family):
    columns = generate(family, rng(1), **SMALL[family])
    np.testing.assert_array_equal(columns.lb, np.zeros(columns.n))
    np.testing.assert_array_equal(columns.ub, np.ones(columns.n))
    assert not set(columns.row_kind) & {"upper", "lower"}
    lp = generate(family, rng(1), bounds_as_rows=True, **SMALL[family])
    np.testing.assert_array_equal(lp.A[: columns.m], columns.A)
    assert np.isinf(lp.lb).all() and np.isinf(lp.ub).all()
    upper, upper_b = rows_of(lp, "upper")
    lower, lower_b = rows_of(lp, "lower")
    np.testing.assert_array_equal(upper, np.eye(lp.n))
    np.testing.assert_array_equal(upper_b, np.ones(lp.n))
    np.testing.assert_array_equal(lower, -np.eye(lp.n))
    np.testing.assert_array_equal(lower_b, np.zeros(lp.n))
    rows_solution, columns_solution = solve(lp), solve(columns)
    assert rows_solution.status == columns_solution.status == "Optimal"
    assert rows_solution.z == pytest.approx(columns_solution.z, abs=1e-9)


def test_set_cover_structure():
    lp = generate("set_cover", rng(), rows=12, cols=15, density=0.15)
    A_ge, b_ge = rows_of(lp, "ge")
    cover = -A_ge
    assert cover.shape == (12, 15) and set(np.unique(cover)) == {0.0, 1.0}
    np.testing.assert_array_equal(b_ge, -np.ones(12))
    assert cover.any(axis=0).all() and cover.any(axis=1).all()
    assert cover.sum() == round(0.15 * 12 * 15)  # 27 >= max(rows, cols)
    assert np.all(lp.c == np.round(lp.c)) and lp.c.min() >= 1 and lp.c.max() <= 100


def test_set_cover_covers_every_row_and_column_even_at_tiny_density():
    for seed in range(5):
        cover = -rows_of(
            generate("set_cover", rng(seed), rows=30, cols=7, density=0.01), "ge"
        )[0]
        assert cover.any(axis=0).all() and cover.any(axis=1).all()


def test_set_cover_binary_feasible_points_are_exactly_the_covers():
    lp = generate("set_cover", rng(2), rows=6, cols=8, density=0.3)
    cover = -rows_of(lp, "ge")[0]
    points = binary_vectors(8)
    feasible = np.all(points @ lp.A.T <= lp.b + 1e-12, axis=1)
    np.testing.assert_array_equal(feasible, np.all(points @ cover.T >= 1, axis=1))


def test_auction_columns_are_the_bids_bundles_and_xor_groups():
    bundles, prices, groups = auction_bids(rng(5), items=10, bids=15)
    lp = generate("combinatorial_auction", rng(5), items=10, bids=15)
    assert len(bundles) == 15 and lp.n == 15
    np.testing.assert_allclose(lp.c, -prices)
    assert np.all(prices > 0)
    A, b = rows_of(lp, "ub")
    np.testing.assert_array_equal(b, np.ones(A.shape[0]))
    sold = sorted(set(np.concatenate(bundles)))
    item_rows, dummy_rows = A[: len(sold)], A[len(sold) :]
    for k, bundle in enumerate(bundles):
        assert bundle.size >= 1 and np.all(np.diff(bundle) > 0)  # sorted, distinct
        np.testing.assert_array_equal(
            np.flatnonzero(item_rows[:, k]), np.searchsorted(sold, bundle)
        )
    assert len(dummy_rows) == len(groups)
    for row, group in zip(dummy_rows, groups):
        np.testing.assert_array_equal(np.flatnonzero(row), group)
        assert len({tuple(bundles[k]) for k in group}) == len(
            group
        )  # substitutes differ


def test_auction_binary_feasible_points_sell_each_item_once():
    bundles, _, groups = auction_bids(rng(7), items=6, bids=10)
    lp = generate("combinatorial_auction", rng(7), items=6, bids=10)
    holds = np.zeros((6, 10))
    for k, bundle in enumerate(bundles):
        holds[bundle, k] = 1
    points = binary_vectors(10)
    feasible = np.all(points @ lp.A.T <= lp.b + 1e-12, axis=1)
    expected = np.all(points @ holds.T <= 1, axis=1)
    for group in groups:
        expected &= points[:, group].sum(axis=1) <= 1
    np.testing.assert_array_equal(feasible, expected)


def test_facility_location_structure():
    customers, facilities = 6, 3
    lp = generate(
        "facility_location",
        rng(),
        customers=customers,
        facilities=facilities,
        ratio=4.0,
    )
    n_x = customers * facilities
    assert lp.n == n_x + facilities
    serve, serve_b = rows_of(lp, "eq+")
    np.testing.assert_array_equal(serve_b, np.ones(customers))
    for i, row in enumerate(serve):  # customer i: sum_j x_ij = 1, nothing else
        expected = np.zeros(lp.n)
        expected[i * facilities : (i + 1) * facilities] = 1
        np.testing.assert_array_equal(row, expected)
    np.testing.assert_array_equal(rows_of(lp, "eq-")[0], -serve)
    ub, ub_b = rows_of(lp, "ub")
    np.testing.assert_array_equal(ub_b, np.zeros(facilities + n_x))
    cap = ub[:facilities]
    demand = cap[0, :n_x:facilities]
    capacity = -np.diag(cap[:, n_x:])
    assert np.all((demand >= 5) & (demand <= 35)) and np.all(capacity > 0)
    for j in range(facilities):  # sum_i d_i x_ij - s_j y_j <= 0
        np.testing.assert_array_equal(cap[j, j:n_x:facilities], demand)
        assert np.count_nonzero(cap[j]) == customers + 1
    assert capacity.sum() == pytest.approx(4.0 * demand.sum())
    tight = ub[facilities:]
    for i, j in itertools.product(range(customers), range(facilities)):
        row = tight[i * facilities + j]
        assert (
            row[i * facilities + j] == 1
            and row[n_x + j] == -1
            and np.count_nonzero(row) == 2
        )
    total, total_b = rows_of(lp, "ge")
    np.testing.assert_allclose(-total[0, n_x:], capacity)
    assert -total_b[0] == pytest.approx(demand.sum())
    # transport costs 10 d_i dist_ij lie in [0, 10 d_i sqrt(2)]
    assert np.all(lp.c[:n_x] >= 0) and np.all(
        lp.c[:n_x] <= 10 * np.sqrt(2) * np.repeat(demand, facilities)
    )


def test_barabasi_albert_edge_count_and_degrees():
    edges = barabasi_albert_edges(rng(), nodes=25, affinity=3)
    assert len(edges) == 3 * 4 // 2 + (25 - 4) * 3
    assert np.all(edges[:, 0] < edges[:, 1])
    assert len({tuple(e) for e in edges}) == len(edges)  # simple graph
    degree = np.bincount(edges.ravel(), minlength=25)
    assert degree.min() >= 3


def test_clique_partition_is_a_partition_into_cliques():
    edges = barabasi_albert_edges(rng(1), nodes=30, affinity=4)
    adjacent = {tuple(e) for e in edges} | {tuple(e[::-1]) for e in edges}
    cliques = clique_partition(30, edges)
    assert sorted(v for k in cliques for v in k) == list(range(30))
    for clique in cliques:
        assert all((u, v) in adjacent for u, v in itertools.combinations(clique, 2))
    # literal: triangle 0-1-2 plus pendant 3 on node 2
    assert clique_partition(4, np.array([[0, 1], [1, 2], [0, 2], [2, 3]])) == [
        [2, 0, 1],
        [3],
    ]


def test_independent_set_rows_cover_every_edge_and_binaries_are_independent_sets():
    nodes = 12
    edges = barabasi_albert_edges(rng(4), nodes=nodes, affinity=3)
    lp = generate("independent_set", rng(4), nodes=nodes, affinity=3)
    A, b = rows_of(lp, "ub")
    np.testing.assert_array_equal(b, np.ones(len(A)))
    for u, v in edges:
        assert np.any((A[:, u] == 1) & (A[:, v] == 1)), (u, v)
    points = binary_vectors(nodes)
    feasible = np.all(points @ lp.A.T <= lp.b + 1e-12, axis=1)
    independent = ~np.any(
        (points[:, edges[:, 0]] == 1) & (points[:, edges[:, 1]] == 1), axis=1
    )
    np.testing.assert_array_equal(feasible, independent)
    # the relaxation bounds the brute-force maximum independent set
    alpha = points[independent].sum(axis=1).max()
    assert -solve(lp).z >= alpha - 1e-9


def test_random_lp_contains_its_interior_point():
    c, A, b, x0 = random_lp_parts(rng(), m=10, n=12)
    assert np.all(A @ x0 < b) and np.all((x0 >= 0) & (x0 <= 1))
    lp = generate("random_lp", rng(), m=10, n=12)
    ub, ub_b = rows_of(lp, "ub")
    np.testing.assert_array_equal(ub, A)
    np.testing.assert_array_equal(ub_b, b)
    np.testing.assert_array_equal(lp.c, c)
    assert lp.max_violation(x0) == 0.0


def test_formulate_names_the_family_and_matches_generate():
    problem = formulate("set_cover", rng(), rows=5, cols=6)
    lp = generate("set_cover", rng(), rows=5, cols=6)
    assert problem.name == "set_cover"
    np.testing.assert_array_equal(problem.standardize().A, lp.A)


def test_family_params_lists_defaults():
    assert family_params("independent_set") == {"nodes": 30, "affinity": 4}
    assert set(family_params("set_cover")) == {"rows", "cols", "density", "max_coef"}


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("knapsack", {}, r"family must be one of \['combinatorial_auction'"),
        (
            "set_cover",
            {"nodes": 3},
            r"set_cover takes no parameter 'nodes'; allowed: \[",
        ),
        ("set_cover", {"density": 0.0}, r"density must be in \(0, 1\], got 0.0"),
        ("set_cover", {"rows": 0}, "rows must be a positive integer, got 0"),
        ("set_cover", {"cols": 2.5}, "cols must be a positive integer, got 2.5"),
        (
            "independent_set",
            {"nodes": 5, "affinity": 5},
            "affinity must be smaller than nodes=5",
        ),
        ("facility_location", {"ratio": 0.5}, "ratio must be >= 1"),
        ("combinatorial_auction", {"bids": -1}, "bids must be a positive integer"),
        ("random_lp", {"m": True}, "m must be a positive integer"),
    ],
)
def test_bad_family_or_params_raise_value_error_naming_them(family, params, message):
    with pytest.raises(ValueError, match=message):
        generate(family, rng(), **params)
