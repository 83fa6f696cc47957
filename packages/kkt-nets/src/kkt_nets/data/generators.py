"""Seeded NumPy generators of LP relaxations of classic combinatorial problems.

Each family follows the published generator algorithm (as used by Ecole and
learn2branch), written here from its description, and returns the LP
relaxation: integrality is dropped, ``[0, 1]`` bounds of binaries are kept.

* ``set_cover`` (Balas & Ho 1980): a random 0/1 matrix of the given density
  in which every row covers a column and every column covers a row, integer
  costs in ``[1, max_coef]``; ``min c^T x  s.t.  A x >= 1``.
* ``combinatorial_auction`` (Leyton-Brown, Pearson & Shoham 2000, "arbitrary
  relationships"): bundles grown by the random walk over item compatibilities,
  priced from private values with additivity, each bidder adding substitutable
  (XOR) bids tied by a dummy item; ``max sum price  s.t.`` each item sold at
  most once, posed as ``min -price``.
* ``facility_location`` (Cornuejols, Sridharan & Thizy 1991): customers and
  facilities in the unit square, demands in ``[5, 35]``, capacities in
  ``[10, 160]`` rescaled to ``ratio`` times the total demand, fixed costs
  ``U[100, 110] sqrt(s) + U[0, 90]``, transport costs ``10 d_i`` times the
  distance; variables ``x_ij`` (row-major, customer ``i``, facility ``j``)
  then ``y_j``.
* ``independent_set`` (Barabasi-Albert graph, affinity ``a``): a greedy clique
  partition of the nodes; each clique of two or more nodes gives
  ``sum_{v in K} x_v <= 1`` and each edge between cliques ``x_u + x_v <= 1``;
  ``max sum x`` posed as ``min -sum x``.
* ``random_lp``: dense Gaussian ``A`` and ``c``, feasible by construction
  (``b = A x0 + slack`` for ``x0`` in the box ``[0, 1]^n``) and bounded by the
  box.

:func:`formulate` returns the problem as a :class:`Formulation` (its own rows
and bounds, as a solver such as ``scipy.optimize.linprog`` takes them);
:func:`generate` returns it standardized as an :class:`~kkt_nets.data.lp.LP`
(unscaled: :func:`~kkt_nets.data.lp.scale` is a separate step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kkt_nets.data.lp import LP, standardize


@dataclass(frozen=True)
class Formulation:
    """An LP in its natural form: ``min c^T x`` over ``<=``, ``>=``, ``=`` rows.

    Attributes
    ----------
    c : ndarray
        ``[n]`` objective.
    A_ub, b_ub, A_ge, b_ge, A_eq, b_eq : ndarray or None
        ``<=``, ``>=`` and ``=`` rows (``None`` when absent).
    lb, ub : float
        Bounds shared by every variable (``None``: unbounded).
    name : str
        Identifier.
    """

    c: np.ndarray
    A_ub: np.ndarray | None = None
    b_ub: np.ndarray | None = None
    A_ge: np.ndarray | None = None
    b_ge: np.ndarray | None = None
    A_eq: np.ndarray | None = None
    b_eq: np.ndarray | None = None
    lb: float | None = 0.0
    ub: float | None = None
    name: str = ""

    def standardize(self, bounds_as_rows: bool = False) -> LP:
        """The LP as ``min c^T x  s.t.  A x <= b, lb <= x <= ub``.

        Parameters
        ----------
        bounds_as_rows : bool
            Finite bounds as rows, ``x`` free (the spec's form); see
            :func:`~kkt_nets.data.lp.standardize`.

        Returns
        -------
        LP
            The unscaled standard form.
        """
        return standardize(
            self.c,
            A_ub=self.A_ub,
            b_ub=self.b_ub,
            A_ge=self.A_ge,
            b_ge=self.b_ge,
            A_eq=self.A_eq,
            b_eq=self.b_eq,
            lb=self.lb,
            ub=self.ub,
            name=self.name,
            bounds_as_rows=bounds_as_rows,
        )


def _require(ok: bool, argument: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{argument} must be {allowed}, got {value!r}")


def _positive_int(argument: str, value: Any) -> None:
    _require(
        isinstance(value, int | np.integer)
        and not isinstance(value, bool)
        and value > 0,
        argument,
        value,
        "a positive integer",
    )


def set_cover(
    rng: np.random.Generator,
    rows: int = 50,
    cols: int = 50,
    density: float = 0.1,
    max_coef: int = 100,
) -> Formulation:
    """Set cover relaxation (Balas & Ho): ``min c^T x, A x >= 1, 0 <= x <= 1``.

    ``A`` holds ``round(density rows cols)`` ones, or more where coverage needs:
    every column first covers a random row, every row left empty then gets a
    random column, and the rest are drawn uniformly among the free cells.

    Parameters
    ----------
    rng : numpy.random.Generator
    rows, cols : int
        Elements to cover and candidate sets.
    density : float
        Fraction of ones in ``A``, in ``(0, 1]``.
    max_coef : int
        Costs are integers in ``[1, max_coef]``.

    Returns
    -------
    Formulation
    """
    _positive_int("rows", rows)
    _positive_int("cols", cols)
    _positive_int("max_coef", max_coef)
    _require(0 < density <= 1, "density", density, "in (0, 1]")
    A = np.zeros((rows, cols), dtype=bool)
    A[rng.integers(rows, size=cols), np.arange(cols)] = True
    empty = np.flatnonzero(~A.any(axis=1))
    A[empty, rng.integers(cols, size=empty.size)] = True
    extra = round(density * rows * cols) - int(A.sum())
    if extra > 0:
        A.flat[rng.choice(np.flatnonzero(~A), size=extra, replace=False)] = True
    cost = rng.integers(1, max_coef + 1, size=cols).astype(np.float64)
    return Formulation(
        c=cost, A_ge=A.astype(np.float64), b_ge=np.ones(rows), lb=0.0, ub=1.0
    )


def _grow_bundle(
    rng: np.random.Generator,
    first: int,
    interests: np.ndarray,
    compat: np.ndarray,
    add_item_prob: float,
) -> np.ndarray:
    """Random walk from ``first``: add items by interest x mean compatibility."""
    bundle = [first]
    while len(bundle) < interests.size and rng.random() < add_item_prob:
        weight = interests * compat[bundle].mean(axis=0)
        weight[bundle] = 0.0
        bundle.append(int(rng.choice(interests.size, p=weight / weight.sum())))
    return np.array(sorted(bundle))


def auction_bids(
    rng: np.random.Generator,
    items: int = 20,
    bids: int = 40,
    min_value: float = 1.0,
    max_value: float = 100.0,
    value_deviation: float = 0.5,
    add_item_prob: float = 0.65,
    max_n_sub_bids: int = 5,
    additivity: float = 0.2,
    budget_factor: float = 1.5,
    resale_factor: float = 0.5,
) -> tuple[list[np.ndarray], np.ndarray, list[list[int]]]:
    """Bids of the "arbitrary relationships" distribution (Leyton-Brown et al.).

    Items get common values ``U[min_value, max_value]`` and a random symmetric
    compatibility matrix (rows normalized). Each bidder draws interests
    ``U[0, 1]`` and private values ``value + max_value value_deviation
    (2 interest - 1)``, grows a bundle from an item drawn by interest (each
    step continues with probability ``add_item_prob`` and adds an item with
    probability proportional to interest times mean compatibility with the
    bundle) and prices it ``sum private + |bundle|^(1 + additivity)``. From
    each item of that bundle a substitute bundle is grown; those priced within
    ``(0, budget_factor price]`` whose common value is at least
    ``resale_factor`` times the original's are offered too (the
    ``max_n_sub_bids`` dearest), as XOR bids of one bidder.

    Parameters
    ----------
    rng : numpy.random.Generator
    items, bids : int
        Items for sale and the number of bids to draw.
    min_value, max_value, value_deviation, add_item_prob, max_n_sub_bids,
    additivity, budget_factor, resale_factor
        The distribution's parameters (defaults of the published generator).

    Returns
    -------
    bundles : list of ndarray
        Sorted item indices of each bid.
    prices : ndarray
        ``[bids]`` positive prices.
    xor_groups : list of list of int
        Bids of one bidder that exclude each other (two or more each).
    """
    _positive_int("items", items)
    _positive_int("bids", bids)
    _require(0 < min_value <= max_value, "min_value", min_value, "in (0, max_value]")
    _require(0 <= value_deviation <= 1, "value_deviation", value_deviation, "in [0, 1]")
    _require(0 <= add_item_prob < 1, "add_item_prob", add_item_prob, "in [0, 1)")
    _require(max_n_sub_bids >= 0, "max_n_sub_bids", max_n_sub_bids, ">= 0")
    _require(additivity >= -1, "additivity", additivity, ">= -1")
    _require(budget_factor >= 1, "budget_factor", budget_factor, ">= 1")
    _require(0 <= resale_factor <= 1, "resale_factor", resale_factor, "in [0, 1]")
    values = min_value + (max_value - min_value) * rng.random(items)
    compat = np.triu(rng.random((items, items)), k=1)
    compat = compat + compat.T
    compat = compat / np.maximum(compat.sum(axis=1, keepdims=True), 1e-300)
    bundles: list[np.ndarray] = []
    prices: list[float] = []
    xor_groups: list[list[int]] = []

    def price_of(bundle: np.ndarray, private: np.ndarray) -> float:
        return float(private[bundle].sum() + bundle.size ** (1 + additivity))

    while len(bundles) < bids:
        interests = rng.random(items)
        private = values + max_value * value_deviation * (2 * interests - 1)
        first = int(rng.choice(items, p=interests / interests.sum()))
        bundle = _grow_bundle(rng, first, interests, compat, add_item_prob)
        price = price_of(bundle, private)
        if price <= 0:
            continue
        offers = {tuple(bundle): price}
        substitutes: dict[tuple[int, ...], float] = {}
        for item in bundle:
            sub = _grow_bundle(rng, int(item), interests, compat, add_item_prob)
            sub_price = price_of(sub, private)
            if (
                tuple(sub) not in offers
                and 0 < sub_price <= budget_factor * price
                and values[sub].sum() >= resale_factor * values[bundle].sum()
            ):
                substitutes[tuple(sub)] = sub_price
        room = min(max_n_sub_bids, bids - len(bundles) - 1)
        dearest = sorted(substitutes.items(), key=lambda kv: -kv[1])[:room]
        offers.update(dearest)
        ids = list(range(len(bundles), len(bundles) + len(offers)))
        for key, value in offers.items():
            bundles.append(np.array(key))
            prices.append(value)
        if len(ids) > 1:
            xor_groups.append(ids)
    return bundles, np.array(prices), xor_groups


def combinatorial_auction(
    rng: np.random.Generator, items: int = 20, bids: int = 40
) -> Formulation:
    """Combinatorial auction relaxation: ``min -price^T x``, items sold once.

    Bids from :func:`auction_bids` (its other parameters at their published
    defaults). Rows: one per item that some bid holds
    (``sum_{bids with item} x <= 1``), then one per XOR group (its dummy
    item); ``0 <= x <= 1``.

    Parameters
    ----------
    rng : numpy.random.Generator
    items, bids : int
        Items for sale and bids (variables).

    Returns
    -------
    Formulation
    """
    bundles, prices, xor_groups = auction_bids(rng, items, bids)
    holds = np.zeros((items, bids))
    for k, bundle in enumerate(bundles):
        holds[bundle, k] = 1.0
    dummy = np.zeros((len(xor_groups), bids))
    for g, group in enumerate(xor_groups):
        dummy[g, group] = 1.0
    A = np.vstack([holds[holds.any(axis=1)], dummy])
    return Formulation(c=-prices, A_ub=A, b_ub=np.ones(A.shape[0]), lb=0.0, ub=1.0)


def facility_location(
    rng: np.random.Generator,
    customers: int = 10,
    facilities: int = 5,
    ratio: float = 5.0,
    total_capacity_row: bool = True,
) -> Formulation:
    """Capacitated facility location relaxation (Cornuejols et al.).

    ``min f^T y + sum_ij t_ij x_ij`` s.t. ``sum_j x_ij = 1`` (each customer
    served), ``sum_i d_i x_ij - s_j y_j <= 0`` (capacity), ``x_ij - y_j <= 0``
    (tightening), optionally ``sum_j s_j y_j >= sum_i d_i``; all in ``[0, 1]``.

    Parameters
    ----------
    rng : numpy.random.Generator
    customers, facilities : int
    ratio : float
        Total capacity over total demand, >= 1 (below, the LP is infeasible).
    total_capacity_row : bool
        Add the redundant total-capacity row.

    Returns
    -------
    Formulation
        Variables ``x`` (``[customers, facilities]`` row-major) then ``y``.
    """
    _positive_int("customers", customers)
    _positive_int("facilities", facilities)
    _require(ratio >= 1, "ratio", ratio, ">= 1 (total capacity covers demand)")
    cx, cy = rng.random(customers), rng.random(customers)
    fx, fy = rng.random(facilities), rng.random(facilities)
    demand = rng.integers(5, 36, size=customers).astype(np.float64)
    capacity = rng.integers(10, 161, size=facilities).astype(np.float64)
    fixed = rng.integers(100, 111, size=facilities) * np.sqrt(capacity)
    fixed = fixed + rng.integers(0, 91, size=facilities)
    capacity = capacity * ratio * demand.sum() / capacity.sum()
    distance = np.hypot(cx[:, None] - fx[None, :], cy[:, None] - fy[None, :])
    transport = 10.0 * distance * demand[:, None]
    n_x = customers * facilities
    cost = np.concatenate([transport.ravel(), fixed])
    serve = np.zeros((customers, n_x + facilities))
    cap = np.zeros((facilities, n_x + facilities))
    tight = np.zeros((n_x, n_x + facilities))
    for i in range(customers):
        cols = i * facilities + np.arange(facilities)
        serve[i, cols] = 1.0
        cap[np.arange(facilities), cols] = demand[i]
        tight[cols, cols] = 1.0
        tight[cols, n_x + np.arange(facilities)] = -1.0
    cap[np.arange(facilities), n_x + np.arange(facilities)] = -capacity
    A_ge = b_ge = None
    if total_capacity_row:
        A_ge = np.concatenate([np.zeros(n_x), capacity])[None, :]
        b_ge = np.array([demand.sum()])
    return Formulation(
        c=cost,
        A_ub=np.vstack([cap, tight]),
        b_ub=np.zeros(facilities + n_x),
        A_ge=A_ge,
        b_ge=b_ge,
        A_eq=serve,
        b_eq=np.ones(customers),
        lb=0.0,
        ub=1.0,
    )


def barabasi_albert_edges(
    rng: np.random.Generator, nodes: int, affinity: int
) -> np.ndarray:
    """Edges of a Barabasi-Albert graph (preferential attachment).

    The first ``affinity + 1`` nodes form a clique; each later node links to
    ``affinity`` distinct earlier nodes drawn with probability proportional to
    their degree.

    Parameters
    ----------
    rng : numpy.random.Generator
    nodes : int
    affinity : int
        Links per new node, ``1 <= affinity < nodes``.

    Returns
    -------
    ndarray
        ``[E, 2]`` integer edges ``(u, v)`` with ``u < v``, where
        ``E = affinity (affinity + 1) / 2 + (nodes - affinity - 1) affinity``.
    """
    _positive_int("nodes", nodes)
    _positive_int("affinity", affinity)
    _require(affinity < nodes, "affinity", affinity, f"smaller than nodes={nodes}")
    edges = [(u, v) for u in range(affinity + 1) for v in range(u + 1, affinity + 1)]
    degree = np.zeros(nodes)
    degree[: affinity + 1] = affinity
    for new in range(affinity + 1, nodes):
        prob = degree[:new] / degree[:new].sum()
        for old in rng.choice(new, size=affinity, replace=False, p=prob):
            edges.append((int(old), new))
            degree[old] += 1
        degree[new] = affinity
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def clique_partition(nodes: int, edges: np.ndarray) -> list[list[int]]:
    """Greedy partition of the nodes into cliques.

    Repeatedly takes the remaining node of largest degree and adds its
    remaining neighbors, by decreasing degree, that are adjacent to every
    node already in the clique.

    Parameters
    ----------
    nodes : int
    edges : ndarray
        ``[E, 2]`` undirected edges.

    Returns
    -------
    list of list of int
        Disjoint cliques covering every node.
    """
    neighbors: list[set[int]] = [set() for _ in range(nodes)]
    for u, v in edges:
        neighbors[u].add(int(v))
        neighbors[v].add(int(u))
    degree = np.array([len(nb) for nb in neighbors])
    order = [int(v) for v in np.argsort(-degree, kind="stable")]
    left = set(order)
    cliques = []
    for center in order:
        if center not in left:
            continue
        clique = [center]
        for v in sorted(neighbors[center] & left, key=lambda v: (-degree[v], v)):
            if all(v in neighbors[u] for u in clique):
                clique.append(v)
        left.difference_update(clique)
        cliques.append(clique)
    return cliques


def independent_set(
    rng: np.random.Generator, nodes: int = 30, affinity: int = 4
) -> Formulation:
    """Maximum independent set relaxation on a Barabasi-Albert graph.

    Rows: each clique of :func:`clique_partition` with two or more nodes, then
    each edge joining two cliques; ``min -sum x``, ``0 <= x <= 1``.

    Parameters
    ----------
    rng : numpy.random.Generator
    nodes, affinity : int
        See :func:`barabasi_albert_edges`.

    Returns
    -------
    Formulation
    """
    edges = barabasi_albert_edges(rng, nodes, affinity)
    cliques = [k for k in clique_partition(nodes, edges) if len(k) > 1]
    owner = np.arange(nodes)
    for g, clique in enumerate(cliques):
        owner[clique] = nodes + g
    between = edges[owner[edges[:, 0]] != owner[edges[:, 1]]]
    A = np.zeros((len(cliques) + len(between), nodes))
    for g, clique in enumerate(cliques):
        A[g, clique] = 1.0
    A[len(cliques) + np.arange(len(between))[:, None], between] = 1.0
    return Formulation(
        c=-np.ones(nodes), A_ub=A, b_ub=np.ones(A.shape[0]), lb=0.0, ub=1.0
    )


def random_lp_parts(
    rng: np.random.Generator, m: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Data of :func:`random_lp` with its interior point ``x0``.

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
        Rows and variables.

    Returns
    -------
    c : ndarray
        ``[n]`` standard normal.
    A : ndarray
        ``[m, n]`` standard normal.
    b : ndarray
        ``A x0 + slack`` with slack ``U[0.1, 1]``.
    x0 : ndarray
        ``[n]`` uniform in ``[0, 1]``, strictly feasible.
    """
    _positive_int("m", m)
    _positive_int("n", n)
    A = rng.standard_normal((m, n))
    x0 = rng.random(n)
    b = A @ x0 + rng.uniform(0.1, 1.0, size=m)
    return rng.standard_normal(n), A, b, x0


def random_lp(rng: np.random.Generator, m: int = 20, n: int = 20) -> Formulation:
    """Random feasible bounded LP: ``min c^T x, A x <= b, 0 <= x <= 1``.

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
        Rows and variables.

    Returns
    -------
    Formulation
        See :func:`random_lp_parts`.
    """
    c, A, b, _ = random_lp_parts(rng, m, n)
    return Formulation(c=c, A_ub=A, b_ub=b, lb=0.0, ub=1.0)


GENERATORS: dict[str, Callable[..., Formulation]] = {
    "set_cover": set_cover,
    "combinatorial_auction": combinatorial_auction,
    "facility_location": facility_location,
    "independent_set": independent_set,
    "random_lp": random_lp,
}


def family_params(family: str) -> dict[str, Any]:
    """The parameters a family takes, with their defaults.

    Parameters
    ----------
    family : str
        A key of :data:`GENERATORS`.

    Returns
    -------
    dict
        Parameter name to default (``rng`` excluded).

    Raises
    ------
    ValueError
        If ``family`` is unknown.
    """
    if family not in GENERATORS:
        raise ValueError(f"family must be one of {sorted(GENERATORS)}, got {family!r}")
    signature = inspect.signature(GENERATORS[family])
    return {
        name: p.default for name, p in signature.parameters.items() if name != "rng"
    }


def family_shape(family: str, **params: Any) -> tuple[int, int]:
    """Upper bounds on the rows and the columns of an instance of ``family``.

    Rows of the standard form (equalities count twice, bounds on the columns),
    before any instance is drawn, so a size that cannot fit is refused early.

    Parameters
    ----------
    family : str
        A key of :data:`GENERATORS`.
    **params
        Family parameters (defaults filled in for those not given).

    Returns
    -------
    (int, int)
        ``(max rows, columns)``.
    """
    p = {**family_params(family), **params}
    if family == "set_cover":
        return int(p["rows"]), int(p["cols"])
    if family == "combinatorial_auction":  # items held, then one per XOR group
        return int(p["items"]) + int(p["bids"]), int(p["bids"])
    if family == "facility_location":
        pairs = int(p["customers"]) * int(p["facilities"])
        rows = int(p["facilities"]) + pairs + 1 + 2 * int(p["customers"])
        return rows, pairs + int(p["facilities"])
    if family == "independent_set":
        return int(p["nodes"]) * (1 + int(p["affinity"])), int(p["nodes"])
    return int(p["m"]), int(p["n"])


def formulate(family: str, rng: np.random.Generator, **params: Any) -> Formulation:
    """Draw one instance of ``family`` in its natural form.

    Parameters
    ----------
    family : str
        A key of :data:`GENERATORS`.
    rng : numpy.random.Generator
    **params
        Family parameters (see :func:`family_params`).

    Returns
    -------
    Formulation
        Named ``family``.

    Raises
    ------
    ValueError
        Unknown family, unknown parameter name or invalid value.
    """
    allowed = family_params(family)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"{family} takes no parameter {unknown[0]!r}; allowed: {sorted(allowed)}"
        )
    return replace(GENERATORS[family](rng, **params), name=family)


def generate(
    family: str, rng: np.random.Generator, bounds_as_rows: bool = False, **params: Any
) -> LP:
    """Draw one instance of ``family`` as an unscaled standard-form LP.

    Parameters
    ----------
    family : str
        A key of :data:`GENERATORS`.
    rng : numpy.random.Generator
    bounds_as_rows : bool
        The ``[0, 1]`` bounds as rows (the spec's form) instead of on the
        columns.
    **params
        Family parameters (see :func:`family_params`).

    Returns
    -------
    LP
        ``min c^T x  s.t.  A x <= b, lb <= x <= ub``, named ``family``.

    Raises
    ------
    ValueError
        Unknown family, unknown parameter name or invalid value.
    """
    return formulate(family, rng, **params).standardize(bounds_as_rows)
