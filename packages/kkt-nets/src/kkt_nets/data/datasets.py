"""PyTorch datasets over :class:`~kkt_nets.data.lp.LP` instances and their collates.

Two views of the same instances, one per model path:

* :class:`LPDataset` feeds :class:`~kkt_nets.models.models.KKTNetMLP`; its
  :func:`pad_collate` zero-pads every instance to the *dataset's* largest
  ``(M, N)`` (the MLP has a fixed input size) and flattens it into
  ``[vec(A) row-major, b, c]``.
* :class:`GraphDataset` feeds :class:`~kkt_nets.models.models.GNNPolicy`; each
  item is a bipartite constraint/variable graph (:class:`BipartiteNodeData`)
  and :func:`pad_collate_graphs` batches the graphs with PyG while padding the
  dense ``A, b, c`` to the *batch's* largest ``(M, N)`` for the loss.

Both collates return tuples that unpack as the training loop of the spec
unpacks them, ``(model_input, A, b, c, mask_m, mask_n)`` and ``(batch_graph,
A, b, c, mask_m, mask_n, m_sizes, n_sizes)``, as :class:`LPBatch` /
:class:`GraphBatch`: tuples that also carry the padded bounds ``lb``, ``ub``
(``[B, N]``; ``0`` in padded columns, ``-inf``/``inf`` where a variable has no
bound) and, when the dataset has labels, ``x_star [B, N]`` and ``lam_star
[B, M]`` as attributes (``None`` otherwise), and move to a device with
``.to(device)``.

Node features (float32, computed on the LP as given, i.e. after scaling if it
was scaled); ``deg`` counts nonzeros:

* constraint ``i`` (:data:`C_FEATS` = 3): ``b_i``, ``deg_i / n``,
  ``sum_j A_ij / n`` (row mean of ``A``);
* variable ``j`` (:data:`V_FEATS` = 7): ``c_j``, ``deg_j / m``,
  ``sum_i A_ij / m`` (column mean of ``A``), ``lb_j`` and ``ub_j`` (0 where
  infinite) and two flags, ``lb_j`` finite and ``ub_j`` finite.

Each edge ``(i, j)`` with ``A_ij != 0`` carries ``edge_attr = [A_ij]``; the
graph also holds the per-variable ``lb``, ``ub`` (for the output layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data

from kkt_nets.data.lp import LP, nonzeros

C_FEATS = 3
"""Number of constraint-node features: ``b_i``, row degree / n, row mean of A."""
V_FEATS = 7
"""Number of variable-node features: ``c_j``, column degree / m, column mean of
A, finite ``lb_j``, finite ``ub_j``, and whether each bound is finite."""

LPItem = dict[str, Any]
"""One :class:`LPDataset` item: ``A, b, c, lb, ub`` tensors (labels if any) and
the padding sizes."""

Labels = Sequence[tuple[np.ndarray, np.ndarray]]
"""Per instance ``(x_star [n], lam_star [m])``, e.g. HiGHS's solutions."""


def _tensors(lp: LP) -> dict[str, torch.Tensor]:
    """``A, b, c, lb, ub`` of ``lp`` as float32 tensors (``A`` dense)."""
    arrays = {"A": lp.dense_A(), "b": lp.b, "c": lp.c, "lb": lp.lb, "ub": lp.ub}
    return {key: torch.as_tensor(v, dtype=torch.float32) for key, v in arrays.items()}


def _with_labels(
    items: list[dict[str, torch.Tensor]], lps: Sequence[LP], labels: Labels | None
) -> list[dict[str, torch.Tensor]]:
    """Add ``x_star``, ``lam_star`` to each item (checked against its LP)."""
    if labels is None:
        return items
    if len(labels) != len(lps):
        raise ValueError(f"labels must hold {len(lps)} pairs, got {len(labels)}")
    for item, lp, (x_star, lam_star) in zip(items, lps, labels):
        if np.shape(x_star) != (lp.n,) or np.shape(lam_star) != (lp.m,):
            raise ValueError(
                f"labels of LP {lp.name!r} must be x_star [{lp.n}] and lam_star "
                f"[{lp.m}], got {np.shape(x_star)} and {np.shape(lam_star)}"
            )
        item["x_star"] = torch.as_tensor(x_star, dtype=torch.float32)
        item["lam_star"] = torch.as_tensor(lam_star, dtype=torch.float32)
    return items


def _pad(
    items: Sequence[dict[str, torch.Tensor]], M: int, N: int
) -> dict[str, torch.Tensor | None]:
    """Zero-pad per-instance tensors to ``[B, M, N]`` / ``[B, M]`` / ``[B, N]``.

    Returns ``A, b, c, mask_m, mask_n, lb, ub`` and ``x_star``, ``lam_star``
    (``None`` unless every item has labels); padded bounds are 0.
    """
    B = len(items)
    out: dict[str, torch.Tensor | None] = {
        "A": torch.zeros(B, M, N),
        "mask_m": torch.zeros(B, M, dtype=torch.bool),
        "mask_n": torch.zeros(B, N, dtype=torch.bool),
    }
    labeled = all("x_star" in item for item in items)
    by_rows = ("b", "lam_star") if labeled else ("b",)
    by_cols = ("c", "lb", "ub", "x_star") if labeled else ("c", "lb", "ub")
    for key in (*by_rows, *by_cols):
        out[key] = torch.zeros(B, M if key in by_rows else N)
    for k, item in enumerate(items):
        m, n = item["A"].shape
        out["A"][k, :m, :n] = item["A"]
        out["mask_m"][k, :m] = True
        out["mask_n"][k, :n] = True
        for key in by_rows:
            out[key][k, :m] = item[key]
        for key in by_cols:
            out[key][k, :n] = item[key]
    out.setdefault("x_star", None)
    out.setdefault("lam_star", None)
    return out


class _Batch(tuple):
    """A collated batch: a tuple of the spec's items plus named extras.

    Unpacks like the spec's tuple; ``lb``, ``ub``, ``x_star``, ``lam_star``
    are attributes.
    """

    EXTRAS = ("lb", "ub", "x_star", "lam_star")

    def __new__(cls, items: Sequence[Any], **extras: torch.Tensor | None) -> _Batch:
        """The tuple of ``items`` with the :attr:`EXTRAS` as attributes."""
        batch = super().__new__(cls, items)
        for key in cls.EXTRAS:
            setattr(batch, key, extras.get(key))
        return batch

    def to(self, device: str | torch.device) -> _Batch:
        """The batch with every tensor (and PyG batch) on ``device``."""
        extras = {key: getattr(self, key) for key in self.EXTRAS}
        extras = {k: None if v is None else v.to(device) for k, v in extras.items()}
        items = [None if item is None else item.to(device) for item in self]
        return type(self)(items, **extras)

    @property
    def A(self) -> torch.Tensor:
        """``[B, M, N]`` padded constraint matrices."""
        return self[1]

    @property
    def b(self) -> torch.Tensor:
        """``[B, M]`` right-hand sides."""
        return self[2]

    @property
    def c(self) -> torch.Tensor:
        """``[B, N]`` objectives."""
        return self[3]

    @property
    def mask_m(self) -> torch.Tensor:
        """``[B, M]`` bool, True on real rows."""
        return self[4]

    @property
    def mask_n(self) -> torch.Tensor:
        """``[B, N]`` bool, True on real variables."""
        return self[5]


class LPBatch(_Batch):
    """``(model_input, A, b, c, mask_m, mask_n)`` with ``lb, ub, x_star, lam_star``."""

    @property
    def model_input(self) -> torch.Tensor:
        """``[B, M*N + M + N]`` flat MLP input."""
        return self[0]


class GraphBatch(_Batch):
    """``(batch_graph, A, b, c, mask_m, mask_n, m_sizes, n_sizes)`` plus extras."""

    @property
    def batch_graph(self) -> Batch:
        """The PyG batch of bipartite graphs."""
        return self[0]

    @property
    def m_sizes(self) -> torch.Tensor:
        """``[B]`` long, constraints per graph."""
        return self[6]

    @property
    def n_sizes(self) -> torch.Tensor:
        """``[B]`` long, variables per graph."""
        return self[7]


class LPDataset(Dataset):
    """Instances for the MLP path, padded to one fixed size ``(max_m, max_n)``.

    Parameters
    ----------
    lps : sequence of LP
        The instances (non-empty).
    max_m, max_n : int, optional
        Padded number of rows / variables; default the largest in ``lps``. Pass
        the training set's sizes to evaluate a trained MLP on another split.
    labels : sequence of (ndarray, ndarray), optional
        ``(x_star, lam_star)`` per instance, for a supervised loss term.

    Raises
    ------
    ValueError
        If ``lps`` is empty, a size is not positive, or an instance is larger
        than ``max_m`` / ``max_n``.

    Notes
    -----
    Item ``i`` is a dict with the unpadded float32 tensors ``"A" [m, n]``,
    ``"b" [m]``, ``"c" [n]``, ``"lb"``, ``"ub" [n]`` (and ``"x_star"``,
    ``"lam_star"`` with labels) and the ints ``"max_m"``, ``"max_n"`` that
    :func:`pad_collate` pads to; use ``DataLoader(ds, collate_fn=pad_collate)``.
    """

    def __init__(
        self,
        lps: Sequence[LP],
        max_m: int | None = None,
        max_n: int | None = None,
        labels: Labels | None = None,
    ) -> None:
        if len(lps) == 0:
            raise ValueError("lps must hold at least one LP")
        self.max_m = max(lp.m for lp in lps) if max_m is None else int(max_m)
        self.max_n = max(lp.n for lp in lps) if max_n is None else int(max_n)
        if self.max_m < 1 or self.max_n < 1:
            raise ValueError(
                f"max_m and max_n must be positive, got {self.max_m}, {self.max_n}"
            )
        for lp in lps:
            if lp.m > self.max_m or lp.n > self.max_n:
                raise ValueError(
                    f"LP {lp.name!r} has shape ({lp.m}, {lp.n}), larger than "
                    f"max_m={self.max_m}, max_n={self.max_n}"
                )
        self.lps = list(lps)
        self._data = _with_labels([_tensors(lp) for lp in self.lps], lps, labels)

    @property
    def input_dim(self) -> int:
        """Length of one flat model input, ``max_m * max_n + max_m + max_n``."""
        return self.max_m * self.max_n + self.max_m + self.max_n

    def __len__(self) -> int:
        """Number of instances."""
        return len(self._data)

    def __getitem__(self, i: int) -> LPItem:
        """Unpadded tensors of instance ``i`` and the padding sizes."""
        return {**self._data[i], "max_m": self.max_m, "max_n": self.max_n}


def pad_collate(items: Sequence[LPItem]) -> LPBatch:
    """Batch :class:`LPDataset` items, zero-padded to the dataset's ``(M, N)``.

    Parameters
    ----------
    items : sequence of dict
        Items of one :class:`LPDataset` (they carry its ``max_m``, ``max_n``).

    Returns
    -------
    LPBatch
        Unpacks as the spec's six items below; ``.lb``, ``.ub`` ``[B, N]``,
        ``.x_star``, ``.lam_star`` (or ``None``) as attributes.
    model_input : Tensor
        ``[B, M*N + M + N]``: ``cat(vec(A) row-major, b, c)`` of the padded tensors.
    A : Tensor
        ``[B, M, N]``, zero outside each instance's ``[m, n]`` block.
    b : Tensor
        ``[B, M]``.
    c : Tensor
        ``[B, N]``.
    mask_m : Tensor
        ``[B, M]`` bool, True on real rows.
    mask_n : Tensor
        ``[B, N]`` bool, True on real variables.

    Raises
    ------
    ValueError
        If ``items`` is empty or its items disagree on the padding sizes.
    """
    if len(items) == 0:
        raise ValueError("items must hold at least one item")
    sizes = {(item["max_m"], item["max_n"]) for item in items}
    if len(sizes) != 1:
        raise ValueError(f"items come with different padding sizes {sorted(sizes)}")
    ((M, N),) = sizes
    t = _pad(items, M, N)
    model_input = torch.cat([t["A"].reshape(len(items), M * N), t["b"], t["c"]], dim=1)
    spec = (model_input, *(t[key] for key in ("A", "b", "c", "mask_m", "mask_n")))
    return LPBatch(spec, **{key: t[key] for key in LPBatch.EXTRAS})


class BipartiteNodeData(Data):
    """One LP as a bipartite graph: constraint nodes, variable nodes, ``A_ij`` edges.

    Parameters
    ----------
    constraint_features : Tensor, optional
        ``[m, C_FEATS]``.
    edge_index : Tensor, optional
        ``[2, nnz]`` long; row 0 indexes constraints, row 1 variables.
    edge_attr : Tensor, optional
        ``[nnz, 1]``, the values ``A_ij``.
    variable_features : Tensor, optional
        ``[n, V_FEATS]``.
    A, b, c : Tensor, optional
        The dense ``[m, n]``, ``[m]``, ``[n]`` instance, for the loss.
    lb, ub : Tensor, optional
        ``[n]`` variable bounds (for the output layer; batched per node).
    x_star, lam_star : Tensor, optional
        ``[n]``, ``[m]`` labels, if any (padded by :func:`pad_collate_graphs`).

    Notes
    -----
    All arguments default to ``None`` because PyG builds empty instances while
    batching. When batched, ``edge_index`` row 0 is offset by the number of
    constraint nodes before it and row 1 by the number of variable nodes
    (:meth:`__inc__`). The dense ``A`` of differently sized instances cannot be
    concatenated, so :func:`pad_collate_graphs` leaves ``A, b, c`` and the
    labels out of the PyG batch and pads them instead.
    """

    def __init__(
        self,
        constraint_features: torch.Tensor | None = None,
        edge_index: torch.Tensor | None = None,
        edge_attr: torch.Tensor | None = None,
        variable_features: torch.Tensor | None = None,
        A: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
        lb: torch.Tensor | None = None,
        ub: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if constraint_features is None:
            return
        self.constraint_features = constraint_features
        self.edge_index = edge_index
        self.edge_attr = edge_attr
        self.variable_features = variable_features
        self.A = A
        self.b = b
        self.c = c
        self.lb = lb
        self.ub = ub
        self.num_nodes = constraint_features.size(0) + variable_features.size(0)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Offsets of ``edge_index`` rows by the constraint / variable counts."""
        if key == "edge_index":
            return torch.tensor(
                [[self.constraint_features.size(0)], [self.variable_features.size(0)]]
            )
        return super().__inc__(key, value, *args, **kwargs)


def lp_to_graph(lp: LP, dense: bool = True) -> BipartiteNodeData:
    """The bipartite graph of ``lp`` with the node features of this module.

    Parameters
    ----------
    lp : LP
        Dense or sparse ``A``; the features come from its nonzeros.
    dense : bool
        Also attach the dense ``A, b, c`` the losses need (training); without
        them a graph of a large sparse LP stays sparse (inference).

    Returns
    -------
    BipartiteNodeData
        Edges in row-major order of the nonzeros of ``A``.
    """
    m, n = lp.m, lp.n
    rows, cols, values = nonzeros(lp.A)
    row_degree = np.bincount(rows, minlength=m) / n
    col_degree = np.bincount(cols, minlength=n) / m
    row_mean = np.bincount(rows, weights=values, minlength=m) / n
    col_mean = np.bincount(cols, weights=values, minlength=n) / m
    lb, ub = np.isfinite(lp.lb), np.isfinite(lp.ub)
    constraint = np.stack([lp.b, row_degree, row_mean], axis=1)
    variable = np.stack(
        [lp.c, col_degree, col_mean, np.where(lb, lp.lb, 0.0), np.where(ub, lp.ub, 0.0),
         lb, ub],
        axis=1,
    )  # fmt: skip
    t = _tensors(lp) if dense else {}

    def f32(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float32)

    return BipartiteNodeData(
        f32(constraint),
        torch.as_tensor(np.stack([rows, cols])),
        f32(values[:, None]),
        f32(variable),
        t.get("A"),
        t.get("b"),
        t.get("c"),
        f32(lp.lb),
        f32(lp.ub),
    )


class GraphDataset(Dataset):
    """Instances for the GNN path, as :class:`BipartiteNodeData` graphs.

    Parameters
    ----------
    lps : sequence of LP
        The instances.
    labels : sequence of (ndarray, ndarray), optional
        ``(x_star, lam_star)`` per instance, for a supervised loss term.
    dense : bool
        Attach the dense ``A, b, c`` the losses need (see :func:`lp_to_graph`).

    Notes
    -----
    Use ``DataLoader(ds, collate_fn=pad_collate_graphs)``.
    """

    def __init__(
        self, lps: Sequence[LP], labels: Labels | None = None, dense: bool = True
    ) -> None:
        self.lps = list(lps)
        self._graphs = [lp_to_graph(lp, dense) for lp in self.lps]
        items = _with_labels([{} for _ in self.lps], self.lps, labels)
        for graph, item in zip(self._graphs, items):
            for key, value in item.items():
                setattr(graph, key, value)

    def __len__(self) -> int:
        """Number of instances."""
        return len(self._graphs)

    def __getitem__(self, i: int) -> BipartiteNodeData:
        """The graph of instance ``i``."""
        return self._graphs[i]


def pad_collate_graphs(items: Sequence[BipartiteNodeData]) -> GraphBatch:
    """Batch graphs with PyG and pad their dense ``A, b, c`` to the batch maximum.

    Parameters
    ----------
    items : sequence of BipartiteNodeData
        Graphs from :class:`GraphDataset` (non-empty).

    Returns
    -------
    GraphBatch
        Unpacks as the spec's eight items below; ``.lb``, ``.ub`` ``[B, N]``,
        ``.x_star``, ``.lam_star`` (or ``None``) as attributes.
    batch_graph : torch_geometric.data.Batch
        The disjoint union: node features concatenated, ``edge_index`` offset
        per graph, ``constraint_features_batch`` / ``variable_features_batch``
        the graph of each node, per-variable ``lb``, ``ub``; without the dense
        ``A, b, c`` and labels.
    A : Tensor
        ``[B, M, N]`` with ``M, N`` the largest sizes in the batch.
    b : Tensor
        ``[B, M]``.
    c : Tensor
        ``[B, N]``.
    mask_m : Tensor
        ``[B, M]`` bool, True on real rows.
    mask_n : Tensor
        ``[B, N]`` bool, True on real variables.
    m_sizes : Tensor
        ``[B]`` long, constraints per graph (batch order).
    n_sizes : Tensor
        ``[B]`` long, variables per graph.

    Raises
    ------
    ValueError
        If ``items`` is empty.

    Notes
    -----
    Graphs built with ``dense=False`` give ``None`` for ``A, b, c, mask_m,
    mask_n`` and the extras (enough for a forward pass).
    """
    if len(items) == 0:
        raise ValueError("items must hold at least one graph")
    m_sizes = torch.tensor(
        [g.constraint_features.size(0) for g in items], dtype=torch.long
    )
    n_sizes = torch.tensor(
        [g.variable_features.size(0) for g in items], dtype=torch.long
    )
    batch_graph = Batch.from_data_list(
        list(items),
        follow_batch=["constraint_features", "variable_features"],
        exclude_keys=["A", "b", "c", "x_star", "lam_star"],
    )
    if any("A" not in g for g in items):  # graphs without dense data: inference
        return GraphBatch((batch_graph, *[None] * 5, m_sizes, n_sizes))
    keys = ("A", "b", "c", "lb", "ub", "x_star", "lam_star")
    t = _pad(
        [{key: g[key] for key in keys if key in g} for g in items],
        int(m_sizes.max()),
        int(n_sizes.max()),
    )
    spec = (
        batch_graph,
        *(t[key] for key in ("A", "b", "c", "mask_m", "mask_n")),
        m_sizes,
        n_sizes,
    )
    return GraphBatch(spec, **{key: t[key] for key in GraphBatch.EXTRAS})
