"""Write neural-tangents 0.6.5 reference kernels for ``Dropout(mode='train')``
(networks in ``compat_cases_dropout.py``).

Runs ONLY in the oracle virtualenv (see ``make_reference.py``):

    /work/nt-oracle/bin/python tests/oracle/make_compat_reference_dropout.py

Output: ``tests/data/nt_compat_reference_dropout.json``: for each case the
NNGP, NTK and ``cov1`` of ``(x1, x2)``, and the NNGP and NTK of ``(x1, None)``
(``self_nngp``, ``self_ntk``: the ones with the ``1 / rate`` diagonal).
"""
from __future__ import annotations

from compat_cases_dropout import CASES, build, inputs, keywords  # noqa: E402  (this folder)
from make_compat_reference import HERE, write_reference  # noqa: E402

if __name__ == "__main__":
    write_reference(CASES, build, inputs, HERE.parent / "data" / "nt_compat_reference_dropout.json",
                    keywords=lambda data: (keywords(data), keywords(data)))
