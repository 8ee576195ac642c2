"""Shared by the compatibility tests: a network's outputs with parameters drawn by neural-tangents.

The reference writers store, per network, neural-tangents' parameters as flat leaves
(``NAME/0``, ``NAME/1``, ...) and its output (``NAME/output``); loading those leaves into
our ``init_fn``'s structure must need no reshaping, and our ``apply_fn`` must then give
neural-tangents' output.
"""
import jax
import jax.numpy as jnp
import numpy as np


def outputs_with_their_parameters(net, x, arrays, name, **apply_kwargs):
    """Our ``apply_fn(params, x, **apply_kwargs)`` in 64-bit mode with neural-tangents'
    stored parameters for ``name`` (their shapes checked against ours leaf by leaf).
    """
    init_fn, apply_fn, _ = net
    with jax.enable_x64(True):
        # Only the structure and shapes of our parameters are needed: traced, not drawn (jax.random
        # compiles anew for every new shape, about 0.5 s of CPU each).
        ours = jax.eval_shape(lambda key: init_fn(key, x.shape)[1], jax.random.PRNGKey(0))
        leaves, treedef = jax.tree_util.tree_flatten(ours)
        theirs = [arrays[f"{name}/{i}"] for i in range(len(leaves))]
        assert [a.shape for a in theirs] == [leaf.shape for leaf in leaves]
        params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in theirs])
        # one compilation instead of op by op
        return np.asarray(jax.jit(lambda p, a: apply_fn(p, a, **apply_kwargs))(params, jnp.asarray(x)))
