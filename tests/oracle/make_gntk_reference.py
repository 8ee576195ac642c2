"""Write GNTK reference values computed by the authors' own code.

The reference implementation is ``gntk.py`` of Du et al.'s public repository
(https://github.com/KangchengHou/gntk, MIT licence; the values in
``tests/data/gntk_reference.json`` were made from commit
1922f1f40fd24bda6492538765d90178bbf350ae).  Their code is NOT part of this
repository: fetch that file into a temporary folder and pass its path:

    git clone https://github.com/KangchengHou/gntk /tmp/gntk_authors
    python tests/oracle/make_gntk_reference.py /tmp/gntk_authors/gntk.py

The script builds seven small graphs (seeded random features, so that no
symmetry of one-hot features hides a mistake), turns each into the sparse
adjacency exactly as their ``gram.py`` does (``coo(edges) + coo(edges).T +
identity``), computes ``GNTK.diag`` for each graph and ``GNTK.gntk`` for every
pair ``i <= j`` as their ``gram.py`` does, for every combination of
``num_layers`` in 1..4, ``num_mlp_layers`` in 1..3, ``jk`` and ``scale``, and
writes the graphs and the 48 Gram matrices as JSON (floats written with
``repr``, so exactly).  It needs only NumPy and SciPy.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import scipy.sparse

OUT = Path(__file__).resolve().parents[1] / "data" / "gntk_reference.json"


def reference_graphs():
    """Seven graphs as (n_nodes, edge list i<j, features); features N(0, 1), d=3."""
    rng = np.random.default_rng(20191)
    edge_lists = [
        (1, []),                                   # a single node
        (2, []),                                   # two isolated nodes
        (3, [(0, 1), (0, 2), (1, 2)]),             # a triangle
        (4, [(0, 1), (1, 2), (2, 3)]),             # a path
        (5, [(0, 1), (0, 2), (0, 3), (0, 4)]),     # a star
    ]
    for n, p in ((7, 0.35), (9, 0.3)):             # random, with an isolated node
        edges = [(i, j) for i in range(n - 1) for j in range(i + 1, n - 1) if rng.random() < p]
        edge_lists.append((n, edges))
    return [(n, edges, rng.standard_normal((n, 3))) for n, edges in edge_lists]


class _Graph:
    def __init__(self, features):
        self.node_features = features


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("authors_gntk_py", help="path of gntk.py from KangchengHou/gntk")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("authors_gntk", args.authors_gntk_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    graphs = reference_graphs()
    adjacency = []
    for n, edges, _ in graphs:
        row = [e[0] for e in edges]
        col = [e[1] for e in edges]
        a = scipy.sparse.coo_matrix(([1] * len(edges), (row, col)), shape=(n, n), dtype=np.float32)
        adjacency.append(a + a.T + scipy.sparse.identity(n))
    objects = [_Graph(f) for _, _, f in graphs]

    cases = []
    for num_layers, num_mlp_layers, jk, scale in itertools.product(
            (1, 2, 3, 4), (1, 2, 3), (True, False), ("uniform", "degree")):
        model = module.GNTK(num_layers=num_layers, num_mlp_layers=num_mlp_layers, jk=jk, scale=scale)
        diags = [model.diag(g, a) for g, a in zip(objects, adjacency)]
        m = len(graphs)
        gram = np.zeros((m, m))
        for i in range(m):
            for j in range(i, m):
                v = model.gntk(objects[i], objects[j], diags[i], diags[j], adjacency[i], adjacency[j])
                gram[i, j] = gram[j, i] = v
        cases.append({"num_layers": num_layers, "num_mlp_layers": num_mlp_layers, "jk": jk,
                      "scale": scale, "gram": gram.tolist()})

    payload = {
        "source": "KangchengHou/gntk gntk.py, commit 1922f1f40fd24bda6492538765d90178bbf350ae",
        "made_by": "tests/oracle/make_gntk_reference.py",
        "numpy": np.__version__, "scipy": scipy.__version__,
        "graphs": [{"n_nodes": n, "edges": edges, "features": f.tolist()} for n, edges, f in graphs],
        "cases": cases,
    }
    OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {len(cases)} cases for {len(graphs)} graphs to {OUT}")


if __name__ == "__main__":
    main()
