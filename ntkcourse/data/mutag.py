"""MUTAG: 188 molecules as graphs, read from the TU-format files shipped in this package.

The files (``ntkcourse/data/files/MUTAG/``) are copied unchanged from the
``grakel`` wheel; ``PROVENANCE.md`` there says where from, with their licence.
"""
from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["MutagData", "load_mutag"]

# The TU collection's names of MUTAG's node labels (README.txt of the data set).
ATOM_NAMES = ("C", "N", "O", "F", "I", "Cl", "Br")


class MutagData(NamedTuple):
    """MUTAG as graphs for :func:`ntkcourse.graph.gntk`.

    Attributes:
      graphs: 188 pairs ``(adjacency, node_features)``: ``adjacency`` a
        symmetric 0/1 float64 array of shape ``(n, n)`` without self-loops,
        ``node_features`` the one-hot float64 encoding ``(n, 7)`` of the node
        labels, columns in the order of the sorted labels (0..6).
      labels: int array of shape ``(188,)``, +1 (mutagenic, 125 graphs) or
        -1 (not, 63 graphs), as in the TU files.
      atom_names: the chemical element of each feature column.
    """

    graphs: list
    labels: np.ndarray
    atom_names: tuple


def _read(name: str, delimiter=None) -> np.ndarray:
    path = resources.files("ntkcourse.data").joinpath("files", "MUTAG", f"MUTAG_{name}.txt")
    with path.open("r") as f:
        return np.loadtxt(f, delimiter=delimiter, dtype=np.int64, ndmin=1)


def load_mutag() -> MutagData:
    """Load MUTAG (Debnath et al. 1991) in the TU format, with no download.

    Preprocessing, fixed: node ids are numbered from 1 over the whole
    collection in the files and become 0-based per graph; each edge is listed
    in both directions in ``MUTAG_A.txt`` and the adjacency is symmetrised
    anyway (``A = max(A, Aᵀ)``); bond types are not used; node features are
    one-hot of the sorted distinct node labels (the one-hot encoding Du et al.
    2019 use, up to the order of columns, which no inner product sees); graph
    labels are kept as ±1. Graphs keep the order of the files.

    Returns:
      A :class:`MutagData`.

    Example:
      >>> data = load_mutag()
      >>> len(data.graphs), int((data.labels == 1).sum())
      (188, 125)
    """
    edges = _read("A", delimiter=",").reshape(-1, 2) - 1
    graph_of_node = _read("graph_indicator") - 1
    labels = _read("graph_labels")
    node_labels = _read("node_labels")
    n_graphs = int(graph_of_node.max()) + 1
    if labels.shape != (n_graphs,) or node_labels.shape != graph_of_node.shape:
        raise ValueError(f"load_mutag: the vendored files disagree: {n_graphs} graphs but {labels.size} labels, "
                         f"{graph_of_node.size} nodes but {node_labels.size} node labels.")
    values = np.unique(node_labels)
    one_hot = (node_labels[:, None] == values[None, :]).astype(np.float64)
    first = np.searchsorted(graph_of_node, np.arange(n_graphs + 1))
    graphs = []
    for g in range(n_graphs):
        lo, hi = first[g], first[g + 1]
        inside = (edges[:, 0] >= lo) & (edges[:, 0] < hi)
        adjacency = np.zeros((hi - lo, hi - lo))
        adjacency[edges[inside, 0] - lo, edges[inside, 1] - lo] = 1.0
        graphs.append((np.maximum(adjacency, adjacency.T), one_hot[lo:hi]))
    names = tuple(ATOM_NAMES[v] for v in values)
    return MutagData(graphs, labels.astype(np.int64), names)
