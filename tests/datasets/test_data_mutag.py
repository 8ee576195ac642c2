"""``ntkcourse.data.load_mutag``: the vendored TU files read into graphs.

Expected counts are those of the TU collection's description of MUTAG (188
graphs, 125 mutagenic) and of the files themselves (3371 nodes, 7442 lines in
MUTAG_A.txt, each undirected bond listed twice, so 3721 bonds).
"""
from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from ntkcourse.data import load_mutag


@pytest.fixture(scope="module")
def mutag():
    return load_mutag()


def test_has_188_graphs_with_one_label_each(mutag):
    assert len(mutag.graphs) == 188
    assert mutag.labels.shape == (188,)


def test_labels_are_plus_minus_one_with_125_mutagenic(mutag):
    assert set(np.unique(mutag.labels)) == {-1, 1}
    assert int((mutag.labels == 1).sum()) == 125
    assert int((mutag.labels == -1).sum()) == 63


def test_node_and_bond_counts_match_the_files(mutag):
    assert sum(a.shape[0] for a, _ in mutag.graphs) == 3371
    assert sum(int(a.sum()) for a, _ in mutag.graphs) == 2 * 3721


def test_graph_sizes_range_from_10_to_28_nodes(mutag):
    sizes = [a.shape[0] for a, _ in mutag.graphs]
    assert (min(sizes), max(sizes)) == (10, 28)


def test_adjacency_is_symmetric_0_1_without_self_loops(mutag):
    for a, _ in mutag.graphs:
        assert np.array_equal(a, a.T)
        assert set(np.unique(a)) <= {0.0, 1.0}
        assert not np.any(np.diag(a))


def test_features_are_one_hot_of_the_seven_sorted_atom_labels(mutag):
    assert mutag.atom_names == ("C", "N", "O", "F", "I", "Cl", "Br")
    for a, x in mutag.graphs:
        assert x.shape == (a.shape[0], 7)
        assert np.array_equal(x.sum(axis=1), np.ones(a.shape[0]))
        assert set(np.unique(x)) <= {0.0, 1.0}
    # Carbon, the first sorted label, is the most common atom (2395 of 3371).
    assert int(sum(x[:, 0].sum() for _, x in mutag.graphs)) == 2395


def test_vendored_files_are_the_ones_recorded_in_the_provenance_note():
    folder = resources.files("ntkcourse.data").joinpath("files", "MUTAG")
    note = folder.joinpath("PROVENANCE.md").read_text()
    for name in ("MUTAG_A.txt", "MUTAG_graph_indicator.txt", "MUTAG_graph_labels.txt", "MUTAG_node_labels.txt"):
        digest = hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in note
