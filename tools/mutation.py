"""Mutation testing of the package's core modules with mutmut: which planted bugs do the fast tests miss?

Usage (from the repository root, with the project's virtual environment and
``pip install mutmut==3.8.1``)::

    python tools/mutation.py grading/checks            # one module
    python tools/mutation.py dual inference --jobs 2   # several
    python tools/mutation.py --list                    # the modules and their tests
    python tools/mutation.py grading/merge --keep /tmp/m         # keep the work folder, then after
    python tools/mutation.py grading/merge --keep /tmp/m --again # adding tests: rerun the survivors
    python tools/mutation.py stax --only 'ntkcourse.stax.layers.*' --keep /tmp/s   # one file of a module
    python tools/mutation.py stax --only 'ntkcourse.stax.layers.x_Dense__*' --keep /tmp/s --again  # one function

For each module named, mutmut (https://mutmut.readthedocs.io, version 3)
rewrites the module's functions into many small variants ("mutants": ``<``
for ``<=``, ``1`` for ``2``, ``and`` for ``or``, a dropped argument...) and
runs the module's fast tests (:data:`MODULES`) against each; a mutant whose
tests all pass *survived*. The script prints every surviving mutant with its
diff, then per module: mutants made, killed, survived, the surviving
fraction of the mutants that are not known to be equivalent
(:data:`EQUIVALENT`: mutants that change no observable behaviour, excluded
with the reason), and the time taken; for a module of several files, the
same figures for each file.

Each :data:`EQUIVALENT` entry records what the mutant *is*, not only its
name: ``(change, reason)``, where the change is the lines the mutant changes
in its function, stripped (``"old -> new"``). mutmut numbers a function's
mutants in the order it makes them, so editing the function renumbers them
and a name may come to mean another mutant; the tool excludes an entry only
while the mutant of that name has the recorded change. The others are
printed as *stale* (not excluded: counted like any mutant) with the mutant
of the same function that has the change now, its new name if there is one.
``--check-equivalent`` runs nothing: it makes the mutants of the checkout's
source (seconds for a file; 4 minutes for the five stax files under load) and
prints the stale entries, and the change of any entry
recorded without one (a plain reason string: excluded, but unchecked)::

    python tools/mutation.py --check-equivalent inference dynamics

``--only PATTERN ...`` tests only the mutants whose names match one of the
shell patterns (mutmut's names, ``<module path>.x_<function>__mutmut_<n>``):
a large module can be run file by file or function by function into one kept
folder; the mutants left out count as *not reached*, never in the fraction.

Each module's tests are its *fast tests*, chosen for mutation: every test that calls a mutated function runs
for each of that function's mutants (a surviving mutant runs them all), so the selection is the strongest
tests per second of CPU, not the module's whole test set. For ``stax`` (nearly every stax test calls
``Dense``): the exact kernels of networks linear in their parameters, the finite layers and refusals, and
the neural-tangents oracle without its deepest networks, about 80 s of CPU unmutated.

It works in a throw-away copy of the checkout (the files git would ship),
never in the working tree, and is not part of the test suite (a module takes
minutes to an hour). Run it under ``nice`` on a shared machine.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> (source files to mutate, pytest arguments selecting its fast tests)
MODULES = {
    "dual": (["ntkcourse/dual.py"], ["tests/kernels/test_dual.py", "tests/kernels/test_dual_contract.py",
                                     "-m", "not slow"]),
    "stax": (["ntkcourse/stax/layers.py", "ntkcourse/stax/activations.py", "ntkcourse/stax/combinators.py",
              "ntkcourse/stax/spatial.py", "ntkcourse/stax/layer.py"],
             # The mutation-specific fast selection ("fast tests" of stax): every test that calls a mutated
             # function runs for each of its mutants, and nearly every stax test calls Dense. The exact kernels of
             # networks linear in their parameters (NTK = J J^T), the finite layers and refusals, and the
             # neural-tangents oracle without its deepest networks (two-Conv stacks and a 4x4 circular filter:
             # the same layer rules as the one-Conv cases, 45 % of the oracle's time). The Monte Carlo tests
             # of test_stax_validation.py and the option tests of test_stax_options.py (both slower, with
             # statistical tolerances) are left out: the exact-kernel file checks the same options to round-off.
             # The formulas of spatial.py are called directly (window sums against a loop, pooling matrices,
             # masks of window ops), a few seconds of CPU that reach the functions no network test calls.
             # The combinators' rules and what layer() adds around a layer (refusals whole, padding passed on)
             # are called directly on small input kernels: about 20 s of CPU.
             ["tests/kernels/test_stax_exact_kernels.py", "tests/kernels/test_stax_finite_layers.py",
              "tests/kernels/test_stax_spatial_formulas.py", "tests/kernels/test_stax_combinators.py",
              "tests/kernels/test_stax_layer_boundary.py",
              "tests/contract/test_stax_oracle.py", "-m", "not slow", "-k", "not (cnn2_ or f44)"]),
    # The Monte Carlo tests of test_empirical.py (8-13 s each, and a module fixture of 400 draws) are left out: the
    # contract file checks the same means and standard errors on a linear model in well under a second. The test of
    # a warning's stacklevel is left out as for dynamics (mutmut's trampolines add frames).
    # jaxpr_structure.py (the structured derivatives of plain functions, read from their jaxpr) belongs to the
    # empirical kernels: its tests compare with the Jacobian NTK of the same function.
    "empirical": (["ntkcourse/empirical.py", "ntkcourse/jaxpr_structure.py"],
                  ["tests/empirical/test_empirical_contract.py", "tests/empirical/test_empirical.py",
                   "tests/empirical/test_empirical_defaults.py", "tests/empirical/test_empirical_jaxpr.py",
                   "tests/empirical/test_empirical_masks.py", "-m", "not slow",
                   "-k", "not (mean_is_unbiased or shrinks_like_one_over or does_not_depend_on_the_batch_size "
                         "or mean_and_standard_error_equal_those or callers_line)"]),
    # mutmut's trampolines add a frame between the package's functions, so tests of a warning's stacklevel fail
    # for every mutant: they are left out.
    "dynamics": (["ntkcourse/dynamics.py"], ["tests/theory/test_dynamics.py", "tests/theory/test_dynamics_contract.py",
                                             "tests/theory/test_inference_traced.py",
                                             "-m", "not slow", "-k", "not point_at_the_callers_line"]),
    "inference": (["ntkcourse/inference.py"], ["tests/theory/test_inference.py",
                                                "tests/theory/test_inference_contract.py",
                                                "tests/theory/test_inference_traced.py", "-m", "not slow"]),
    "grading/checks": (["ntkcourse/grading/checks.py"],
                       ["tests/grading/test_grading_checks.py", "tests/grading/test_grading_check_tolerances.py",
                        "tests/grading/test_grading_judging.py", "tests/grading/test_grading_check_messages.py",
                        "-m", "not slow"]),
    "grading/merge": (["ntkcourse/grading/merge.py"], ["tests/grading/test_grading_merge.py",
                                                        "tests/grading/test_grading_merge_notes.py", "-m", "not slow"]),
}

# Mutants that change no behaviour a test could observe: mutmut's name -> (the mutant's change, the reason).
# Names are mutmut 3.8.1's for the current source; the change (describe_change: the lines the mutant changes,
# stripped, "old -> new") lets the tool notice an entry that a later edit has renumbered (check_equivalent):
# `python tools/mutation.py --check-equivalent MODULE` prints such stale entries and their new names.
EQUIVALENT: dict[str, tuple[str, str] | str] = {
    "ntkcourse.grading.merge.x__normal__mutmut_2": (
        'return "\\n".join(line.rstrip() for line in source.strip().splitlines()) -> return "XX\\nXX".join(line'
        '.rstrip() for line in source.strip().splitlines())',
        "joins lines with 'XX\\nXX' instead of '\\n': _normal's results are only compared with each other, "
        "and joining newline-free lines with any separator holding a newline is one-to-one"),
    "ntkcourse.grading.merge.x_read_submission__mutmut_20": (
        'raw = json.loads(data.decode("utf-8")) -> raw = json.loads(data.decode("UTF-8"))',
        "decodes with 'UTF-8' instead of 'utf-8': Python's codec names are case-insensitive (the same codec)"),
    "ntkcourse.grading.merge.x_read_submission__mutmut_73": (
        'nb = nbformat.convert(nbformat.reader.reads(data.decode("utf-8")), 4) -> nb = nbformat.convert(nbfor'
        'mat.reader.reads(data.decode("UTF-8")), 4)',
        "decodes with 'UTF-8' instead of 'utf-8': Python's codec names are case-insensitive (the same codec)"),
    "ntkcourse.grading.merge.x_read_submission__mutmut_82": (
        'raise ValueError("\'cells\' is not a list") -> raise ValueError("\'CELLS\' IS NOT A LIST")',
        "the wording of an unreachable refusal ('cells' is not a list after nbformat.convert): the JSON's "
        "'cells' was already checked to be a list, a v4 file without it fails in nbformat's reader, and "
        "conversion from v1-v3 builds a list"),
    "ntkcourse.grading.merge.x_read_submission__mutmut_80": (
        'raise ValueError("\'cells\' is not a list") -> raise ValueError(None)',
        "the same unreachable refusal as mutant 82, raised with None as its message"),
    "ntkcourse.grading.merge.x_read_submission__mutmut_81": (
        'raise ValueError("\'cells\' is not a list") -> raise ValueError("XX\'cells\' is not a listXX")',
        "the same unreachable refusal as mutant 82, with 'XX' around its message"),
    "ntkcourse.grading.checks.xǁ_Invalidǁ__init____mutmut_2": (
        'super().__init__(reason) -> super().__init__(None)',
        "the exception's args (its str) become None: every handler of _Invalid reads .reason and .detail, "
        "never str() or .args, and _Invalid never leaves the module"),
    "ntkcourse.grading.checks.x_judge_entry__mutmut_7": (
        'kind, label, options = reference["kind"], reference["label"], reference.get("options", {}) -> kind, '
        'label, options = reference["kind"], reference["label"], reference.get("options", None)',
        "the default of reference.get('options') becomes None: every entry Checker reports (hence every "
        "reference entry) carries 'options', so the default is never used"),
    "ntkcourse.grading.checks.x_judge_entry__mutmut_9": (
        'kind, label, options = reference["kind"], reference["label"], reference.get("options", {}) -> kind, '
        'label, options = reference["kind"], reference["label"], reference.get("options", )',
        "the default of reference.get('options') becomes None (argument dropped): as mutant 7"),
    "ntkcourse.grading.checks.x_judge_entry__mutmut_39": (
        '_fail(label, _invalid_message(invalid if known else "")) -> _fail(label, _invalid_message(invalid if'
        ' known else "XXXX"))',
        "replaces an unknown 'invalid' code by 'XXXX' instead of '': both are outside INVALID_REASONS, "
        "so _invalid_message gives the same generic text"),
    "ntkcourse.grading.checks.x_judge_entry__mutmut_123": (
        'reveal=False, what="the reference solution\'s values (the comparison with the reference)", -> reveal='
        'None, what="the reference solution\'s values (the comparison with the reference)",',
        "reveal=None for False in the reference comparison: compare tests reveal for truth only (and reveal_shape "
        "is given, so reveal does not choose the shape message)"),
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_64": (
        'compare(got, np.asarray(want, dtype=np.float64), label, rtol, atol, reveal=False, -> compare(got, np'
        '.asarray(want, dtype=np.float64), label, rtol, atol, reveal=None,',
        "reveal=None for False: as judge_entry 123"),
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_76": (
        'compare(got, np.asarray(want, dtype=np.float64), label, rtol, atol, reveal=False, -> compare(got, np'
        '.asarray(want, dtype=None), label, rtol, atol, reveal=False,',
        "the reference value read without dtype=float64: the grade session's reference values are numbers or "
        "arrays of them (decode_array's float64 in the grader), which compare promotes exactly"),
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_78": (
        'compare(got, np.asarray(want, dtype=np.float64), label, rtol, atol, reveal=False, -> compare(got, np'
        '.asarray(want, ), label, rtol, atol, reveal=False,',
        "the reference value read without the dtype argument: as mutant 76"),
    "ntkcourse.grading.checks.x__as_float_array__mutmut_21": (
        'array = array.astype(np.float64) -> array = array.astype(None)',
        "astype(None) for astype(np.float64): numpy reads the dtype None as float64"),
    "ntkcourse.grading.checks.x__as_float_array__mutmut_48": (
        'return array.astype(np.float64) -> return array.astype(None)',
        "astype(None) for astype(np.float64): as mutant 21"),
    "ntkcourse.grading.checks.x__as_float_array__mutmut_40": (
        'if array.dtype.kind not in "iuf": -> if array.dtype.kind not in "XXiufXX":',
        "the kinds 'XXiufXX' for 'iuf': no numpy dtype has the kind 'X', so the same dtypes are accepted"),
    "ntkcourse.grading.checks.x__matching_shape__mutmut_1": (
        'def x__matching_shape(got, expected, label, reveal=True): -> def x__matching_shape(got, expected, la'
        'bel, reveal=False):',
        "the default of reveal: its only caller (compare) always passes reveal"),
    "ntkcourse.grading.checks.x__tolerances__mutmut_7": (
        'number = float("nan") -> number = float("NAN")',
        "float('NAN') for float('nan'): the same NaN"),
    "ntkcourse.grading.checks.x__tolerances__mutmut_14": (
        'if not (0.0 <= number < float("inf")): -> if not (0.0 <= number < float("INF")):',
        "float('INF') for float('inf'): the same infinity"),
    "ntkcourse.grading.checks.x_compare__mutmut_73": (
        'where = np.unravel_index(int(np.argmax(excess)), got.shape) if got.shape else () -> where = np.unrav'
        'el_index(int(np.argmax(excess)), got.shape) if (got.shape) or True else ()',
        "unravel_index for a 0-d answer too: np.unravel_index(0, ()) is (), the value of the other branch"),
    "ntkcourse.grading.checks.x_encode_array__mutmut_3": (
        'array = np.asarray(array, dtype=np.float64) -> array = np.asarray(array, dtype=None)',
        "the array read without dtype=float64: the data are float(x) of each entry anyway, the same floats for "
        "real inputs (the module passes _as_float_array's float64 arrays)"),
    "ntkcourse.grading.checks.x_encode_array__mutmut_5": (
        'array = np.asarray(array, dtype=np.float64) -> array = np.asarray(array, )',
        "as mutant 3, without the dtype argument"),
    "ntkcourse.grading.checks.x_judge_symmetric__mutmut_17": (
        'scale = float(np.max(np.abs(got))) if got.size else 0.0 -> scale = float(np.max(np.abs(got))) if got'
        '.size else 1.0',
        "the scale 1.0 for 0.0 of an empty matrix: its asymmetry is 0, within any tolerance >= 0 (tolerances "
        "are refused unless >= 0), whatever the scale"),
    "ntkcourse.grading.checks.x_judge_psd__mutmut_37": (
        'scale = max(1.0, float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 1.0) -> scale = max(1.0'
        ', float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 2.0)',
        "the scale 2.0 for 1.0 without eigenvalues: the eigenvalue test is skipped when there are none"),
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_2": (
        'self._warnings.__exit__(None, None, None) -> self._warnings.__exit__(None, None)',
        "catch_warnings.__exit__ called with two arguments: it takes *exc_info and ignores them"),
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_3": (
        'self._warnings.__exit__(None, None, None) -> self._warnings.__exit__(None, None)',
        "as mutant 2"),
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_4": (
        'self._warnings.__exit__(None, None, None) -> self._warnings.__exit__(None, None, )',
        "as mutant 2"),
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_29": (
        '"line": line if isinstance(line, int) else None} -> "line": line if (isinstance(line, int)) or True '
        'else None}',
        "line kept even when it is not an int: _statement_that_raised gives an int or None, and None is "
        "what the other branch gives"),
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_49": (
        'verdict = f"PASS {self.question} ({checker.passed + checker.deferred} checks)" -> verdict = f"PASS {'
        'self.question} ({checker.passed - checker.deferred} checks)"',
        "passed − deferred for passed + deferred: comparisons are deferred only in student mode, where a "
        "verdict with deferred ones is replaced by the wording that counts them apart; elsewhere deferred is 0"),
    "ntkcourse.grading.checks.xǁcheckingǁ__init____mutmut_14": (
        'self._saved = None -> self._saved = ""',
        "_saved starts as '' for None: __enter__ sets it before anything reads it"),
    "ntkcourse.inference.x_gp_posterior__mutmut_28": (
        'k_tt = None if k_test_test is None else _pick(where, k_test_test, get, "k_test_test") -> k_tt ='
        ' None if (k_test_test is None) and False else _pick(where, k_test_test, get, "k_test_test")',
        'k_test_test passed to _pick even when it is None: _pick returns a None kernel as it is, so k_tt'
        ' is None either way'),
    "ntkcourse.inference.x_gp_posterior__mutmut_79": (
        'y = am.numpy.asarray(y_train, dtype=am.float) -> y = am.numpy.asarray(y_train, dtype=None)',
        'y_train read without dtype=am.float: for real targets (the documented input) its uses are shape'
        ' and isfinite checks and cho_solve, which promotes integer or float32 targets exactly to the fa'
        "ctor's float (NumPy/SciPy and jax.numpy alike); only complex targets would differ"),
    "ntkcourse.inference.x_gp_posterior__mutmut_81": (
        'y = am.numpy.asarray(y_train, dtype=am.float) -> y = am.numpy.asarray(y_train, )',
        'y_train read without the dtype argument: as mutant 79'),
    "ntkcourse.inference.x_gp_posterior__mutmut_137": (
        'mean = kt @ am.linalg.cho_solve(factor, y, check_finite=False) -> mean = kt @ am.linalg.cho_sol'
        've(factor, y, check_finite=None)',
        "cho_solve's check_finite None for False: SciPy tests the flag for truth (None is false) and JAX ignores it"),
    "ntkcourse.inference.x_gp_posterior__mutmut_140": (
        'mean = kt @ am.linalg.cho_solve(factor, y, check_finite=False) -> mean = kt @ am.linalg.cho_sol'
        've(factor, y, )',
        'cho_solve with its default check_finite=True: on the host y_train was already refused unless fi'
        'nite and the factor of a finite matrix is finite, so the check passes (time only); JAX ignores '
        'the flag'),
    "ntkcourse.inference.x_gp_posterior__mutmut_141": (
        'mean = kt @ am.linalg.cho_solve(factor, y, check_finite=False) -> mean = kt @ am.linalg.cho_sol'
        've(factor, y, check_finite=True)',
        'cho_solve with check_finite=True: as mutant 140'),
    "ntkcourse.inference.x_gp_posterior__mutmut_164": (
        'half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=False)   # L⁻¹K_*ᵀ '
        '-> half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=None)   # L⁻¹K_*'
        'ᵀ',
        "solve_triangular's check_finite None for False: as mutant 137"),
    "ntkcourse.inference.x_gp_posterior__mutmut_168": (
        'half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=False)   # L⁻¹K_*ᵀ '
        '-> half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, )   # L⁻¹K_*ᵀ',
        'solve_triangular with its default check_finite=True: k_test_train was already refused unless fi'
        'nite and the factor is finite, as mutant 140 (JAX ignores the flag)'),
    "ntkcourse.inference.x_gp_posterior__mutmut_171": (
        'half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=False)   # L⁻¹K_*ᵀ '
        '-> half = am.linalg.solve_triangular(factor[0], kt.T, lower=True, check_finite=True)   # L⁻¹K_*'
        'ᵀ',
        'solve_triangular with check_finite=True: as mutant 168'),
    "ntkcourse.inference.x__test_test__mutmut_3": (
        'kss = am.numpy.asarray(k_test_test, dtype=am.float) -> kss = am.numpy.asarray(k_test_test, dtype=None)',
        'the test-test kernel read without dtype=am.float: a full matrix is converted to float by as_ker'
        'nel_matrix, and a diagonal only meets arrays of am.float in arithmetic, which promotes integer '
        'or float32 entries exactly (NumPy and jax.numpy alike): the same values for real inputs'),
    "ntkcourse.inference.x__test_test__mutmut_5": (
        'kss = am.numpy.asarray(k_test_test, dtype=am.float) -> kss = am.numpy.asarray(k_test_test, )',
        'the test-test kernel read without the dtype argument: as mutant 3'),
    "ntkcourse.inference.x__test_train__mutmut_3": (
        'kt = am.numpy.asarray(k_test_train, dtype=am.float) -> kt = am.numpy.asarray(k_test_train, dtype=None)',
        'the test-train kernel read without dtype=am.float: it only enters products with arrays of am.fl'
        'oat and solve_triangular, which promote integer or float32 entries exactly: the same values for'
        ' real inputs'),
    "ntkcourse.inference.x__test_train__mutmut_5": (
        'kt = am.numpy.asarray(k_test_train, dtype=am.float) -> kt = am.numpy.asarray(k_test_train, )',
        'the test-train kernel read without the dtype argument: as mutant 3'),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_47": (
        'am = array_module(vecs, b, y_modes, t, ntk_test_train, nngp_test_train, nngp_test_test) -> am ='
        ' array_module(None, b, y_modes, t, ntk_test_train, nngp_test_train, nngp_test_test)',
        'vecs left out of the choice of array module: vecs is traced only when ntk_train_train is, and t'
        'hen b = VᵀKV and y_modes = Vᵀy, also passed, are traced too, so the same module is chosen'),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_54": (
        'am = array_module(vecs, b, y_modes, t, ntk_test_train, nngp_test_train, nngp_test_test) -> am ='
        ' array_module(b, y_modes, t, ntk_test_train, nngp_test_train, nngp_test_test)',
        'vecs dropped from the arguments of array_module: as mutant 47'),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_142": (
        'train_mean = xp.einsum("ij,tj,jk->tik", vecs, lam[None, :] * c, y_modes) -> train_mean = xp.ein'
        'sum("IJ,TJ,JK->TIK", vecs, lam[None, :] * c, y_modes)',
        "einsum subscripts in upper case ('IJ,TJ,JK->TIK'): numpy's and jax.numpy's einsum take upper-ca"
        'se letters as labels too, so the contraction is the same'),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_218": (
        'test_mean = xp.einsum("ij,tj,jk->tik", p, c, y_modes) -> test_mean = xp.einsum("IJ,TJ,JK->TIK",'
        ' p, c, y_modes)',
        "einsum subscripts in upper case, as mutant 142 (the test mean's contraction)"),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_234": (
        'quad = xp.einsum("tij,jk,tik->ti", pc, b, pc) -> quad = xp.einsum("TIJ,JK,TIK->TI", pc, b, pc)',
        "einsum subscripts in upper case, as mutant 142 (the test variances' quadratic term)"),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_245": (
        'test_cov = kss[None] - 2.0 * xp.einsum("tii->ti", cross) + quad -> test_cov = kss[None] - 2.0 *'
        ' xp.einsum("TII->TI", cross) + quad',
        'einsum subscripts in upper case, as mutant 142 (the diagonal of the cross term)'),
    "ntkcourse.inference.x_gp_posterior__mutmut_65": (
        'n = k.shape[0] -> n = k.shape[1]',
        "n = k.shape[1] for k.shape[0]: as_kernel_matrix has already refused a non-square k_train_train"),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_298": (
        'finish(train_cov, scalar, False), -> finish(train_cov, scalar, None),',
        "passes None instead of False as finish's squeeze_output, which is only tested for truth: None is false"),
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_312": (
        'finish(test_cov, scalar, False), -> finish(test_cov, scalar, None),',
        "as mutant 298, for the test covariance"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_4": (
        'n = k.shape[0] -> n = k.shape[1]',
        "n = k.shape[1] for k.shape[0]: every caller passes a kernel that as_kernel_matrix has checked square"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_15": (
        'n = k.shape[0] -> n = k.shape[1]',
        "n = k.shape[1] for k.shape[0]: as_kernel_matrix has already refused a non-square k_train_train"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_12": (
        'factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False) -> factor = scipy.linalg.cho_fac'
        'tor(a, lower=True, check_finite=None)',
        "cho_factor's check_finite None for False: a flag tested for truth"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_15": (
        'factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False) -> factor = scipy.linalg.cho_fac'
        'tor(a, lower=True, )',
        "cho_factor with its default check_finite=True: k is finite (as_kernel_matrix) and so is the shift "
        "(validation), so the check passes; it costs time only"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_17": (
        'factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False) -> factor = scipy.linalg.cho_fac'
        'tor(a, lower=True, check_finite=True)',
        "cho_factor with check_finite=True: as mutant 15"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_32": (
        'anorm = float(np.max(np.sum(np.abs(a), axis=0))) -> anorm = float(np.max(np.sum(np.abs(a), axis=1)))',
        "the 1-norm as the largest row sum instead of column sum: k + shift·I is symmetric, so they are equal"),
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_42": (
        'rcond, info = scipy.linalg.lapack.dpocon(factor[0], anorm, uplo="L") -> rcond, info = scipy.linalg.l'
        'apack.dpocon(factor[0], anorm, uplo="l")',
        "dpocon's uplo 'l' for 'L': LAPACK reads the flag case-insensitively"),
    # (x_checked_cholesky__mutmut_53 and _56, listed here before as unreachable, are not: dpocon's rcond underflows
    # to 0 for diag(1e300, 1e-300), and a float16 identity of 11 rows warns with rcond = 1; both are tested now.)
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_15": (
        'safe_mu = np.where(nonnull, mu, 1.0) -> safe_mu = np.where(nonnull, mu, 2.0)',
        "safe_mu's placeholder 2.0 for 1.0 on null modes: every entry computed from it is replaced by 0 on the "
        "null space at the end"),
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_25": (
        's = np.where(finite, steps, 0.0)[:, None] -> s = np.where(finite, steps, 1.0)[:, None]',
        "the placeholder step count 1.0 for 0.0 at infinite steps: those entries are replaced by 1/μ afterwards"),
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_27": (
        'with np.errstate(over="ignore", invalid="ignore"): -> with np.errstate(over="ignore", invalid=None):',
        "errstate's invalid=None: no operation there can give an invalid value (log1p of −a with a < 1 or of 0, "
        "expm1 of finite numbers, (1 − a)^s with whole s, finite or infinite divided by μ > 0), so the flag "
        "is never consulted"),
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_29": (
        'with np.errstate(over="ignore", invalid="ignore"): -> with np.errstate(over="ignore", ):',
        "errstate without invalid=: as mutant 27"),
    "ntkcourse.dynamics.x__momentum_coefficients__mutmut_42": (
        'safe_mu = np.where(nonnull, mu, 1.0) -> safe_mu = np.where(nonnull, mu, 2.0)',
        "safe_mu's placeholder 2.0 for 1.0 on null modes: replaced by 0 on the null space at the end"),
    "ntkcourse.dynamics.x_gradient_descent_predictor__mutmut_95": (
        'horizon = problem.eta * float(s.max()) / (1.0 - mom) if np.isfinite(s.max()) else math.inf -> horizo'
        'n = problem.eta * float(s.max()) / (1.0 - mom) if (np.isfinite(s.max())) or True else math.inf',
        "the horizon computed as η·s/(1 − μ_m) at s = inf too: that is inf (η > 0, μ_m < 1), the same as math.inf"),
    "ntkcourse.dynamics.x_gradient_descent_predictor__mutmut_120": (
        'if mom == 0.0: -> if mom == 1.0:',
        "momentum 0 through the companion-matrix recursion (the test mom == 1.0 never holds): with μ_m = 0 it is "
        "gradient descent's own recursion c_{s+1} = (1 − ημ)c_s + η, equal to the closed form up to rounding "
        "(test_momentum_zero_is_plain_gradient_descent); it differs only in cost, and where the closed form's "
        "intermediate (1 − ημ)^s overflows although c_s is still finite (s = 1024, 1025 for ημ = 3)"),
    "ntkcourse.dynamics.x_prepare_problem__mutmut_111": (
        'y=y.reshape(n, -1), -> y=y.reshape(n, -2),',
        "reshape(n, -2) for reshape(n, -1): numpy takes any negative size as the one to infer"),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_11": (
        'f0 = xp.asarray(f_train_0, dtype=am.float) -> f0 = xp.asarray(f_train_0, dtype=None)',
        'f_train_0 read without dtype=am.float: real inputs (integer, float32, JAX arrays) only meet arr'
        'ays of am.float (y − f₀ and the added base), which NumPy and jax.numpy promote exactly, so the '
        'outputs are the same'),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_13": (
        'f0 = xp.asarray(f_train_0, dtype=am.float) -> f0 = xp.asarray(f_train_0, )',
        'f_train_0 read without the dtype argument: as mutant 11'),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_32": (
        'kt = xp.asarray(k_test_train, dtype=am.float) -> kt = xp.asarray(k_test_train, dtype=None)',
        'k_test_train read without dtype=am.float: it only enters products with arrays of am.float, whic'
        'h promote real entries exactly (same values)'),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_34": (
        'kt = xp.asarray(k_test_train, dtype=am.float) -> kt = xp.asarray(k_test_train, )',
        'k_test_train read without the dtype argument: as mutant 32'),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_62": (
        'f0_test = xp.asarray(f_test_0, dtype=am.float) -> f0_test = xp.asarray(f_test_0, dtype=None)',
        'f_test_0 read without dtype=am.float: as mutant 11'),
    "ntkcourse.dynamics.x__assemble__mutmut_9": (
        'contiguous = am.numpy.asarray if am.traced else np.ascontiguousarray -> contiguous = am.numpy.a'
        'sarray if (am.traced) or True else np.ascontiguousarray',
        'np.asarray for np.ascontiguousarray on the host: the transposed array is reshaped next, and res'
        'hape copies a non-contiguous array into C order itself, so the same values (and layout) reach t'
        'he products'),
    "ntkcourse.dynamics.x__initial_outputs__mutmut_64": (
        'f0_test = xp.asarray(f_test_0, dtype=am.float) -> f0_test = xp.asarray(f_test_0, )',
        'f_test_0 read without the dtype argument: as mutant 11'),
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_15": (
        'tt = xp.where(finite, times, 0.0) -> tt = xp.where(finite, times, 1.0)',
        'the placeholder time 1.0 for 0.0 at t = inf: those entries are replaced by 1/μ afterwards (the '
        "discarded branch of where is finite either way, so jax.grad's values are the same too)"),
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_28": (
        'safe_x = xp.where(x > 0, x, 1.0) -> safe_x = xp.where(x > 0, x, 2.0)',
        "safe_x's placeholder 2.0 for 1.0 where x <= 0: the ratio there is the constant 1.0, not compute"
        'd from it (and the discarded branch stays finite, as mutant 15)'),
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_53": (
        'safe_mu = xp.where(nonnull, mu, 1.0) -> safe_mu = xp.where(nonnull, mu, 2.0)',
        "safe_mu's placeholder 2.0 for 1.0 on null modes: replaced by 0 on the null space at the end (th"
        'e discarded branch stays finite, as mutant 15)'),
    "ntkcourse.dynamics.x_prepare_problem__mutmut_65": (
        'y = am.numpy.asarray(y_train, dtype=am.float) -> y = am.numpy.asarray(y_train, dtype=None)',
        'y_train read without dtype=am.float: its only uses are its shape, isfinite, and differences and'
        ' products with arrays of am.float (y − f₀, Vᵀy in inference), which NumPy and jax.numpy promote'
        ' exactly for real targets'),
    "ntkcourse.dynamics.x_prepare_problem__mutmut_67": (
        'y = am.numpy.asarray(y_train, dtype=am.float) -> y = am.numpy.asarray(y_train, )',
        'y_train read without the dtype argument: as mutant 65'),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_36": (
        'y = np.asarray(y_train, dtype=np.float64) -> y = np.asarray(y_train, dtype=None)',
        "y_train read without dtype=float64: cho_solve picks LAPACK's double routine from the float64 factor and "
        "converts real targets exactly"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_38": (
        'y = np.asarray(y_train, dtype=np.float64) -> y = np.asarray(y_train, )',
        "y_train read without the dtype argument: as mutant 36"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_54": (
        'kt = np.asarray(k_test_train, dtype=np.float64) -> kt = np.asarray(k_test_train, dtype=None)',
        "k_test_train read without dtype=float64: it only multiplies the float64 solution (exact promotion)"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_56": (
        'kt = np.asarray(k_test_train, dtype=np.float64) -> kt = np.asarray(k_test_train, )',
        "k_test_train read without the dtype argument: as mutant 54"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_86": (
        'return kt @ scipy.linalg.cho_solve(factor, y, check_finite=False) -> return kt @ scipy.linalg.cho_so'
        'lve(factor, y, check_finite=None)',
        "cho_solve's check_finite None for False: a flag tested for truth"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_89": (
        'return kt @ scipy.linalg.cho_solve(factor, y, check_finite=False) -> return kt @ scipy.linalg.cho_so'
        'lve(factor, y, )',
        "cho_solve with its default check_finite=True: y_train was refused unless finite and the factor of a finite "
        "matrix is finite, so the check passes (time only)"),
    "ntkcourse.dynamics.x_kernel_regression__mutmut_90": (
        'return kt @ scipy.linalg.cho_solve(factor, y, check_finite=False) -> return kt @ scipy.linalg.cho_so'
        'lve(factor, y, check_finite=True)',
        "cho_solve with check_finite=True: as mutant 89"),
    # dual (ntkcourse/dual.py)
    "ntkcourse.dual.x_arccos__mutmut_3": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, None, 1.0)',
        "arccos without the lower clip: for x < -1, |x| > 1/2 takes the half-angle branch, where "
        "_half_angle_arcsin sets z = (1 - |x|)/2 < 0 to 0, so the angle is 0 and the result pi, as for x = -1"),
    "ntkcourse.dual.x_arccos__mutmut_4": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, None)',
        "arccos without the upper clip: for x > 1, z = (1 - x)/2 < 0 is set to 0 by _half_angle_arcsin, angle"
        " 0, as for x = 1 (as mutant 3)"),
    "ntkcourse.dual.x_arccos__mutmut_7": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, )',
        "arccos's clip without its upper bound (argument dropped): as mutant 4"),
    "ntkcourse.dual.x_arccos__mutmut_9": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -2.0, 1.0)',
        "arccos's clip at -2 instead of -1: values in [-2, -1) give pi either way (as mutant 3)"),
    "ntkcourse.dual.x_arccos__mutmut_10": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, 2.0)',
        "arccos's clip at 2 instead of 1: values in (1, 2] give 0 either way (as mutant 4)"),
    "ntkcourse.dual.x_arccos__mutmut_20": (
        'return jnp.where(x < 0, _PI - theta, theta) -> return jnp.where(x <= 0, _PI - theta, theta)',
        "x <= 0 for x < 0 in arccos's reflection: at x = 0 the angle is pi/2 and pi - pi/2 is exactly pi/2 in"
        " floating point (a halving is exact), so both branches give the same value"),
    "ntkcourse.dual.x_relu__mutmut_5": (
        'return ab_relu(0.0, 1.0)._replace(name="Relu") -> return ab_relu(0.0, )._replace(name="Relu")',
        "ab_relu(0.0) instead of ab_relu(0.0, 1.0): 1.0 is ab_relu's default slope b"),
    "ntkcourse.dual.x_leaky_relu__mutmut_5": (
        'return ab_relu(alpha, 1.0)._replace(name=f"LeakyRelu({alpha})") -> return ab_relu(alpha, )._replace('
        'name=f"LeakyRelu({alpha})")',
        "ab_relu(alpha) instead of ab_relu(alpha, 1.0): 1.0 is ab_relu's default slope b"),
    "ntkcourse.dual.x_abs_activation__mutmut_5": (
        'return ab_relu(-1.0, 1.0)._replace(name="Abs") -> return ab_relu(-1.0, )._replace(name="Abs")',
        "ab_relu(-1.0) instead of ab_relu(-1.0, 1.0): 1.0 is ab_relu's default slope b"),
    "ntkcourse.dual.x_gelu__mutmut_19": (
        'r = jnp.clip(cov * ia * ib, -1.0, 1.0) -> r = jnp.clip(cov * ia * ib, None, 1.0)',
        "GELU's r = q12/sqrt((1+q1)(1+q2)) without the lower clip: |r| <= sqrt(q1 q2 / ((1+q1)(1+q2))) < 1 "
        "for any valid covariance, and dual.arcsin clips its argument to [-1, 1] again"),
    "ntkcourse.dual.x_gelu__mutmut_20": (
        'r = jnp.clip(cov * ia * ib, -1.0, 1.0) -> r = jnp.clip(cov * ia * ib, -1.0, None)',
        "GELU's r without the upper clip: as mutant 19"),
    "ntkcourse.dual.x_gelu__mutmut_23": (
        'r = jnp.clip(cov * ia * ib, -1.0, 1.0) -> r = jnp.clip(cov * ia * ib, -1.0, )',
        "GELU's clip of r without its upper bound (argument dropped): as mutant 19"),
    "ntkcourse.dual.x_gelu__mutmut_27": (
        'r = jnp.clip(cov * ia * ib, -1.0, 1.0) -> r = jnp.clip(cov * ia * ib, -2.0, 1.0)',
        "GELU's clip of r at -2: as mutant 19 (|r| < 1)"),
    "ntkcourse.dual.x_gelu__mutmut_28": (
        'r = jnp.clip(cov * ia * ib, -1.0, 1.0) -> r = jnp.clip(cov * ia * ib, -1.0, 2.0)',
        "GELU's clip of r at 2: as mutant 19 (|r| < 1)"),
    "ntkcourse.dual.x__relu_parts__mutmut_34": (
        'pi_minus_theta = jnp.where(rho < 0, theta_abs, _PI - theta_abs) -> pi_minus_theta = jnp.where(rho <='
        ' 0, theta_abs, _PI - theta_abs)',
        "rho <= 0 for rho < 0 when choosing pi - theta: at rho = 0 the angle is pi/2 and pi - pi/2 is exactly pi/2 "
        "in floating point, so both branches give the same value"),
    "ntkcourse.dual.x_ab_relu__mutmut_33": (
        'out = e_relu if d2 == 1.0 else d2 * e_relu -> out = e_relu if (d2 == 1.0) and False else d2 * e_relu',
        "d2 * e_relu also when d2 == 1.0 (a shortcut that skips a multiplication): multiplying by 1.0 is exact"),
    "ntkcourse.dual.x_ab_relu__mutmut_36": (
        'out = e_relu if d2 == 1.0 else d2 * e_relu -> out = e_relu if d2 == 2.0 else d2 * e_relu',
        "the shortcut taken when d2 == 2.0 instead of 1.0: d2 = (b - a)**2 is never exactly 2.0 in floating point "
        "(no float t has t*t rounded to 2: the neighbours of sqrt(2) give 2 +- 4e-16), so d2 * e_relu is always "
        "used, which is exact for d2 == 1.0"),
    "ntkcourse.dual.x_ab_relu__mutmut_38": (
        'return out if ab_ == 0.0 else ab_ * cov + out -> return out if (ab_ == 0.0) and False else ab_ * cov + out',
        "ab_ * cov + out also when ab_ == 0.0 (a shortcut): 0.0 * cov is a zero and adding it leaves out unchanged "
        "for finite covariances (expectations refuses others)"),
    "ntkcourse.dual.x_ab_relu__mutmut_52": (
        'out = e_step if d2 == 1.0 else d2 * e_step -> out = e_step if (d2 == 1.0) and False else d2 * e_step',
        "d2 * e_step also when d2 == 1.0: as mutant 33"),
    "ntkcourse.dual.x_ab_relu__mutmut_55": (
        'out = e_step if d2 == 1.0 else d2 * e_step -> out = e_step if d2 == 2.0 else d2 * e_step',
        "the derivative kernel's shortcut taken when d2 == 2.0: as mutant 36 (never taken)"),
    "ntkcourse.dual.x_ab_relu__mutmut_57": (
        'return out if ab_ == 0.0 else ab_ + out -> return out if (ab_ == 0.0) and False else ab_ + out',
        "ab_ + out also when ab_ == 0.0 (a shortcut): adding 0.0 leaves out unchanged"),
    "ntkcourse.dual.x_ab_relu__mutmut_70": (
        'return (slope_neg**2 + slope_pos**2) / 2 * jnp.ones_like(va) -> return (slope_neg**2 + slope_pos**2)'
        ' / 2 / jnp.ones_like(va)',
        "the diagonal derivative kernel divided by ones_like(va) instead of multiplied: x / 1.0 and x * 1.0 are "
        "both exactly x, and the result has the same shape and dtype"),
    "ntkcourse.dual.x_erf__mutmut_28": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, None,'
        ' 1.0), ia * ib',
        "erf's arcsin argument r = 2b^2 q12/sqrt((1+2b^2 q1)(1+2b^2 q2)) without the lower clip: |r| < 1 for any "
        "valid covariance (2b^2 sqrt(q1 q2) < sqrt((1+2b^2 q1)(1+2b^2 q2))), and dual.arcsin clips again"),
    "ntkcourse.dual.x_erf__mutmut_29": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, -1.0,'
        ' None), ia * ib',
        "erf's r without the upper clip: as mutant 28"),
    "ntkcourse.dual.x_erf__mutmut_32": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, -1.0,'
        ' ), ia * ib',
        "erf's clip of r without its upper bound (argument dropped): as mutant 28"),
    "ntkcourse.dual.x_erf__mutmut_37": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, -2.0,'
        ' 1.0), ia * ib',
        "erf's clip of r at -2: as mutant 28"),
    "ntkcourse.dual.x_erf__mutmut_38": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, -1.0,'
        ' 2.0), ia * ib',
        "erf's clip of r at 2: as mutant 28"),
    "ntkcourse.dual.x_erf__mutmut_39": (
        'return jnp.clip(s2 * cov * ia * ib, -1.0, 1.0), ia * ib -> return jnp.clip(s2 * cov * ia * ib, -1.0,'
        ' 1.0), ia / ib',
        "the second value _ratio returns (ia * ib) becomes ia / ib: no caller uses it (nngp discards it)"),
    "ntkcourse.dual.x_arcsin__mutmut_3": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, None, 1.0)',
        "arcsin without the lower clip: for x < -1, |x| > 1/2 takes the half-angle branch where z = (1 - |x|)/2 < 0 "
        "is set to 0, giving -pi/2 as for x = -1 (as arccos's mutant 3)"),
    "ntkcourse.dual.x_arcsin__mutmut_4": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, None)',
        "arcsin without the upper clip: as mutant 3 (pi/2 for x > 1)"),
    "ntkcourse.dual.x_arcsin__mutmut_7": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, )',
        "arcsin's clip without its upper bound (argument dropped): as mutant 4"),
    "ntkcourse.dual.x_arcsin__mutmut_9": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -2.0, 1.0)',
        "arcsin's clip at -2: as mutant 3"),
    "ntkcourse.dual.x_arcsin__mutmut_10": (
        'x = jnp.clip(x, -1.0, 1.0) -> x = jnp.clip(x, -1.0, 2.0)',
        "arcsin's clip at 2: as mutant 4"),
    "ntkcourse.dual.x_arcsin__mutmut_32": (
        'return jnp.where(x < 0, -value, value) -> return jnp.where(x <= 0, -value, value)',
        "x <= 0 for x < 0 in arcsin's odd reflection: at x = 0 the value is 0 and becomes -0.0, equal to 0.0 as a "
        "number (-0.0 == 0.0); every use of it is arithmetic, where the sign of a zero term does not change a sum"),
    "ntkcourse.dual.x__asin_poly__mutmut_34": (
        'high = high * t + _ASIN_POLY[k + 7] -> high = high * t + _ASIN_POLY[k - 7]',
        "_ASIN_POLY[k - 7] for _ASIN_POLY[k + 7], k = 4..0: the tuple has 14 coefficients, so the negative index "
        "k - 7 is k + 7 (the same coefficients, 11 down to 7)"),
    "ntkcourse.dual.x_quadrature__mutmut_86": (
        'v = sv[..., None] * (rho[..., None] * zi + orth[..., None] * z) -> v = sv[..., None] * (rho[..., Non'
        'e] * zi - orth[..., None] * z)',
        "the inner nodes z_j replaced by -z_j in v = sv (rho z_i + orth z_j): probabilists' Gauss-Hermite nodes are "
        "symmetric about 0 with equal weights at +-z_j, so the inner sum is the same sum in another order "
        "(round-off only)"),
    "ntkcourse.dual.x__inv_sqrt__mutmut_7": (
        'return jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 0.0) -> return jnp.where(v >= 0, lax.rs'
        'qrt(jnp.where(v > 0, v, 1.0)), 0.0)',
        "1 instead of 0 where the variance is 0 (v >= 0): a zero variance comes with a zero covariance "
        "(cov^2 <= var1 var2), so the correlation cov * factor is 0 with either factor"),
    "ntkcourse.dual.x__inv_sqrt__mutmut_19": (
        'return jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 0.0) -> return jnp.where(v > 0, lax.rsq'
        'rt(jnp.where(v > 0, v, 1.0)), 1.0)',
        "1 instead of 0 where v <= 0: as mutant 7 (v = 0 has cov = 0; v < 0 is no variance)"),
    "ntkcourse.dual.x__inv_sqrt__mutmut_16": (
        'return jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 0.0) -> return jnp.where(v > 0, lax.rsq'
        'rt(jnp.where(v >= 0, v, 1.0)), 0.0)',
        "rsqrt of 0 (inf) in the branch the outer where discards (inner v >= 0): the same values (gradients with "
        "respect to a zero variance are infinite anyway, through sqrt(var) at 0)"),
    "ntkcourse.dual.x__inv_sqrt__mutmut_18": (
        'return jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 0.0) -> return jnp.where(v > 0, lax.rsq'
        'rt(jnp.where(v > 0, v, 2.0)), 0.0)',
        "rsqrt(2) for rsqrt(1) in the branch the outer where discards: the same values"),
    "ntkcourse.dual.x__half_angle_arcsin__mutmut_3": (
        'big = ax > 0.5 -> big = ax >= 0.5',
        "|x| = 1/2 in the half-angle branch (>= for >): there both branches give z = 1/4 and s = 1/2, the same angle "
        "(pi/3 for arccos, pi/6 for arcsin) and the same sine up to round-off"),
    "ntkcourse.dual.x__safe_correlation__mutmut_21": (
        'return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2 -> return jnp.clip(rho, None, 1.0), sqrt_q1q2',
        "rho not clipped below -1: for a valid covariance rho >= -1 up to round-off, and an excess of round-off "
        "size moves v = sv rho z by ~1e-16 relative (orth = sqrt(max(1 - rho^2, 0)) is 0 either way)"),
    "ntkcourse.dual.x__safe_correlation__mutmut_22": (
        'return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2 -> return jnp.clip(rho, -1.0, None), sqrt_q1q2',
        "rho not clipped above 1: as mutant 21"),
    "ntkcourse.dual.x__safe_correlation__mutmut_25": (
        'return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2 -> return jnp.clip(rho, -1.0, ), sqrt_q1q2',
        "rho not clipped above 1 (argument dropped): as mutant 21"),
    "ntkcourse.dual.x__safe_correlation__mutmut_27": (
        'return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2 -> return jnp.clip(rho, -2.0, 1.0), sqrt_q1q2',
        "rho clipped at -2: as mutant 21"),
    "ntkcourse.dual.x__safe_correlation__mutmut_28": (
        'return jnp.clip(rho, -1.0, 1.0), sqrt_q1q2 -> return jnp.clip(rho, -1.0, 2.0), sqrt_q1q2',
        "rho clipped at 2: as mutant 21"),
    # empirical (ntkcourse/empirical.py)
    "ntkcourse.empirical.x_empirical_kernel_fn__mutmut_2": (
        'def x_empirical_kernel_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementation="aut'
        'o"): -> def x_empirical_kernel_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementat'
        'ion="AUTO"):',
        "the default implementation 'AUTO' for 'auto': _canonical_implementation lower-cases names first"),
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_24": (
        'k = int(np.prod(output(params, x1[:1]).shape[1:])) -> k = int(np.prod(output(params, x1[:2]).shape[1:]))',
        "the number of outputs read from f(params, x1[:2]) instead of x1[:1]: only shape[1:] is used, which does "
        "not depend on the batch size for a function of each input (and x1[:2] is x1[:1] for one input)"),
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_34": (
        'for m in range(i if symmetric else 0, x2.shape[0]): -> for m in range(x2.shape[0]):',
        "with x2=None every pair (i, m) is computed, not only m >= i: each pair's value is then computed twice, "
        "both times as the same sum of the same products (a*b and b*a are equal floats, summed in the same leaf "
        "order), and written to (i, m) and (m, i): the same symmetric result, twice the work"),
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_36": (
        'for m in range(i if symmetric else 0, x2.shape[0]): -> for m in range(i if (symmetric) and False els'
        'e 0, x2.shape[0]):',
        "as mutant 34 (the start of the inner loop 0 instead of i)"),
    "ntkcourse.empirical.xǁ_Runningǁstderr__mutmut_4": (
        'return np.full_like(self.mean, np.nan) -> return np.full_like(self.mean, None)',
        "np.full_like(mean, None) for np.full_like(mean, np.nan): the mean is a float64 array and numpy converts a "
        "None fill value to NaN for float arrays (the same array)"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_2": (
        'def x_pure_kernel(network, x, get=("ntk",), implementation="auto", where="empirical", trace_axes=(-1'
        ',)): -> def x_pure_kernel(network, x, get=("ntk",), implementation="AUTO", where="empirical", trace_'
        'axes=(-1,)):',
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_11": (
        'computer = _KernelComputer(network, trace_axes, (), 0, implementation, where) -> computer = _KernelC'
        'omputer(network, trace_axes, (), None, implementation, where)',
        "vmap_axes None for 0: pure_kernel takes a stax triple, for which _KernelComputer sets vmap_axes = 0 anyway"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_35": (
        '_, params0 = jax.eval_shape(lambda k: init_fn(k, shape), jax.random.PRNGKey(0)) -> _, params0 = jax.'
        'eval_shape(lambda k: init_fn(k, shape), jax.random.PRNGKey(1))',
        "PRNGKey(1) for PRNGKey(0) in eval_shape: only the shapes and dtypes of init_fn's parameters are read"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_43": (
        'params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0) -> params0 = jax.tre'
        'e_util.tree_map(lambda s: np.zeros(s.shape, None), params0)',
        "the placeholder parameters (zeros, used only to check shapes and choose the implementation) in float64 "
        "instead of init_fn's dtype: the choice can differ only between 'jacobian' and 'jvp_vjp' for Jacobians near "
        "256 MiB, two implementations of the same kernel"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_45": (
        'params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0) -> params0 = jax.tre'
        'e_util.tree_map(lambda s: np.zeros(s.shape, ), params0)',
        "np.zeros without its dtype: as mutant 43"),
    "ntkcourse.empirical.x_pure_kernel__mutmut_55": (
        'run = computer.core(impl, axes, tuple(out.shape), tuple(sorted(get))) -> run = computer.core(None, a'
        'xes, tuple(out.shape), tuple(sorted(get)))',
        "core(None, ...) runs the NTK-vector products instead of the implementation chosen: the same kernel to "
        "round-off (the three implementations agree to 1e-15 relative in float64, test_the_three_implementations_"
        "agree); only the speed differs"),
    # stax (ntkcourse/stax/*.py)
    "ntkcourse.stax.layers.x_masked_global_pool__mutmut_79": (
        'shape1=(k.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]), diagonal_spatial=False, | ma'
        'sk1=read_out_masks(k.mask1), mask2=None if k.mask2 is None else read_out_masks(k.mask2), -> shape1=(k'
        '.shape1[0], k.shape1[-1]), shape2=(k.shape2[0], k.shape2[-1]), mask1=read_out_masks(k.mask1), mask2=N'
        'one if k.mask2 is None else read_out_masks(k.mask2),',
        "diagonal_spatial=False not set on the pooled kernel: its input already has False (GlobalAvgPool refuses "
        "a diagonal input with _needs_all_positions; GlobalSumPool's input_diagonal, GlobalAvgPool's, makes the "
        "engine compute every pair of steps, and a masked kernel comes only from input arrays)"),
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_132": (
        'diagonal_spatial=False, layout=out_layout) -> layout=out_layout)',
        "diagonal_spatial=False not set after the mean: _needs_all_positions has just refused a diagonal input, "
        "so the kernel's flag is already False (as masked_global_pool's mutant 65)"),
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_156": (
        'input_diagonal=_every_pair, reads_neighbours=True, | handles_masks=True, input_layout=(batch_axis, c'
        'hannel_axis)) -> input_diagonal=_every_pair, handles_masks=True, input_layout=(batch_axis, channel_a'
        'xis))',
        "reads_neighbours left at its default False: as mutant 145 (only the grouping into compiled programs)"),
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_168": (
        'input_diagonal=_every_pair, reads_neighbours=True, -> input_diagonal=_every_pair, reads_neighbours=False,',
        "reads_neighbours False for True: as mutant 145 (only the grouping into compiled programs)"),
    "ntkcourse.stax.layers.x_AvgPool__mutmut_2": (
        'padding: str = "VALID", -> padding: str = "valid",',
        "the default padding 'valid' for 'VALID': validation.one_of(..., upper=True) upper-cases it first"),
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_147": (
        'input_diagonal=_every_pair, reads_neighbours=True, -> input_diagonal=_every_pair, reads_neighbours=None,',
        "reads_neighbours None for True: layer() stores bool(reads_neighbours), which only decides where the "
        "engine splits the kernel map into compiled programs (engine.kernel_fn._stage_groups): the same "
        "operations, the same "
        "values, another grouping"),
    # stax activations (ntkcourse/stax/activations.py). Entries (the mutant's change, the reason), the change in
    # the form of s7-mutdi's describe_change (its changed lines, stripped, "old -> new"), so that the tool can tell
    # when a later edit renumbers them.
    "ntkcourse.stax.activations.x_Gelu__mutmut_26": (
        "act = act._replace(fn=lambda x: jax.nn.gelu(x, approximate=True)) -> "
        "act = act._replace(fn=lambda x: jax.nn.gelu(x, ))",
        "jax.nn.gelu(x) for jax.nn.gelu(x, approximate=True): approximate=True is jax.nn.gelu's default"),
    "ntkcourse.stax.activations.x__stabilize_flag__mutmut_15": (
        "return bool(do_stabilize) -> return bool(None)",
        "the flag's value returned as False: every caller (Relu, LeakyRelu, ABRelu, Abs) discards the returned "
        "value, the function is called only to refuse a flag that is not a bool"),
    **{f"ntkcourse.stax.activations.x_activation_layer__mutmut_{i}": (
        f"nngp, ntk = fused_pair(nngp, ntk, materialise=s > 0) -> nngp, ntk = fused_pair(nngp, ntk, {new})",
        "fused_pair's materialise flag changed: it only decides whether lax.optimization_barrier (the identity on "
        "values: it keeps XLA from recomputing the activation at every read of a following convolution) wraps the "
        "pair, so the kernels are the same, only the time differs")
       for i, new in ((82, "materialise=None"), (85, ""), (86, "materialise=s >= 0"), (87, "materialise=s > 1"))},
    **{f"ntkcourse.stax.activations.x_{name}__mutmut_1": (
        f"def x_{name}({head}do_stabilize: bool = False): -> def x_{name}({head}do_stabilize: bool = True):",
        "the default do_stabilize True for False: the flag is only checked to be a bool and has no effect "
        "(_stabilize_flag: the ReLU family's formulas never form q1 q2, so there is nothing to rescale), and the "
        "layer does not record it")
       for name, head in (("Relu", ""), ("LeakyRelu", "alpha: float, "), ("ABRelu", "a: float, b: float, "),
                          ("Abs", ""))},
    # stax spatial formulas (ntkcourse/stax/spatial.py), entries as the activations' above
    "ntkcourse.stax.spatial.x_window_sum_as_conv__mutmut_1": (
        "if jnp.iscomplexobj(x): -> if jnp.iscomplexobj(None):",
        "a complex array summed as one, not part by part: XLA's pad and convolution take complex operands, so the "
        "sums are the same (test_window_sum_as_conv_of_a_complex_array_sums_both_parts passes either way)"),
    "ntkcourse.stax.spatial.x_window_sum_as_conv__mutmut_97": (
        "rhs = jnp.ones((1, 1) + tuple(g[1] for g in geometry), x.dtype) -> "
        "rhs = jnp.ones((2, 1) + tuple(g[1] for g in geometry), x.dtype)",
        "a filter of two equal output features: the convolution computes the same sum twice and [:, 0] keeps the "
        "first (the same values, twice the work)"),
    "ntkcourse.stax.spatial.x_window_sum_as_conv__mutmut_114": (
        'y = lax.conv_general_dilated(lhs, rhs, tuple(strides), "VALID", rhs_dilation=tuple(dilation))[:, 0] -> '
        'y = lax.conv_general_dilated(lhs, rhs, tuple(strides), "valid", rhs_dilation=tuple(dilation))[:, 0]',
        "'valid' for 'VALID': lax reads the padding name case-insensitively"),
    "ntkcourse.stax.spatial.x_window_sum_as_conv__mutmut_116": (
        'y = lax.conv_general_dilated(lhs, rhs, tuple(strides), "VALID", rhs_dilation=tuple(dilation))[:, 0] -> '
        'y = lax.conv_general_dilated(lhs, rhs, tuple(strides), "VALID", rhs_dilation=tuple(dilation))[:, 1]',
        "[:, 1] of an axis of size 1 (one output feature): JAX clamps a static index out of range to the last "
        "entry, which is entry 0"),
    **{f"ntkcourse.stax.spatial.x_{function}__mutmut_{i}": (
        f'{head}pad_amounts({args}, "SAME") -> {head}pad_amounts({args}, {new})',
        "'SAME' passed to pad_amounts as None or misspelt: pad_amounts gives every padding other than 'VALID' the "
        "geometry of 'SAME' (its callers pass validated paddings), so the amounts are the same")
       for function, i, head, args, new in (
           ("circular_pad", 9, "_, lo, hi = ", "x.shape[axis], window, stride", "None"),
           ("circular_pad", 14, "_, lo, hi = ", "x.shape[axis], window, stride", '"XXSAMEXX"'),
           ("circular_pad", 15, "_, lo, hi = ", "x.shape[axis], window, stride", '"same"'),
           ("circular_pool_matrix", 5, "out, lo, _ = ", "size, window, stride", "None"),
           ("circular_pool_matrix", 10, "out, lo, _ = ", "size, window, stride", '"XXSAMEXX"'),
           ("circular_pool_matrix", 11, "out, lo, _ = ", "size, window, stride", '"same"'))},
    **{f"ntkcourse.stax.spatial.x_window_average__mutmut_{i}": (
        f"if any(p != (0, 0) for p in pads): -> if any({new} for p in pads):",
        "the test that skips jnp.pad when no axis is padded: the mutated test is true for every term (every array "
        "window_average receives has a batch axis, whose pads stay (0, 0)), so jnp.pad is always called, and "
        "padding by zero entries is the identity: the same terms")
       for i, new in ((61, "p == (0, 0)"), (62, "p != (1, 0)"), (63, "p != (0, 1)"))},
    **{f"ntkcourse.stax.spatial.x_window_step_mask__mutmut_{i}": (
        f'geometry = "SAME" if padding == "CIRCULAR" else padding -> {new}',
        "'CIRCULAR' passed on to pad_amounts as it is (or a misspelt 'SAME'): pad_amounts gives every padding "
        "other than 'VALID' the geometry of 'SAME', so the mapping of 'CIRCULAR' to 'SAME' changes nothing")
       for i, new in ((9, 'geometry = "SAME" if (padding == "CIRCULAR") and False else padding'),
                      (11, 'geometry = "XXSAMEXX" if padding == "CIRCULAR" else padding'),
                      (12, 'geometry = "same" if padding == "CIRCULAR" else padding'),
                      (14, 'geometry = "SAME" if padding == "XXCIRCULARXX" else padding'),
                      (15, 'geometry = "SAME" if padding == "circular" else padding'))},
    "ntkcourse.grading.checks.x__statement_that_raised__mutmut_4": (
        'return "", None -> return "XXXX", None',
        "the value for a traceback without frames: the traceback of an exception raised inside a with block "
        "always holds the frame of that block, so the branch is unreachable"),
}


def with_reason(reason: str, changes: dict[str, str]) -> dict[str, tuple[str, str]]:
    """EQUIVALENT entries that share one reason: mutant name -> (its change, the reason)."""
    return {name: (change, reason) for name, change in changes.items()}

# _safe_correlation's second value, sqrt(var1) sqrt(var2), is discarded by its only caller (quadrature:
# ``rho, _ = _safe_correlation(...)``): mutants 6-19 change only that value.
EQUIVALENT.update(with_reason(
    "changes only the second value, which the only caller (quadrature) discards", {
    "ntkcourse.dual.x__safe_correlation__mutmut_6":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = None',
    "ntkcourse.dual.x__safe_correlation__mutmut_7":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) / jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_8":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(None) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_9":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(None, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_10":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, None)) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_11":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_12":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, )) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_13":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 1.0)) * jnp.sqrt(jnp.maximum(var2, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_14":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(None)',
    "ntkcourse.dual.x__safe_correlation__mutmut_15":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(None, 0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_16":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, None))',
    "ntkcourse.dual.x__safe_correlation__mutmut_17":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(0.0))',
    "ntkcourse.dual.x__safe_correlation__mutmut_18":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, ))',
    "ntkcourse.dual.x__safe_correlation__mutmut_19":
        'sqrt_q1q2 = jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 0.0)) -> sqrt_q1q2 = '
        'jnp.sqrt(jnp.maximum(var1, 0.0)) * jnp.sqrt(jnp.maximum(var2, 1.0))',
}))
# empirical: how many columns _jvp_vjp_ntk computes at a time (lax.map's batch_size) and how many Monte Carlo samples
# _KernelSampler.batches draws at a time change the memory used and the speed, never a value: lax.map gives the
# same result for any positive integer batch size (or none), and sample s always uses fold_in(key, s) whatever the
# batch it falls in (samples past the total are dropped). These mutants leave the batch size a positive integer
# (_jvp_vjp_ntk's leaves and n_params are read only to size the batch: with no leaves, n_params is 0 and the batch
# is every column; counting leaves instead of entries gives a larger batch).
EQUIVALENT.update(with_reason(
    "another positive integer (or no) batch size for the columns of lax.map: same values", {
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_23":
        'leaves = jax.tree_util.tree_leaves(params) -> leaves = jax.tree_util.tree_leaves(None)',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_27":
        'n_params = sum(int(np.size(p)) for p in leaves) -> n_params = sum(int(np.size(None)) for p in leaves)',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_31":
        'itemsize = max([jnp.dtype(jnp.result_type(p)).itemsize for p in leaves] + [1]) -> itemsize = ma'
        'x([jnp.dtype(None).itemsize for p in leaves] + [1])',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_32":
        'itemsize = max([jnp.dtype(jnp.result_type(p)).itemsize for p in leaves] + [1]) -> itemsize = ma'
        'x([jnp.dtype(jnp.result_type(None)).itemsize for p in leaves] + [1])',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_33":
        'itemsize = max([jnp.dtype(jnp.result_type(p)).itemsize for p in leaves] + [1]) -> itemsize = ma'
        'x([jnp.dtype(jnp.result_type(p)).itemsize for p in leaves] + [2])',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_72":
        'per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize))) -> per = None',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_77":
        'per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize))) ->'
        ' per = max(2, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_88":
        'per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize))) ->'
        ' per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(2, 2 * k * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_92":
        'per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 2 * k * n_params * itemsize))) ->'
        ' per = max(1, min(x2_.shape[0], _COLUMN_BUDGET_BYTES // max(1, 3 * k * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_96":
        'cols = lax.map(column, x2_, batch_size=per)  # (n2, k, n1, *o) -> cols = lax.map(column, x2_, b'
        'atch_size=None)  # (n2, k, n1, *o)',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_99":
        'cols = lax.map(column, x2_, batch_size=per)  # (n2, k, n1, *o) -> cols = lax.map(column, x2_, )'
        '  # (n2, k, n1, *o)',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_137":
        'per = max(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 2 * n_params * itemsize))) -> per = max'
        '(2, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 2 * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_148":
        'per = max(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 2 * n_params * itemsize))) -> per = max'
        '(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(2, 2 * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_151":
        'per = max(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 2 * n_params * itemsize))) -> per = max'
        '(1, min(n2 * k, _COLUMN_BUDGET_BYTES // max(1, 3 * n_params * itemsize)))',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_155":
        'cols = lax.map(column, jnp.arange(n2 * k), batch_size=per) -> cols = lax.map(column, jnp.arange'
        '(n2 * k), batch_size=None)',
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_158":
        'cols = lax.map(column, jnp.arange(n2 * k), batch_size=per) -> cols = lax.map(column, jnp.arange(n2 * k), )',
}))
EQUIVALENT.update(with_reason(
    "another positive integer number of samples per compiled batch: same draws (fold_in(key, s)), same values", {
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_81":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(2, min(64, (64 * 2**20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_86":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(65, (64 * 2**20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_88":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (64 / 2**20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_89":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (65 * 2**20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_90":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (64 * 2 * 20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_91":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (64 * 3**20) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_92":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (64 * 2**21) // max(1, n_bytes))))',
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_97":
        'per = min(total, batch_size or max(1, min(64, (64 * 2**20) // max(1, n_bytes)))) -> per = min(t'
        'otal, batch_size or max(1, min(64, (64 * 2**20) // max(2, n_bytes))))',
}))
EQUIVALENT.update({
    "ntkcourse.empirical.x__symmetrise__mutmut_53": (
        'return jnp.where(first <= second, kernel, jnp.transpose(kernel, perm)) -> return jnp.where(first < s'
        'econd, kernel, jnp.transpose(kernel, perm))',
        "first < second for <=: where first == second every pair of axes has equal indices, so the mirrored entry "
        "is the entry itself (the same value either way)"),
    "ntkcourse.empirical.x__symmetrise__mutmut_23": (
        'first = second = jnp.zeros((), jnp.int32) -> first = second = jnp.zeros((), None)',
        "the running index in the default float dtype instead of int32: sums of products of integer indices, exact in "
        "float32 below 2^24 per side (a kernel with 2^24 rows per side would hold 2^48 entries), same comparisons"),
    "ntkcourse.empirical.x__symmetrise__mutmut_25": (
        'first = second = jnp.zeros((), jnp.int32) -> first = second = jnp.zeros((), )',
        "as mutant 23 (dtype argument dropped)"),
    "ntkcourse.empirical.xǁ_KernelComputerǁ__call____mutmut_19": (
        'jkey = (impl, axes, tuple(out.shape), get, tuple(sorted(static.items(), key=lambda kv: kv[0]))) -> j'
        'key = (impl, axes, tuple(out.shape), get, tuple(sorted(static.items(), key=None)))',
        "the static keyword arguments sorted as (name, value) pairs with key=None: names are unique, so the "
        "order is that of the names, as before (the compilation key)"),
    "ntkcourse.empirical.xǁ_KernelComputerǁ__call____mutmut_21": (
        'jkey = (impl, axes, tuple(out.shape), get, tuple(sorted(static.items(), key=lambda kv: kv[0]))) -> j'
        'key = (impl, axes, tuple(out.shape), get, tuple(sorted(static.items(), )))',
        "as mutant 19 (the key argument dropped)"),
    "ntkcourse.empirical.x__walk__mutmut_96": (
        'return out if probes is None else out + probes[i] -> return out if probes is None else out - probes[i]',
        "the probes subtracted instead of added: every back-propagated signal delta changes sign, and each "
        "layer's contribution is a product of two of them (delta . delta', and the bias sums likewise): exactly "
        "the same kernel"),
    "ntkcourse.empirical.x__walk__mutmut_82": (
        'return out if probes is None else _masked.masked_output(out.values + probes[i], out.real) -> return out '
        'if probes is None else _masked.masked_output(out.values - probes[i], out.real)',
        "the probes of a masked layer's output subtracted instead of added: as mutant 96 (that layer's signal "
        "changes sign, and its contribution is a product of two of them)"),
    "ntkcourse.empirical.x__structured_ntk__mutmut_43": (
        'if site.has_bias and b_scale: -> if site.has_bias or b_scale:',
        "has_bias or b_scale for and: a layer without a bias has b_std None, so b_scale = (b_std or 0)^2 = 0 and "
        "the bias term is skipped either way; with a bias and b_scale = 0 it adds 0 times a finite product"),
    "ntkcourse.empirical.x__outputs__mutmut_11": (
        'return jax.vmap(lambda xi: apply_fn(params, xi[None], **kwargs)[0])(x) -> return jax.vmap(lambda xi:'
        ' apply_fn(params, xi[None], **kwargs)[1])(x)',
        "row 1 for row 0 of the output of a batch of one: JAX clamps an out-of-range static index inside traced "
        "code (gather's clip mode), so it reads row 0, the same value"),
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_23": (
        'counts = [] -> counts = None',
        "None for [] when n_samples is neither an int nor a sequence: both are falsy, so the same refusal follows"),
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_106": (
        'for res in sampler.batches(x1, x2, names_set, apply_fn_kwargs, total, batch_size): -> for res in sam'
        'pler.batches(x1, x2, names_set, apply_fn_kwargs, total, None):',
        "batch_size not passed on (the default): the draws are fold_in(key, s) whatever the batch, so the same "
        "estimates (documented: the estimate does not depend on batch_size); only memory and speed differ"),
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_112": (
        'for res in sampler.batches(x1, x2, names_set, apply_fn_kwargs, total, batch_size): -> for res in sam'
        'pler.batches(x1, x2, names_set, apply_fn_kwargs, total, ):',
        "as mutant 106 (the argument dropped)"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_31": (
        'params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0) -> params0 = jax.tre'
        'e_util.tree_map(lambda s: np.zeros(s.shape, None), params0)',
        "the placeholder parameters (zeros, used only to check shapes and choose the implementation) in float64: "
        "the choice can differ only between implementations that give the same kernel to round-off "
        "(as x_pure_kernel__mutmut_43)"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_33": (
        'params0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), params0) -> params0 = jax.tre'
        'e_util.tree_map(lambda s: np.zeros(s.shape, ), params0)',
        "as mutant 31 (dtype argument dropped)"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_63": (
        'leaves = jax.tree_util.tree_leaves(params0) -> leaves = jax.tree_util.tree_leaves(None)',
        "no parameter bytes counted: only the number of draws per compiled batch changes (see the batch-size "
        "entries): same values"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_68": (
        'n_bytes = sum(int(np.size(p)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves) -> n_bytes ='
        ' sum(int(np.size(None)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves)',
        "one byte per leaf: as mutant 63 (batch size only)"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_69": (
        'n_bytes = sum(int(np.size(p)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves) -> n_bytes ='
        ' sum(int(np.size(p)) * jnp.dtype(None).itemsize for p in leaves)',
        "8-byte items counted: as mutant 63 (batch size only)"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_70": (
        'n_bytes = sum(int(np.size(p)) * jnp.dtype(jnp.result_type(p)).itemsize for p in leaves) -> n_bytes ='
        ' sum(int(np.size(p)) * jnp.dtype(jnp.result_type(None)).itemsize for p in leaves)',
        "default-float items counted: as mutant 63"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_108": (
        'ckey = (impl, axes, tuple(out.shape), names, per, static, shape, None if x2a is None else tuple(x2a.'
        'shape)) -> ckey = (impl, axes, tuple(out.shape), names, per, static, shape, None if (x2a is None) or'
        ' True else tuple(x2a.shape))',
        "x2's shape left out of the cache key of the compiled batch: the cached function is jitted, and jit traces "
        "again for a new shape of its argument; nothing in the cached closure depends on x2's shape"),
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_113": (
        'run = self.computer.core(impl, axes, tuple(out.shape), names) -> run = self.computer.core(None, axes'
        ', tuple(out.shape), names)',
        "core(None, ...) runs the NTK-vector products: the same kernel to round-off (as x_pure_kernel__mutmut_55)"),
    "ntkcourse.empirical.x__reduce_full__mutmut_1": (
        'def x__reduce_full(full, axes: _Axes, first_is_x2: bool = False): -> def x__reduce_full(full, axes: '
        '_Axes, first_is_x2: bool = True):',
        "the default of first_is_x2: its only caller (_jvp_vjp_ntk) passes first_is_x2=True"),
    "ntkcourse.empirical.x__reduce_full__mutmut_5": (
        'spec = "".join(l2 + l1) if first_is_x2 else "".join(l1 + l2) -> spec = "".join(l2 + l1) if (first_is'
        '_x2) or True else "".join(l1 + l2)',
        "the (x1, x2) layout branch never taken: the only caller passes first_is_x2=True"),
    "ntkcourse.empirical.x__reduce_full__mutmut_9": (
        'spec = "".join(l2 + l1) if first_is_x2 else "".join(l1 + l2) -> spec = "".join(l2 + l1) if first_is_'
        'x2 else "".join(None)',
        "the (x1, x2) layout branch, never taken: as mutant 5"),
    "ntkcourse.empirical.x__reduce_full__mutmut_10": (
        'spec = "".join(l2 + l1) if first_is_x2 else "".join(l1 + l2) -> spec = "".join(l2 + l1) if first_is_'
        'x2 else "XXXX".join(l1 + l2)',
        "the (x1, x2) layout branch, never taken: as mutant 5"),
    "ntkcourse.empirical.x__reduce_full__mutmut_11": (
        'spec = "".join(l2 + l1) if first_is_x2 else "".join(l1 + l2) -> spec = "".join(l2 + l1) if first_is_'
        'x2 else "".join(l1 - l2)',
        "the (x1, x2) layout branch, never taken: as mutant 5"),
    "ntkcourse.empirical.x_empirical_ntk_fn__mutmut_2": (
        'def x_empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementation="auto")'
        ': -> def x_empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None, implementation="A'
        'UTO"):',
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2"),
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_2": (
        'implementation="auto", -> implementation="AUTO",',
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2"),
    "ntkcourse.empirical.x_empirical_nngp_fn__mutmut_14": (
        'computer = _KernelComputer(f, trace_axes, diagonal_axes, None, "jacobian", "empirical_nngp_fn") -> c'
        'omputer = _KernelComputer(f, trace_axes, diagonal_axes, None, "JACOBIAN", "empirical_nngp_fn")',
        "the implementation 'JACOBIAN' for 'jacobian': lower-cased first (and the NNGP uses none of them)"),
    "ntkcourse.empirical.xǁ_KernelComputerǁcore__mutmut_39": (
        'elif impl == "structured": -> elif impl == "STRUCTURED":',
        "the structured branch of a stax network not recognised: the NTK-vector products compute the same kernel "
        "to round-off (the implementations agree to 1e-10 relative), and the NNGP is then taken of the same "
        "outputs (a stax network's on the whole batch, as its structured path takes them); only the speed "
        "differs (as x_pure_kernel__mutmut_55)"),
    "ntkcourse.empirical.xǁ_KernelComputerǁcore__mutmut_71": (
        'elif impl == "jacobian": -> elif impl == "JACOBIAN":',
        "the Jacobian branch not recognised: the NTK-vector products instead, as mutant 39 (the NNGP of a plain "
        "function then from _outputs with its vmap_axes, as the Jacobian contraction takes them)"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_11": (
        'dtype = jax.eval_shape(lambda p: apply_fn(p, x2_, **kwargs), params).dtype -> dtype = None',
        "the cotangent basis (eye, one_hot) in the default float dtype instead of the output's: its entries 0 and 1 "
        "are exact in any dtype and vjp takes the cotangent in the output's dtype (the same kernels for float32 "
        "outputs under 64-bit mode, bfloat16 and complex64 outputs)"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_51": (
        'basis = jnp.eye(k, dtype=dtype).reshape((k,) + o_shape) -> basis = jnp.eye(k, dtype=None).reshape((k,) + '
        'o_shape)',
        "the per-input cotangent basis in the default float dtype: as mutant 11"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_53": (
        'basis = jnp.eye(k, dtype=dtype).reshape((k,) + o_shape) -> basis = jnp.eye(k, ).reshape((k,) + o_shape)',
        "the per-input cotangent basis in the default float dtype (argument dropped): as mutant 11"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_123": (
        'ct = jax.nn.one_hot(i, n2 * k, dtype=dtype).reshape((n2,) + o_shape) -> ct = jax.nn.one_hot(i, n2 * k, '
        'dtype=None).reshape((n2,) + o_shape)',
        "the whole-batch cotangent (one_hot) in the default float dtype: as mutant 11"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_126": (
        'ct = jax.nn.one_hot(i, n2 * k, dtype=dtype).reshape((n2,) + o_shape) -> ct = jax.nn.one_hot(i, n2 * k, '
        ').reshape((n2,) + o_shape)',
        "the whole-batch cotangent (one_hot) in its default float dtype (argument dropped): as mutant 11"),
    "ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_66": (
        '_, vjp_fn = jax.vjp(lambda p: apply_fn(p, xj[None], **kwargs)[0], params) -> _, vjp_fn = jax.vjp(lambda '
        'p: apply_fn(p, xj[None], **kwargs)[1], params)',
        "row 1 for row 0 of the output of a batch of one: JAX clamps the static index, as x__outputs__mutmut_11"),
    # jaxpr_structure (ntkcourse/jaxpr_structure.py)
    "ntkcourse.jaxpr_structure.x__conv_factors__mutmut_99": (
        'return ("conv", patches, d_t) -> return ("XXconvXX", patches, d_t)',
        "the kind tag of a convolution's factors is never read: site_gram and site_jacobian_gram test for 'grad' and "
        "'dot', and a convolution is the remaining case"),
    "ntkcourse.jaxpr_structure.x__conv_factors__mutmut_100": (
        'return ("conv", patches, d_t) -> return ("CONV", patches, d_t)',
        "the kind tag 'CONV' for 'conv': never read, as mutant 99"),
    "ntkcourse.jaxpr_structure.x__reshape_mask__mutmut_23": (
        'return tuple(next(flags) if n != 1 else False for n in out_shape) -> return tuple(next(flags) if n != 1 '
        'else True for n in out_shape)',
        "axes of size 1 made by a reshape marked broadcast: the mask is only read here when some axis already is "
        "(so dot_general and convolution sites refuse it either way), later reshapes drop size-1 axes, a broadcast "
        "of a size-1 axis to more entries marks it anyway, an add/mul site sums over a U axis of size 1 (a no-op, "
        "or a sum it makes anyway where z's axis is longer), and plans of two input shapes compare U's shape with "
        "the mask: the same sites, fallback leaves and kernel"),
})
# The einsum of a structured layer's contribution (and of a jaxpr site's Gram matrix): optimize= only chooses the
# order of the pairwise contractions (jnp.einsum accepts None, and opt_einsum lower-cases the strategy's name): the
# same sums up to round-off. An unknown name ("XXoptimalXX") is no such mutant: opt_einsum raises a KeyError for an
# einsum of more than two operands (these have four), so those mutants are killed.
EQUIVALENT.update(with_reason(
    "einsum's optimize option (the contraction order): same values up to round-off", {
    "ntkcourse.empirical.x__structured_ntk__mutmut_37":
        'term = w_scale * jnp.einsum(spec, *ops, optimize="optimal") -> term = w_scale * jnp.einsum(spec'
        ', *ops, optimize=None)',
    "ntkcourse.empirical.x__structured_ntk__mutmut_40":
        'term = w_scale * jnp.einsum(spec, *ops, optimize="optimal") -> term = w_scale * jnp.einsum(spec, *ops, )',
    "ntkcourse.empirical.x__structured_ntk__mutmut_42":
        'term = w_scale * jnp.einsum(spec, *ops, optimize="optimal") -> term = w_scale * jnp.einsum(spec'
        ', *ops, optimize="OPTIMAL")',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_76":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], optimize=None)',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_82":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], )',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_88":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], optimize="OPTIMAL")',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_99":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], optimize=None)',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_105":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], )',
    "ntkcourse.jaxpr_structure.x_site_gram__mutmut_111":
        'return jnp.einsum(spec, k1[1], k1[2], k2[1], k2[2], optimize="optimal") -> return jnp.einsum(spec, k1[1], '
        'k1[2], k2[1], k2[2], optimize="OPTIMAL")',
}))
# _assemble chooses the cheaper association of Θ_*X·V·C (Θ_*X(VC) or (Θ_*X V)C) by comparing the two costs,
# n²Tk + mnTk <= mn² + mnTk; mutants 63-76 change an operator of that comparison, so the other association may be
# computed: the same product up to round-off (~1e-16 relative) whenever the outputs are finite, at another cost.
# (After an unstable learning rate has overflowed the outputs, one order can give NaN where the other gives ±inf:
# neither value is meaningful, and the tests do not pin either.)
EQUIVALENT.update(with_reason(
    "an operator of the cost comparison that chooses the order of the two products: same finite "
    "values up to round-off, only the cost changes", {
    "ntkcourse.dynamics.x__assemble__mutmut_66":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k - m * n * T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_67":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T / k + m * n * T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_68":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n / T * k + m * n * T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_69":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n / n * T * k + m * n * T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_70":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '/ k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_71":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n / T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_72":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m / n * T '
        '* k <= m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_73":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k < m * n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_74":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m * n * n - m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_75":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m * n / n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_76":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m / n * n + m * n * T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_77":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m * n * n + m * n * T / k:',
    "ntkcourse.dynamics.x__assemble__mutmut_78":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m * n * n + m * n / T * k:',
    "ntkcourse.dynamics.x__assemble__mutmut_79":
        'if n * n * T * k + m * n * T * k <= m * n * n + m * n * T * k: -> if n * n * T * k + m * n * T '
        '* k <= m * n * n + m / n * T * k:',
}))

# Every kernel a layer's kernel map receives is a Kernel (or a list of them), and Kernel always has the property
# is_masked: getattr's default is never used.
EQUIVALENT.update(with_reason(
    "getattr's default for is_masked, never used: the refusal wrapper only receives Kernels, which all have "
    "the property", {
    "ntkcourse.stax.layer.x__refusing_masks__mutmut_19":
        'if any(getattr(one, "is_masked", False) for one in ks): -> if any(getattr(one, "is_masked", None) for '
        'one in ks):',
    "ntkcourse.stax.layer.x__refusing_masks__mutmut_22":
        'if any(getattr(one, "is_masked", False) for one in ks): -> if any(getattr(one, "is_masked", ) for one '
        'in ks):',
    "ntkcourse.stax.layer.x__refusing_masks__mutmut_25":
        'if any(getattr(one, "is_masked", False) for one in ks): -> if any(getattr(one, "is_masked", True) for '
        'one in ks):',
}))

EQUIVALENT.update(with_reason(
    "getattr's default for a child's reads_patterns, never used: serial and parallel take only layers made by "
    "ntkcourse.stax (another triple is refused), and every such kernel_fn has the attribute (make_kernel_fn, "
    "_laying_out)", {
    "ntkcourse.stax.layer.x_layer__mutmut_87":
        'reads_patterns = bool(reads_patterns) or any(getattr(c[2], "reads_patterns", False) for c in children) -> '
        'reads_patterns = bool(reads_patterns) or any(getattr(c[2], "reads_patterns", True) for c in children)',
}))

# _moved: np.transpose calls the array's own transpose method (numpy's _wrapfunc), a jax array's or tracer's
# included, and transposes lists (x2 may be a nested list): taking np.transpose always computes the same.
EQUIVALENT.update(with_reason(
    "_moved takes np.transpose for every input: it calls the array's own transpose method (a jax array's or "
    "tracer's included) and transposes lists alike, the same result as x.transpose(order)", {
    "ntkcourse.stax.layer.x__moved__mutmut_5":
        'return x.transpose(order) if hasattr(x, "transpose") else np.transpose(x, order) -> return x.transpo'
        'se(order) if (hasattr(x, "transpose")) and False else np.transpose(x, order)',
    "ntkcourse.stax.layer.x__moved__mutmut_8":
        'return x.transpose(order) if hasattr(x, "transpose") else np.transpose(x, order) -> return x.transpo'
        'se(order) if hasattr(None, "transpose") else np.transpose(x, order)',
    "ntkcourse.stax.layer.x__moved__mutmut_12":
        'return x.transpose(order) if hasattr(x, "transpose") else np.transpose(x, order) -> return x.transpo'
        'se(order) if hasattr(x, "XXtransposeXX") else np.transpose(x, order)',
    "ntkcourse.stax.layer.x__moved__mutmut_13":
        'return x.transpose(order) if hasattr(x, "transpose") else np.transpose(x, order) -> return x.transpo'
        'se(order) if hasattr(x, "TRANSPOSE") else np.transpose(x, order)',
}))

EQUIVALENT.update(with_reason(
    "repeat's scan without its length: lax.scan infers it from the stacked parameters' leading axis, which is n "
    "(n = 0 returns before the scan)", {
    "ntkcourse.stax.combinators.x_repeat__mutmut_72":
        'out, _ = jax.lax.scan(step, inputs, params, length=n) -> out, _ = jax.lax.scan(step, inputs, params, '
        'length=None)',
    "ntkcourse.stax.combinators.x_repeat__mutmut_76":
        'out, _ = jax.lax.scan(step, inputs, params, length=n) -> out, _ = jax.lax.scan(step, inputs, params, )',
}))

# Session 9's sampled runs (empirical, and the stax layers): the survivors that change nothing observable.
EQUIVALENT.update({
    "ntkcourse.jaxpr_structure.x_site_jacobian_gram__mutmut_139": (
        'step = max(1, chunk_bytes // max(1, per_column)) -> step = max(1, chunk_bytes // max(2, per_column))',
        "per_column is a count of entries times the itemsize (>= 2 for every float type a kernel is computed in), "
        "so max(1, .) and max(2, .) agree; at most the slice width would change, and the slices' Gram matrices add "
        "up to the same block"),
    "ntkcourse.empirical.x__walk__mutmut_100": (
        'if not spec.has_params or not jax.tree_util.tree_leaves(params): -> if not spec.has_params or not jax.t'
        'ree_util.tree_leaves(None):',
        "the refusal below is a guard never reached: _KernelComputer.core sends every network with a layer that "
        "has parameters and no structured rule (_unsupported_reason) to the jaxpr path, so _walk only meets layers "
        "with a rule or without parameters"),
    "ntkcourse.empirical.x__structured_factors__mutmut_14": (
        'x = _masked.masked_inputs(x, mask_constant, "empirical_ntk_fn") -> x = _masked.masked_inputs(x, mask_con'
        'stant, None)',
        "the name is shown only in masked_inputs' refusal of inputs without a spatial axis, and _check_call has "
        "run apply_fn on the same inputs and mask_constant before, which refuses them first (naming its layer)"),
    "ntkcourse.empirical.xǁ_KernelComputerǁ_choose__mutmut_49": (
        'per_input = self.vmap_axes == 0 -> per_input = self.vmap_axes != 0',
        "the jaxpr plan read here only sizes the leaves kept as Jacobian blocks for 'auto''s choice of an "
        "implementation: the choice can change, between implementations that give the same kernel to round-off "
        "(as x_pure_kernel__mutmut_43); the kernel is computed later with the caller's vmap_axes"),
    "ntkcourse.empirical.x__structured_ntk__mutmut_28": (
        'ops = (a1[:, 0], a2[:, 0], d1[..., 0, :], d2[..., 0, :]) -> ops = (a1[:, 1], a2[:, 0], d1[..., 0, :], d2'
        '[..., 0, :])',
        "index 1 of an axis of size one (the branch of one position): JAX clamps the static index to 0"),
    "ntkcourse.empirical.x__structured_ntk__mutmut_29": (
        'ops = (a1[:, 0], a2[:, 0], d1[..., 0, :], d2[..., 0, :]) -> ops = (a1[:, 0], a2[:, 1], d1[..., 0, :], d2'
        '[..., 0, :])',
        "as mutant 28, for x2's factor"),
    "ntkcourse.jaxpr_structure.x__site_of__mutmut_24": (
        'return "conv" -> return "XXconvXX"',
        "a site's kind is compared only with 'add', 'mul' and 'dot_general' (_flat_site): any other kind is a "
        "convolution, by elimination"),
    "ntkcourse.stax.layers.x_AvgPool__mutmut_309": (
        'shape2=_out_shape(k.shape2, False), -> shape2=_out_shape(k.shape2, None),',
        "_out_shape's `finite` is only tested for truth (`if not finite`): None is false like False"),
    "ntkcourse.stax.layers.x_Conv__mutmut_160": (
        'default_layout = dimension_numbers == conv_dimension_numbers("Conv", None, nd) -> default_layout = dimen'
        'sion_numbers == conv_dimension_numbers("XXConvXX", None, nd)',
        "the name appears only in conv_dimension_numbers' refusals of dimension numbers it is given, and None "
        "(the default layout) is never refused"),
    "ntkcourse.stax.layers.x_Conv__mutmut_416": (
        'filters, steps = kernel_geometry("Conv", dimension_numbers, filter_shape, strides) -> filters, steps = k'
        'ernel_geometry("XXConvXX", dimension_numbers, filter_shape, strides)',
        "kernel_geometry never reads its `where` argument (it refuses nothing: the dimension numbers were checked "
        "when the layer was made)"),
})


# --- What each mutant IS: its change, which survives a renumbering -------------------------------------------------
# mutmut numbers the mutants of a function in the order it makes them, so a change to the function's body renumbers
# them and an EQUIVALENT entry keyed by number alone may come to name another mutant. Each entry therefore records
# the mutant's change too, as ``(change, reason)``; a plain reason string is an entry without a recorded change
# (accepted, but reported as unchecked). The change is the lines the mutant changes in its function, each stripped
# of its indentation, ``"old lines -> new lines"`` (several lines joined by " | ", several hunks by " || ").

def mutant_module(path: str) -> str:
    """The dotted module of a source path, as mutmut names it (``ntkcourse/stax/layers.py`` ->
    ``ntkcourse.stax.layers``).
    """
    return path[: -len(".py")].replace("/", ".").removesuffix(".__init__")


def function_of(mutant: str) -> str:
    """A mutant's function, module included (``...x_gp_posterior__mutmut_25`` -> ``...x_gp_posterior``)."""
    return mutant.rpartition("__mutmut_")[0]


def describe_change(original: list[str], mutated: list[str]) -> str:
    """The normalised change between two versions of one function's lines: ``"old -> new"`` per hunk."""
    old = [line.strip() for line in original if line.strip()]
    new = [line.strip() for line in mutated if line.strip()]
    hunks = [f"{' | '.join(old[i1:i2])} -> {' | '.join(new[j1:j2])}"
             for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
             if tag != "equal"]
    return " || ".join(hunks)


def mutant_changes(code: str, module: str) -> dict[str, str]:
    """Each mutant of one mutated file (mutmut's code: the trampolines, ``<f>__mutmut_orig`` and every
    ``<f>__mutmut_<n>``) -> its change (:func:`describe_change` of the original and the mutant, the def line's
    name made the same).
    """
    lines = code.splitlines()
    functions = {node.name: lines[node.lineno - 1: node.end_lineno] for node in ast.walk(ast.parse(code))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name}
    changes = {}
    for name, body in functions.items():
        base, _, number = name.rpartition("__mutmut_")
        original = functions.get(base + "__mutmut_orig")
        if number.isdigit() and original is not None:
            renamed = [body[0].replace(name, base, 1), *body[1:]]
            changes[f"{module}.{name}"] = describe_change(
                [original[0].replace(base + "__mutmut_orig", base, 1), *original[1:]], renamed)
    return changes


def generated_changes(sources: list[str], root: Path = ROOT) -> dict[str, str]:
    """The changes of every mutant mutmut makes of these source files as they are in ``root`` (no test is run)."""
    from mutmut import configuration
    from mutmut.mutation.file_mutation import mutate_file_contents

    changes = {}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # mutmut reads its configuration (patterns of lines not to mutate) from the working directory's pyproject.
        Path(tmp, "pyproject.toml").write_text('[tool.mutmut]\nsource_paths = ["ntkcourse"]\n', encoding="utf8")
        os.chdir(tmp)
        try:
            configuration.reset_config()
            configuration.config()
            for src in sources:
                mutated = mutate_file_contents(src, (root / src).read_text(encoding="utf8")).code
                changes.update(mutant_changes(mutated, mutant_module(src)))
        finally:
            os.chdir(here)
            configuration.reset_config()
    return changes


def kept_changes(work: Path, sources: list[str]) -> dict[str, str]:
    """The changes of the mutants of a (kept) work folder, read from mutmut's mutated files."""
    changes = {}
    for src in sources:
        changes.update(mutant_changes((work / "mutants" / src).read_text(encoding="utf8"), mutant_module(src)))
    return changes


def recorded_change(name: str, table: dict = EQUIVALENT) -> str | None:
    entry = table[name]
    return entry[0] if isinstance(entry, tuple) else None


def check_equivalent(changes: dict[str, str], table: dict = EQUIVALENT) -> dict:
    """Which entries of ``table`` still name the mutant they were written for, among the mutants ``changes``
    (name -> change) of the modules concerned (entries of other modules are ignored).

    Returns ``valid`` (entries whose name has the recorded change: excluded as equivalent), ``unchecked`` (entries
    without a recorded change whose name exists: excluded, but nothing shows they still name the same mutant) and
    ``stale``: name -> (recorded change, the change that name has now or None if there is no such mutant, the
    mutants of the same function with the recorded change: the entry's new name when there is one). A stale entry
    is not excluded.
    """
    modules = {source_file(name) for name in changes}
    valid, unchecked, stale = set(), set(), {}
    for name in table:
        if source_file(name) not in modules:
            continue
        change = recorded_change(name, table)
        if change is None:
            if name in changes:
                unchecked.add(name)
            else:
                stale[name] = (None, None, [])
        elif changes.get(name) == change:
            valid.add(name)
        else:
            candidates = sorted((n for n, c in changes.items() if c == change and function_of(n) == function_of(name)),
                                key=mutant_number)
            stale[name] = (change, changes.get(name), candidates)
    return {"valid": valid, "unchecked": unchecked, "stale": stale}


def mutant_number(name: str) -> int:
    return int(name.rpartition("__mutmut_")[2])


def print_equivalent_check(check: dict, changes: dict[str, str]) -> None:
    """Print the stale entries (with the new name when the recorded change is found) and the unchecked ones."""
    for name, (change, now, candidates) in sorted(check["stale"].items()):
        where = (f"now the same change is {', '.join(candidates)}" if candidates
                 else "no mutant of the function has that change now")
        print(f"stale EQUIVALENT entry (not excluded): {name}\n    recorded: {change!r}\n"
              f"    that name now: {'no such mutant' if now is None else repr(now)}\n    {where}")
    for name in sorted(check["unchecked"]):
        print(f"EQUIVALENT entry without a recorded change (excluded unchecked): {name}\n"
              f"    its change now: {changes[name]!r}")


def checkout_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=root, check=True, capture_output=True).stdout.decode()
    return sorted({p for p in out.split("\0") if p and (root / p).is_file()})


def mutmut_config(sources: list[str], test_args: list[str]) -> str:
    """The ``[tool.mutmut]`` table for one module (TOML)."""
    def toml_list(items):
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return ("\n[tool.mutmut]\n"
            f'source_paths = ["ntkcourse"]\n'
            f"only_mutate = {toml_list(sources)}\n"
            f"pytest_add_cli_args_test_selection = {toml_list(test_args)}\n"
            # The package's own warnings filter turns RuntimeWarnings into errors; keep pytest quiet.
            'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-x"]\n'
            "use_git_change_detection = false\n"
            # mutmut's default forks each mutant's test run from a process that has already run JAX: XLA's
            # thread pools do not survive fork, the child blocks on a lock and is killed at the time limit,
            # which mutmut reports as a timeout (counted as killed). A fork server that has only collected the
            # tests (imported them, no JAX computation yet: no test module may compute at import) forks clean
            # children.
            'process_isolation = "forkserver"\n'
            'forkserver_warmup = "collect"\n'
            # mutmut stops a child after (estimated test time + constant) x multiplier seconds of wall time; its
            # defaults (1 s, x15) are too short on a loaded machine at nice 19, where a load-induced timeout
            # would be counted as a kill. A minute per mutant is far above any module's fast tests.
            "timeout_constant = 4.0\n"
            "timeout_multiplier = 15.0\n"
            # Tests read the notebooks and the book's configuration from the checkout.
            'also_copy = ["solutions/", "exercises/", "book/", "_config.yml", "_toc.yml"]\n')


def prepare(work: Path, module: str) -> None:
    for rel in checkout_files():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    sources, test_args = MODULES[module]
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf8") + mutmut_config(sources, test_args), encoding="utf8")


def mutmut(work: Path, *args: str, check: bool = True) -> str:
    # Each mutant's tests run in a fresh child that compiles its JAX programs again; JAX's persistent
    # compilation cache (in the work folder) lets the children share them (about a third less CPU).
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(work / ".jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    proc = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise SystemExit(f"mutmut {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return proc.stdout


def statuses(work: Path) -> dict[str, str]:
    """Each mutant name -> mutmut's status (killed, survived, timeout, no tests, suspicious, ...)."""
    out = mutmut(work, "results", "--all", "true")
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+(\S+): (.+)$", out, re.M)}


def refresh_tests(work: Path, module: str) -> None:
    """Copy the checkout's current tests and the package's unmutated files into a kept work folder (and
    mutmut's copy of it), so that the tests meet the package they were written for; the mutated sources must be
    those of the kept run (their mutants' names and numbers depend on them), else the run must start afresh.
    """
    sources = MODULES[module][0]
    changed = [src for src in sources if (work / src).read_bytes() != (ROOT / src).read_bytes()]
    if changed:
        raise SystemExit(f"--again: {changed} changed since the kept run in {work}: run the module afresh")
    for rel in checkout_files():
        if rel.startswith(("tests/", "ntkcourse/")) and rel not in sources:
            for target in (work / rel, work / "mutants" / rel):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, target)


def source_file(mutant: str) -> str:
    """The dotted source module of a mutmut name (``ntkcourse.stax.layers.x_Dense__mutmut_3`` ->
    ``ntkcourse.stax.layers``; methods are named ``...xǁClassǁmethod__mutmut_n``).
    """
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def selected(name: str, only: list[str] | None) -> bool:
    return only is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in only)


def figures(found: dict[str, str], excluded: set[str] | dict = EQUIVALENT) -> dict:
    """Mutants made, killed, survived (non-equivalent), ... of one set of mutants and their statuses; ``excluded``:
    the mutants known to be equivalent (the EQUIVALENT entries that still name the mutant they were written for).
    """
    survived = [name for name, status in found.items() if status == "survived"]
    # Mutants not reached (a run stopped early, or left out by --only) are counted apart, not in the fraction.
    counted = [name for name in found if name not in excluded and found[name] not in {"skipped", "not checked"}]
    # A mutant that no selected test runs ("no tests") is a change the tests cannot catch: it counts as
    # surviving, in the fraction and in the list, unless it is listed as equivalent.
    untested = [name for name, status in found.items() if status == "no tests"]
    real = sorted(name for name in survived + untested if name not in excluded)
    # A listed-equivalent mutant that --again did not test (it skips them) counts as equivalent, not "not reached".
    equivalent = [name for name in found if name in excluded and found[name] in {"survived", "not checked"}]
    return {
        "mutants": len(found),
        "killed": sum(s in {"killed", "timeout"} for s in found.values()),
        "survived": len(real) - sum(name in untested for name in real), "equivalent": len(equivalent),
        "no tests": sum(name in untested for name in real),
        "timeouts": sum(s == "timeout" for s in found.values()),
        "not reached": sum(s == "not checked" and name not in excluded for name, s in found.items()),
        "other": sorted({s for s in found.values()} - {"killed", "timeout", "survived", "no tests", "not checked"}),
        "fraction": len(real) / len(counted) if counted else float("nan"),
        "interval": wilson_interval(len(real), len(counted)),
        "real": real,
    }


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion seen k times in n draws (for a sampled run: the module's
    surviving fraction lies in it with 95 % confidence when the sample is drawn uniformly); (nan, nan) for n = 0.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


SAMPLE_FILE = "sample.txt"


def draw_sample(names, size: int, seed: int) -> list[str]:
    """``size`` mutant names drawn uniformly without replacement from ``names`` (reproducible from ``seed``:
    the same names for the same source, patterns and seed), in mutmut's order (by file, function, number).
    """
    pool = sorted(names, key=lambda n: (function_of(n), mutant_number(n)))
    if size >= len(pool):
        return pool
    chosen = set(random.Random(seed).sample(pool, size))
    return [n for n in pool if n in chosen]


def run_module(module: str, jobs: int, keep: Path | None, again: bool = False, summary: bool = False,
               only: list[str] | None = None, sample: int | None = None, seed: int = 0) -> dict:
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"mutation-{module.replace('/', '-')}-")) if keep is None else keep
    sources = MODULES[module][0]

    def checked():
        # The EQUIVALENT entries that still name the mutant they were written for (its recorded change): only
        # those are excluded; the stale ones are printed at the end and counted like any other mutant.
        changes = kept_changes(work, sources)
        check = check_equivalent(changes)
        return changes, check, check["valid"] | check["unchecked"]

    if summary:
        pass  # only read the kept run's results
    elif again:
        refresh_tests(work, module)
        # The survivors of the kept run, the mutants it did not reach (stopped early), its timeouts (on a
        # loaded machine possibly the load, not the mutant) and the mutants no test ran (new tests may reach
        # them) are tested with
        # the checkout's tests as they are now: adding tests cannot revive a killed mutant, so the result is
        # that of a full run with the current tests (the source must not have changed: prepare afresh then).
        # Mutants listed as equivalent are not tested again: they are left out of the fraction whatever their
        # status, and a surviving one costs a run of every test of its function.
        excluded = checked()[2]
        # A sampled run is taken up again within its sample: the mutants outside it stay not reached.
        drawn = set(read_sample(work) or ())
        pending = [name for name, status in statuses(work).items()
                   if status in {"survived", "not checked", "timeout", "no tests"} and selected(name, only)
                   and name not in excluded and (not drawn or name in drawn)]
        if pending:
            mutmut(work, "run", "--max-children", str(jobs), *pending, check=False)
    else:
        prepare(work, module)
        if sample is None:
            # mutmut takes shell patterns of mutant names (none: every mutant).
            mutmut(work, "run", "--max-children", str(jobs), *(only or ()), check=False)
        else:
            # A uniform sample of the mutants the patterns select, those listed as equivalent left out (they
            # are not counted in the fraction): the sample's surviving fraction estimates the fraction of a full
            # run, with the Wilson interval printed beside it.
            made = generated_changes(sources, work)
            valid = check_equivalent(made)["valid"]
            names = draw_sample([n for n in made if selected(n, only) and n not in valid], sample, seed)
            (work / SAMPLE_FILE).write_text(f"# seed {seed}, {len(names)} drawn\n" + "\n".join(names) + "\n",
                                            encoding="utf8")
            mutmut(work, "run", "--max-children", str(jobs), *names, check=False)
    changes, check, excluded = checked()
    found = statuses(work)
    drawn = read_sample(work)
    if drawn is not None:
        # Figures of a sampled run are those of its sample: the mutants outside it are not reached.
        found = {name: (status if name in set(drawn) else "not checked") for name, status in found.items()}
    summary = {"module": module, **figures(found, excluded), "seconds": time.perf_counter() - start,
               "sample": None if drawn is None else len(drawn)}
    for name in summary["real"]:
        print(mutmut(work, "show", name, check=False).rstrip(), "\n")
    print_equivalent_check(check, changes)
    files = sorted({source_file(name) for name in found})
    summary["files"] = {f: figures({n: s for n, s in found.items() if source_file(n) == f}, excluded)
                        for f in files} if len(files) > 1 else {}
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def read_sample(work: Path) -> list[str] | None:
    """The mutant names of a sampled run kept in ``work`` (None for a run that is not sampled)."""
    path = work / SAMPLE_FILE
    if not path.is_file():
        return None
    return [line for line in path.read_text(encoding="utf8").splitlines() if line and not line.startswith("#")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {list(MODULES)})")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested in parallel (default 1)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (one module only)")
    parser.add_argument("--again", action="store_true",
                        help="with --keep: test the kept run's survivors (and the mutants it did not reach) again, "
                             "with the checkout's current tests and unmutated package files; mutants listed in "
                             "EQUIVALENT are not tested again")
    parser.add_argument("--summary", action="store_true",
                        help="with --keep: print the kept run's survivors and figures, run nothing")
    parser.add_argument("--only", nargs="+", metavar="PATTERN",
                        help="test only the mutants whose names match one of these shell patterns, e.g. "
                             "'ntkcourse.stax.layers.*' (one file) or 'ntkcourse.stax.layers.x_Dense__*' (one "
                             "function); the others count as not reached")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="test a uniform random sample of N of the mutants (those --only selects, the ones listed "
                             "as equivalent left out) and print the surviving fraction with its 95 %% interval: an "
                             "estimate for a module too large to run whole; with --keep, --again stays in the sample")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --sample's draw (default 0)")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, and stop")
    parser.add_argument("--check-equivalent", action="store_true",
                        help="run nothing: make the mutants of the checkout's source of the modules named (default "
                             "all) and print the EQUIVALENT entries that no longer name the mutant they were written "
                             "for (with its new name when the change is found) and those without a recorded change")
    args = parser.parse_args(argv)
    if args.list:
        for name, (sources, tests) in MODULES.items():
            print(f"{name}: {' '.join(sources)}  <-  pytest {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; expected some of {list(MODULES)}")
    modules = args.modules or list(MODULES)
    if args.check_equivalent:
        for module in modules:
            changes = generated_changes(MODULES[module][0])
            check = check_equivalent(changes)
            print(f"{module}: {len(changes)} mutants; EQUIVALENT entries: {len(check['valid'])} valid, "
                  f"{len(check['stale'])} stale, {len(check['unchecked'])} without a recorded change")
            print_equivalent_check(check, changes)
        return 0
    if args.keep is not None and len(modules) != 1:
        parser.error("--keep works with one module")
    if (args.again or args.summary) and (args.keep is None or not (args.keep / "mutants").is_dir()):
        parser.error("--again and --summary need --keep naming the folder of an earlier run of the same module")
    if args.sample is not None and (args.sample < 1 or args.again or args.summary):
        parser.error("--sample N needs N >= 1 and starts a run (--again and --summary take the kept run's sample)")
    summaries = [run_module(m, args.jobs, args.keep, args.again, args.summary, args.only, args.sample, args.seed)
                 for m in modules]
    print("module: mutants, killed (of which timeouts), survived (non-equivalent), equivalent excluded, no tests "
          "(non-equivalent; counted as surviving), not reached; surviving fraction of those tested")
    def line(name, s, seconds=""):
        other = f"; other statuses: {s['other']}" if s["other"] else ""
        low, high = s["interval"]
        fraction = ("none tested" if s["fraction"] != s["fraction"] else
                    f"{100 * s['fraction']:.1f} % surviving (95 % interval {100 * low:.1f}-{100 * high:.1f} %)")
        return (f"{name}: {s['mutants']}, {s['killed']} ({s['timeouts']}), {s['survived']}, {s['equivalent']}, "
                f"{s['no tests']}, {s['not reached']}; {fraction}{seconds}{other}")

    for s in summaries:
        if s["sample"] is not None:
            print(f"{s['module']}: a uniform sample of {s['sample']} mutants (the rest count as not reached)")
        print(line(s["module"], s, f" ({s['seconds']:.0f} s)"))
        for f, per_file in s["files"].items():
            print("    " + line(f, per_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
