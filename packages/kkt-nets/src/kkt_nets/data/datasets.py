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

Both collates return the tuples that the training loop unpacks:
``(model_input, A, b, c, mask_m, mask_n)`` and
``(batch_graph, A, b, c, mask_m, mask_n, m_sizes, n_sizes)``.

Node features (float32, computed on the LP as given, i.e. after scaling if it
was scaled); ``deg`` counts nonzeros:

* constraint ``i`` (:data:`C_FEATS` = 3): ``b_i``, ``deg_i / n``,
  ``sum_j A_ij / n`` (row mean of ``A``);
* variable ``j`` (:data:`V_FEATS` = 3): ``c_j``, ``deg_j / m``,
  ``sum_i A_ij / m`` (column mean of ``A``).

Each edge ``(i, j)`` with ``A_ij != 0`` carries ``edge_attr = [A_ij]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data

from kkt_nets.data.lp import LP

C_FEATS = 3
"""Number of constraint-node features: ``b_i``, row degree / n, row mean of A."""
V_FEATS = 3
"""Number of variable-node features: ``c_j``, column degree / m, column mean of A."""

LPItem = dict[str, Any]
"""One :class:`LPDataset` item: ``A, b, c`` tensors and the padding sizes."""


def _tensors(lp: LP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``A, b, c`` of ``lp`` as float32 tensors."""
    return (
        torch.as_tensor(lp.A, dtype=torch.float32),
        torch.as_tensor(lp.b, dtype=torch.float32),
        torch.as_tensor(lp.c, dtype=torch.float32),
    )


def _pad_dense(
    As: Sequence[torch.Tensor],
    bs: Sequence[torch.Tensor],
    cs: Sequence[torch.Tensor],
    M: int,
    N: int,
) -> tuple[torch.Tensor, ...]:
    """Zero-pad per-instance ``A, b, c`` to ``[B, M, N], [B, M], [B, N]`` + masks."""
    B = len(As)
    A = torch.zeros(B, M, N)
    b = torch.zeros(B, M)
    c = torch.zeros(B, N)
    mask_m = torch.zeros(B, M, dtype=torch.bool)
    mask_n = torch.zeros(B, N, dtype=torch.bool)
    for k, (A_k, b_k, c_k) in enumerate(zip(As, bs, cs)):
        m, n = A_k.shape
        A[k, :m, :n] = A_k
        b[k, :m] = b_k
        c[k, :n] = c_k
        mask_m[k, :m] = True
        mask_n[k, :n] = True
    return A, b, c, mask_m, mask_n


class LPDataset(Dataset):
    """Instances for the MLP path, padded to one fixed size ``(max_m, max_n)``.

    Parameters
    ----------
    lps : sequence of LP
        The instances (non-empty).
    max_m, max_n : int, optional
        Padded number of rows / variables; default the largest in ``lps``. Pass
        the training set's sizes to evaluate a trained MLP on another split.

    Raises
    ------
    ValueError
        If ``lps`` is empty, a size is not positive, or an instance is larger
        than ``max_m`` / ``max_n``.

    Notes
    -----
    Item ``i`` is a dict with the unpadded float32 tensors ``"A" [m, n]``,
    ``"b" [m]``, ``"c" [n]`` and the ints ``"max_m"``, ``"max_n"`` that
    :func:`pad_collate` pads to; use ``DataLoader(ds, collate_fn=pad_collate)``.
    """

    def __init__(
        self, lps: Sequence[LP], max_m: int | None = None, max_n: int | None = None
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
        self._data = [_tensors(lp) for lp in self.lps]

    @property
    def input_dim(self) -> int:
        """Length of one flat model input, ``max_m * max_n + max_m + max_n``."""
        return self.max_m * self.max_n + self.max_m + self.max_n

    def __len__(self) -> int:
        """Number of instances."""
        return len(self._data)

    def __getitem__(self, i: int) -> LPItem:
        """Unpadded ``A, b, c`` of instance ``i`` and the padding sizes."""
        A, b, c = self._data[i]
        return {"A": A, "b": b, "c": c, "max_m": self.max_m, "max_n": self.max_n}


def pad_collate(items: Sequence[LPItem]) -> tuple[torch.Tensor, ...]:
    """Batch :class:`LPDataset` items, zero-padded to the dataset's ``(M, N)``.

    Parameters
    ----------
    items : sequence of dict
        Items of one :class:`LPDataset` (they carry its ``max_m``, ``max_n``).

    Returns
    -------
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
    A, b, c, mask_m, mask_n = _pad_dense(
        [item["A"] for item in items],
        [item["b"] for item in items],
        [item["c"] for item in items],
        M,
        N,
    )
    model_input = torch.cat([A.reshape(len(items), M * N), b, c], dim=1)
    return model_input, A, b, c, mask_m, mask_n


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

    Notes
    -----
    All arguments default to ``None`` because PyG builds empty instances while
    batching. When batched, ``edge_index`` row 0 is offset by the number of
    constraint nodes before it and row 1 by the number of variable nodes
    (:meth:`__inc__`). The dense ``A`` of differently sized instances cannot be
    concatenated, so :func:`pad_collate_graphs` leaves ``A, b, c`` out of the
    PyG batch and pads them instead.
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
        self.num_nodes = constraint_features.size(0) + variable_features.size(0)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Offsets of ``edge_index`` rows by the constraint / variable counts."""
        if key == "edge_index":
            return torch.tensor(
                [[self.constraint_features.size(0)], [self.variable_features.size(0)]]
            )
        return super().__inc__(key, value, *args, **kwargs)


def lp_to_graph(lp: LP) -> BipartiteNodeData:
    """The bipartite graph of ``lp`` with the node features of this module.

    Parameters
    ----------
    lp : LP

    Returns
    -------
    BipartiteNodeData
        Edges in row-major order of the nonzeros of ``A``.
    """
    A, b, c = _tensors(lp)
    m, n = A.shape
    nonzero = A != 0
    constraint_features = torch.stack(
        [b, nonzero.sum(dim=1) / n, A.sum(dim=1) / n], dim=1
    )
    variable_features = torch.stack(
        [c, nonzero.sum(dim=0) / m, A.sum(dim=0) / m], dim=1
    )
    edge_index = nonzero.nonzero().T.contiguous()
    edge_attr = A[edge_index[0], edge_index[1]].unsqueeze(1)
    return BipartiteNodeData(
        constraint_features, edge_index, edge_attr, variable_features, A, b, c
    )


class GraphDataset(Dataset):
    """Instances for the GNN path, as :class:`BipartiteNodeData` graphs.

    Parameters
    ----------
    lps : sequence of LP
        The instances.

    Notes
    -----
    Use ``DataLoader(ds, collate_fn=pad_collate_graphs)``.
    """

    def __init__(self, lps: Sequence[LP]) -> None:
        self.lps = list(lps)
        self._graphs = [lp_to_graph(lp) for lp in self.lps]

    def __len__(self) -> int:
        """Number of instances."""
        return len(self._graphs)

    def __getitem__(self, i: int) -> BipartiteNodeData:
        """The graph of instance ``i``."""
        return self._graphs[i]


def pad_collate_graphs(
    items: Sequence[BipartiteNodeData],
) -> tuple[
    Batch,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
]:
    """Batch graphs with PyG and pad their dense ``A, b, c`` to the batch maximum.

    Parameters
    ----------
    items : sequence of BipartiteNodeData
        Graphs from :class:`GraphDataset` (non-empty).

    Returns
    -------
    batch_graph : torch_geometric.data.Batch
        The disjoint union: node features concatenated, ``edge_index`` offset
        per graph, ``constraint_features_batch`` / ``variable_features_batch``
        the graph of each node; without the dense ``A, b, c``.
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
    """
    if len(items) == 0:
        raise ValueError("items must hold at least one graph")
    m_sizes = torch.tensor([g.A.shape[0] for g in items], dtype=torch.long)
    n_sizes = torch.tensor([g.A.shape[1] for g in items], dtype=torch.long)
    A, b, c, mask_m, mask_n = _pad_dense(
        [g.A for g in items],
        [g.b for g in items],
        [g.c for g in items],
        int(m_sizes.max()),
        int(n_sizes.max()),
    )
    batch_graph = Batch.from_data_list(
        list(items),
        follow_batch=["constraint_features", "variable_features"],
        exclude_keys=["A", "b", "c"],
    )
    return batch_graph, A, b, c, mask_m, mask_n, m_sizes, n_sizes
