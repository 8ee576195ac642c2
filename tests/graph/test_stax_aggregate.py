"""``stax.Aggregate`` (graph layers): its finite network, its kernel against the
package's own GNTK and against wide finite networks, the patterns carried
through the engine's blocks, and bad input. Its values against neural-tangents
are in ``tests/contract/test_nt_compat_graph.py``.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import batch, empirical, stax
from ntkcourse.engine import ExecutionPlan, blocks
from ntkcourse.graph import aggregation_matrix, gntk

RNG = np.random.default_rng(11)


def _adjacency(n, v, rng=RNG):
    a = (rng.random((n, v, v)) < 0.45).astype(float)
    a = np.triu(a, 1)
    return a + np.swapaxes(a, 1, 2)


X = RNG.normal(size=(3, 5, 2))
A = _adjacency(3, 5) + np.eye(5)


def test_apply_fn_sums_each_vertex_s_predecessors():
    # y[n, j] = sum_i x[n, i] A[n, i, j], written as a loop; pattern=None is the identity.
    # Its own seeded generator: the module's RNG is shared by the tests, and its state here would depend on
    # which tests of the file ran before in the same worker.
    weights = A * np.random.default_rng(12).uniform(0.5, 2.0, size=A.shape)  # not symmetric: tails and heads differ
    _, apply_fn, _ = stax.Aggregate()
    want = np.zeros_like(X)
    for n in range(3):
        for i in range(5):
            for j in range(5):
                want[n, j] += X[n, i] * weights[n, i, j]
    # float32 round-off of a sum of 5 products is below 5 eps32 (3e-7) of the sum of their magnitudes, not of the
    # sum itself (a sum that nearly cancels has a large relative error); a wrong pattern (transposed, a dropped
    # edge) moves entries by a whole product.
    scale = np.einsum("nic,nij->njc", np.abs(X), weights)
    np.testing.assert_array_less(np.abs(np.asarray(apply_fn((), X, pattern=weights)) - want), 1e-6 * scale)
    np.testing.assert_array_equal(apply_fn((), X), X)


def test_sparse_edges_give_the_dense_adjacency():
    # Each (tail, head) pair of the edge list is one arc, repeats add up, (-1, -1) is padding.
    # (kernel_fn turns the edges into this same adjacency; its values are checked
    # against neural-tangents' sparse implementation in the contract tests.)
    edges = -np.ones((3, 30, 2), int)
    dense = np.zeros((3, 5, 5))
    for n in range(3):
        tails, heads = np.nonzero(A[n])
        edges[n, :len(tails), 0], edges[n, :len(tails), 1] = tails, heads
        edges[n, len(tails)] = (0, 4)  # a repeated arc
        dense[n] = A[n]
        dense[n, 0, 4] += 1
    _, apply_dense, _ = stax.Aggregate()
    _, apply_sparse, _ = stax.Aggregate(implementation="SPARSE")
    np.testing.assert_allclose(apply_sparse((), X, pattern=edges), apply_dense((), X, pattern=dense), rtol=1e-6)


def _gin(num_layers, num_mlp_layers, d, width=8):
    """The stax network of graph.gntk(num_layers, num_mlp_layers, jk=False): see
    ntkcourse/graph_network.py for the constants (first Dense W_std=sqrt(d),
    ReLU layers c_sigma = 2, read-out 2 x the sum over node pairs).
    """
    layers = [stax.Aggregate(), stax.Dense(width, W_std=np.sqrt(d))]
    for block in range(num_layers - 1):
        for r in range(num_mlp_layers):
            last = block == num_layers - 2 and r == num_mlp_layers - 1
            layers += [stax.Relu(), stax.Dense(1, W_std=2.0) if last else stax.Dense(width, W_std=np.sqrt(2.0))]
        if block < num_layers - 2:
            layers.append(stax.Aggregate())
    return stax.serial(*layers, stax.GlobalSumPool())


def test_gin_network_in_blocks_reproduces_the_gntk(monkeypatch):
    # graph.gntk is an independent implementation of Du et al.'s recursion
    # (checked against the authors' code). Neural-tangents' pattern is the
    # transpose of GNTK's aggregation matrix C Â (y = x @ pattern).
    # Blocks of 2 inputs: 5 graphs make 3 x 3 blocks, 6 of them computed for
    # K(x, x) (the rest mirrored) and 6 for K(x, x2); the patterns must follow
    # their inputs into every block.
    graphs = [(a, x) for a, x in zip(_adjacency(5, 6), RNG.normal(size=(5, 6, 3)))]
    graphs2 = [(a, x) for a, x in zip(_adjacency(3, 6), RNG.normal(size=(3, 6, 3)))]
    p = np.stack([aggregation_matrix(a, "degree").T for a, _ in graphs])
    p2 = np.stack([aggregation_matrix(a, "degree").T for a, _ in graphs2])
    x, x2 = np.stack([g[1] for g in graphs]), np.stack([g[1] for g in graphs2])
    _, _, kernel_fn = _gin(3, 1, 3)
    calls = []
    real_chain = blocks._Chain.__call__

    def counting(self, a, b):
        calls.append(b is None)
        return real_chain(self, a, b)

    monkeypatch.setattr(blocks._Chain, "__call__", counting)
    plan = ExecutionPlan(block_size=2)
    self_k = kernel_fn(x, None, "ntk", pattern=p, plan=plan)
    assert len(calls) == 6 and sum(calls) == 3
    cross_k = kernel_fn(x, x2, "ntk", pattern=(p, p2), plan=plan)
    assert len(calls) == 12
    want = gntk(graphs, num_layers=3, num_mlp_layers=1, jk=False, scale="degree")
    want2 = gntk(graphs, graphs2, num_layers=3, num_mlp_layers=1, jk=False, scale="degree")
    # Same float64 recursion in another order of summation: round-off only.
    np.testing.assert_allclose(self_k, want, rtol=1e-12)
    np.testing.assert_allclose(cross_k, want2, rtol=1e-12)


def test_kernel_under_jit_equals_the_blocked_kernel():
    # Traced inputs take the one-program path; the patterns ride the same way.
    _, _, kernel_fn = stax.serial(stax.Dense(4, W_std=1.3), stax.Aggregate(), stax.Relu(), stax.GlobalAvgPool())
    x2, a2 = RNG.normal(size=(2, 5, 2)), _adjacency(2, 5)
    jitted = jax.jit(lambda u, v, p, q: kernel_fn(u, v, "ntk", pattern=(p, q)))
    # Under the caller's jit with 64-bit mode off the result is float32 (engine.outputs): 1e-5.
    np.testing.assert_allclose(jitted(X, x2, A, a2), kernel_fn(X, x2, "ntk", pattern=(A, a2)), rtol=1e-5)


def test_batch_cuts_the_patterns_with_their_inputs():
    # nt.batch computes blocks of 2 of the 3 inputs (two diagonal blocks, one
    # off the diagonal); each block must receive its own graphs. Round-off only.
    _, _, kernel_fn = stax.serial(stax.Dense(3, W_std=1.2), stax.Aggregate(), stax.Relu(), stax.GlobalSumPool())
    np.testing.assert_allclose(batch(kernel_fn, batch_size=2)(X, None, "nngp", pattern=A),
                               kernel_fn(X, None, "nngp", pattern=A), rtol=1e-12)


@pytest.mark.slow
def test_kernel_matches_wide_networks():
    # 100 networks of width 256 with a Dense(32) read-out whose 32 i.i.d.
    # outputs are averaged (fixed key). A check passes within 5 standard
    # errors plus 3 % for the O(1/width) bias (measured |z| <= 1.1, relative
    # difference <= 2 %).
    net = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.2), stax.Aggregate(), stax.Relu(),
                      stax.Dense(256, W_std=1.4), stax.Aggregate(), stax.Relu(), stax.GlobalSumPool(),
                      stax.Dense(32))
    mc = empirical.monte_carlo_kernel_fn(net, None, jax.random.PRNGKey(0), 100)(X, None, ("nngp", "ntk"), pattern=A)
    exact = net[2](X, None, ("nngp", "ntk"), pattern=A)
    for field in ("nngp", "ntk"):
        got, want = np.asarray(getattr(mc, field)), np.asarray(getattr(exact, field))
        se = np.asarray(getattr(mc, field + "_stderr"))
        assert np.all(np.abs(got - want) <= 5 * se + 0.03 * np.abs(want)), field


def test_pattern_is_refused_by_a_network_without_aggregate():
    _, _, kernel_fn = stax.serial(stax.Dense(2), stax.Relu(), stax.GlobalAvgPool())
    with pytest.raises(TypeError, match="`pattern` is read only by stax.Aggregate"):
        kernel_fn(X, None, "nngp", pattern=A)


def test_one_pattern_of_two_is_refused():
    _, _, kernel_fn = stax.Aggregate()
    with pytest.raises(ValueError, match="one of x1 and x2 but not of the other"):
        kernel_fn(X, X[:2], "nngp", pattern=(A, None))
    with pytest.raises(ValueError, match="with `x2=None` .* the two patterns must be the same"):
        kernel_fn(X, None, "nngp", pattern=(A, A[::-1]))


def test_pattern_of_the_wrong_shape_is_refused():
    _, _, kernel_fn = stax.Aggregate()
    with pytest.raises(ValueError, match=r"pattern\[0\]` must have the batch axis of `x1` first"):
        kernel_fn(X, None, "nngp", pattern=A[:2])
    with pytest.raises(ValueError, match=r"Aggregate: `pattern` .* = \(batch, 5, 5\) .* got shape \(batch, 4, 4\)"):
        kernel_fn(X, None, "nngp", pattern=A[:, :4, :4])
    with pytest.raises(ValueError, match=r"implementation='SPARSE', `pattern` must be integer edges"):
        stax.Aggregate(implementation="SPARSE")[2](X, None, "nngp", pattern=A)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_axis": 1.0}, "`batch_axis` must be an integer axis index"),
    ({"channel_axis": True}, "`channel_axis` must be an integer axis index"),
    ({"implementation": "COO"}, "`implementation` must be 'DENSE' or 'SPARSE'"),
    ({"aggregate_axis": 1.5}, "`aggregate_axis` must be None, an integer axis"),
])
def test_unsupported_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stax.Aggregate(**kwargs)


def test_aggregating_the_batch_axis_is_refused():
    with pytest.raises(ValueError, match="other than the batch axis"):
        stax.Aggregate(aggregate_axis=0)[2](X, None, "nngp", pattern=A)


def test_apply_fn_with_the_channels_second_aggregates_the_same_vertices():
    # Aggregate(channel_axis=1) on (batch, channels, vertices) is the default layer on the moved inputs,
    # the pattern batch first in both (neural-tangents' convention; its kernels: test_nt_compat_layers_f.py).
    x = np.random.default_rng(8).normal(size=(2, 4, 3))  # (batch, vertices, channels)
    a = np.random.default_rng(9).normal(size=(2, 4, 4))
    with jax.enable_x64(True):
        moved = stax.Aggregate(channel_axis=1)[1]((), jnp.asarray(x.transpose(0, 2, 1)), pattern=jnp.asarray(a))
    # The same float multiply-adds in another order: round-off only.
    np.testing.assert_allclose(np.asarray(moved).transpose(0, 2, 1), np.einsum("nvc,nvw->nwc", x, a), rtol=1e-12)
