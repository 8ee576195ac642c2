"""Write neural-tangents 0.6.5 reference outputs for issue 19, part G (finite
networks on padded inputs whose hidden activations are exactly zero at real
positions; networks in ``compat_cases_g.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    .nt-oracle/venv/bin/python tests/oracle/make_compat_reference_g.py

Output: ``tests/data/nt_params_g.npz``: for each ``PARAMS`` network the
parameters neural-tangents' ``init_fn`` draws and its ``apply_fn(...,
mask_constant=0)`` output (the writing of part D); and
``tests/data/nt_compat_reference_g.json``: for each ``CASES`` network the
NNGP, NTK and ``cov1`` of ``(x1, x2)`` and the NNGP and NTK of ``(x1, None)``,
with ``mask_constant=0`` (the writing of part F). Before writing, it checks
that neural-tangents is right there: each input's masked output equals the
output of the same network on that input cut to its real positions (no
masks), to 1e-12, that no output is zero, and that a hidden position of a real step or pixel is
exactly zero in every network (so a layer re-reading the padding from the
values would be wrong).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compat_cases_g import CASES, MASK_CONSTANT, PARAMS, PARAMS_LAYOUTS, build, inputs, real_part  # noqa: E402
from make_compat_reference import write_reference  # noqa: E402
from make_compat_reference_d import write_params  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def check_neural_tangents_is_right():
    from neural_tangents import stax

    for name, (kind, spec) in {**PARAMS, **PARAMS_LAYOUTS}.items():
        x, _ = inputs(kind)
        init_fn, apply_fn, _ = build(stax, spec)
        _, params = init_fn(jax.random.PRNGKey(5), x.shape)
        masked = np.asarray(stax.unmask_fn(apply_fn)(params, x, mask_constant=MASK_CONSTANT))
        batch = 1 if kind == "image_cnhw" else 0
        n = x.shape[batch]
        cut = np.concatenate([np.asarray(apply_fn(params, real_part(kind, x, i))) for i in range(n)],
                             axis=-1 if kind == "image_cnhw" else 0)
        np.testing.assert_allclose(masked, cut, rtol=1e-12, atol=1e-14)
        assert np.all(masked != 0.0), (name, masked)  # informative outputs
        # The first ReLU's output: some real position has all its channels exactly zero.
        first = stax.serial(*[getattr(stax, n)(*a, **k) for n, a, k in spec[:2]])
        hidden = np.asarray(first[1](params[:2], x))
        channel = {"image_nchw": 1, "image_cnhw": 0}.get(kind, -1)
        real = ~np.all(x == MASK_CONSTANT, axis=channel)
        zero = np.all(hidden == 0.0, axis=channel) & real
        assert zero.any(), name
        print(name, "neural-tangents masked = cut;", int(zero.sum()), "real positions with all-zero hidden ReLU")


if __name__ == "__main__":
    check_neural_tangents_is_right()
    masked = {"mask_constant": MASK_CONSTANT}
    write_params({**PARAMS, **PARAMS_LAYOUTS}, build, inputs, DATA / "nt_params_g.npz", apply_kwargs=masked)
    write_reference(CASES, build, inputs, DATA / "nt_compat_reference_g.json",
                    keywords=lambda data: (masked, masked))
