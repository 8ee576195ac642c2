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
import fnmatch
import os
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
             ["tests/kernels/test_stax_exact_kernels.py", "tests/kernels/test_stax_finite_layers.py",
              "tests/kernels/test_stax_spatial_formulas.py",
              "tests/contract/test_stax_oracle.py", "-m", "not slow", "-k", "not (cnn2_ or f44)"]),
    # The Monte Carlo tests of test_empirical.py (8-13 s each, and a module fixture of 400 draws) are left out: the
    # contract file checks the same means and standard errors on a linear model in well under a second. The test of
    # a warning's stacklevel is left out as for dynamics (mutmut's trampolines add frames).
    "empirical": (["ntkcourse/empirical.py"],
                  ["tests/empirical/test_empirical_contract.py", "tests/empirical/test_empirical.py",
                   "tests/empirical/test_empirical_defaults.py", "-m", "not slow",
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

# Mutants that change no behaviour a test could observe, by mutmut's name, with the reason.
# Names are mutmut 3.8.1's for the current source: review this list when a module changes.
EQUIVALENT: dict[str, str] = {
    "ntkcourse.grading.merge.x__normal__mutmut_2":
        "joins lines with 'XX\\nXX' instead of '\\n': _normal's results are only compared with each other, "
        "and joining newline-free lines with any separator holding a newline is one-to-one",
    "ntkcourse.grading.merge.x_read_submission__mutmut_20":
        "decodes with 'UTF-8' instead of 'utf-8': Python's codec names are case-insensitive (the same codec)",
    "ntkcourse.grading.merge.x_read_submission__mutmut_73":
        "decodes with 'UTF-8' instead of 'utf-8': Python's codec names are case-insensitive (the same codec)",
    "ntkcourse.grading.merge.x_read_submission__mutmut_82":
        "the wording of an unreachable refusal ('cells' is not a list after nbformat.convert): the JSON's "
        "'cells' was already checked to be a list, a v4 file without it fails in nbformat's reader, and "
        "conversion from v1-v3 builds a list",
    "ntkcourse.grading.merge.x_read_submission__mutmut_80":
        "the same unreachable refusal as mutant 82, raised with None as its message",
    "ntkcourse.grading.merge.x_read_submission__mutmut_81":
        "the same unreachable refusal as mutant 82, with 'XX' around its message",
    "ntkcourse.grading.checks.xǁ_Invalidǁ__init____mutmut_2":
        "the exception's args (its str) become None: every handler of _Invalid reads .reason and .detail, "
        "never str() or .args, and _Invalid never leaves the module",
    "ntkcourse.grading.checks.x_judge_entry__mutmut_7":
        "the default of reference.get('options') becomes None: every entry Checker reports (hence every "
        "reference entry) carries 'options', so the default is never used",
    "ntkcourse.grading.checks.x_judge_entry__mutmut_9":
        "the default of reference.get('options') becomes None (argument dropped): as mutant 7",
    "ntkcourse.grading.checks.x_judge_entry__mutmut_39":
        "replaces an unknown 'invalid' code by 'XXXX' instead of '': both are outside INVALID_REASONS, "
        "so _invalid_message gives the same generic text",
    "ntkcourse.grading.checks.x_judge_entry__mutmut_123":
        "reveal=None for False in the reference comparison: compare tests reveal for truth only (and reveal_shape "
        "is given, so reveal does not choose the shape message)",
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_64": "reveal=None for False: as judge_entry 123",
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_76":
        "the reference value read without dtype=float64: the grade session's reference values are numbers or "
        "arrays of them (decode_array's float64 in the grader), which compare promotes exactly",
    "ntkcourse.grading.checks.xǁCheckerǁclose_to_reference__mutmut_78":
        "the reference value read without the dtype argument: as mutant 76",
    "ntkcourse.grading.checks.x__as_float_array__mutmut_21":
        "astype(None) for astype(np.float64): numpy reads the dtype None as float64",
    "ntkcourse.grading.checks.x__as_float_array__mutmut_48": "astype(None) for astype(np.float64): as mutant 21",
    "ntkcourse.grading.checks.x__as_float_array__mutmut_40":
        "the kinds 'XXiufXX' for 'iuf': no numpy dtype has the kind 'X', so the same dtypes are accepted",
    "ntkcourse.grading.checks.x__matching_shape__mutmut_1":
        "the default of reveal: its only caller (compare) always passes reveal",
    "ntkcourse.grading.checks.x__tolerances__mutmut_7": "float('NAN') for float('nan'): the same NaN",
    "ntkcourse.grading.checks.x__tolerances__mutmut_14": "float('INF') for float('inf'): the same infinity",
    "ntkcourse.grading.checks.x_compare__mutmut_73":
        "unravel_index for a 0-d answer too: np.unravel_index(0, ()) is (), the value of the other branch",
    "ntkcourse.grading.checks.x_encode_array__mutmut_3":
        "the array read without dtype=float64: the data are float(x) of each entry anyway, the same floats for "
        "real inputs (the module passes _as_float_array's float64 arrays)",
    "ntkcourse.grading.checks.x_encode_array__mutmut_5": "as mutant 3, without the dtype argument",
    "ntkcourse.grading.checks.x_judge_symmetric__mutmut_17":
        "the scale 1.0 for 0.0 of an empty matrix: its asymmetry is 0, within any tolerance >= 0 (tolerances "
        "are refused unless >= 0), whatever the scale",
    "ntkcourse.grading.checks.x_judge_psd__mutmut_37":
        "the scale 2.0 for 1.0 without eigenvalues: the eigenvalue test is skipped when there are none",
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_2":
        "catch_warnings.__exit__ called with two arguments: it takes *exc_info and ignores them",
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_3": "as mutant 2",
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_4": "as mutant 2",
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_29":
        "line kept even when it is not an int: _statement_that_raised gives an int or None, and None is "
        "what the other branch gives",
    "ntkcourse.grading.checks.xǁcheckingǁ__exit____mutmut_49":
        "passed − deferred for passed + deferred: comparisons are deferred only in student mode, where a "
        "verdict with deferred ones is replaced by the wording that counts them apart; elsewhere deferred is 0",
    "ntkcourse.grading.checks.xǁcheckingǁ__init____mutmut_14":
        "_saved starts as '' for None: __enter__ sets it before anything reads it",
    "ntkcourse.inference.x_gp_posterior__mutmut_25":
        "n = k.shape[1] for k.shape[0]: as_kernel_matrix has already refused a non-square k_train_train",
    "ntkcourse.inference.x_gp_posterior__mutmut_39":
        "y_train read without dtype=float64: for real targets (the documented input) the only uses are shape and "
        "isfinite checks and cho_solve, which computes in the float64 of the factor (integer or float32 targets "
        "give the same mean); it differs only for complex targets",
    "ntkcourse.inference.x_gp_posterior__mutmut_41":
        "y_train read without the dtype argument: as mutant 39",
    "ntkcourse.inference.x_gp_posterior__mutmut_94":
        "cho_solve's check_finite None for False: a flag tested for truth, None is false",
    "ntkcourse.inference.x_gp_posterior__mutmut_97":
        "cho_solve with its default check_finite=True: the check only looks for inf/NaN, and y_train was already "
        "refused unless finite and the factor of a finite matrix is finite (a saving of time, not of behaviour)",
    "ntkcourse.inference.x_gp_posterior__mutmut_98":
        "cho_solve with check_finite=True: as mutant 97",
    "ntkcourse.inference.x_gp_posterior__mutmut_129":
        "solve_triangular's check_finite None for False: a flag tested for truth",
    "ntkcourse.inference.x_gp_posterior__mutmut_133":
        "solve_triangular with its default check_finite=True: k_test_train was already refused unless finite and "
        "the factor is finite, as mutant 97",
    "ntkcourse.inference.x_gp_posterior__mutmut_136":
        "solve_triangular with check_finite=True: as mutant 133",
    "ntkcourse.inference.x__test_test__mutmut_3":
        "the test-test kernel read without dtype=float64: a full matrix is converted to float64 by "
        "as_kernel_matrix, and a diagonal only meets float64 arrays (numpy promotes integer or float32 to float64 "
        "exactly), so real inputs give the same values",
    "ntkcourse.inference.x__test_test__mutmut_5":
        "the test-test kernel read without the dtype argument: as mutant 3",
    "ntkcourse.inference.x__test_train__mutmut_3":
        "the test-train kernel read without dtype=float64: it only enters products with float64 arrays and "
        "solve_triangular, which promote integer or float32 entries exactly to float64 (same values)",
    "ntkcourse.inference.x__test_train__mutmut_5":
        "the test-train kernel read without the dtype argument: as mutant 3",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_115":
        "einsum subscripts in upper case ('IJ,TJ,JK->TIK'): numpy's einsum takes upper-case letters as labels "
        "too, so the contraction is the same",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_185":
        "einsum subscripts in upper case, as mutant 115 (the test mean's contraction)",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_201":
        "einsum subscripts in upper case, as mutant 115 (the test variances' quadratic term)",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_212":
        "einsum subscripts in upper case, as mutant 115 (the diagonal of the cross term)",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_265":
        "passes None instead of False as finish's squeeze_output, which is only tested for truth: None is false",
    "ntkcourse.inference.x_infinite_ensemble_predictor__mutmut_279":
        "as mutant 265, for the test covariance",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_4":
        "n = k.shape[1] for k.shape[0]: every caller passes a kernel that as_kernel_matrix has checked square",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_15":
        "n = k.shape[1] for k.shape[0]: as_kernel_matrix has already refused a non-square k_train_train",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_12":
        "cho_factor's check_finite None for False: a flag tested for truth",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_15":
        "cho_factor with its default check_finite=True: k is finite (as_kernel_matrix) and so is the shift "
        "(validation), so the check passes; it costs time only",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_17":
        "cho_factor with check_finite=True: as mutant 15",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_32":
        "the 1-norm as the largest row sum instead of column sum: k + shift·I is symmetric, so they are equal",
    "ntkcourse.dynamics.x_checked_cholesky__mutmut_42":
        "dpocon's uplo 'l' for 'L': LAPACK reads the flag case-insensitively",
    # (x_checked_cholesky__mutmut_53 and _56, listed here before as unreachable, are not: dpocon's rcond underflows
    # to 0 for diag(1e300, 1e-300), and a float16 identity of 11 rows warns with rcond = 1; both are tested now.)
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_15":
        "safe_mu's placeholder 2.0 for 1.0 on null modes: every entry computed from it is replaced by 0 on the "
        "null space at the end",
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_25":
        "the placeholder step count 1.0 for 0.0 at infinite steps: those entries are replaced by 1/μ afterwards",
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_27":
        "errstate's invalid=None: no operation there can give an invalid value (log1p of −a with a < 1 or of 0, "
        "expm1 of finite numbers, (1 − a)^s with whole s, finite or infinite divided by μ > 0), so the flag "
        "is never consulted",
    "ntkcourse.dynamics.x__gd_coefficients__mutmut_29":
        "errstate without invalid=: as mutant 27",
    "ntkcourse.dynamics.x__momentum_coefficients__mutmut_42":
        "safe_mu's placeholder 2.0 for 1.0 on null modes: replaced by 0 on the null space at the end",
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_15":
        "the placeholder time 1.0 for 0.0 at t = inf: those entries are replaced by 1/μ afterwards",
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_28":
        "safe_x's placeholder 2.0 for 1.0 where x <= 0: the ratio there is the constant 1.0, not computed from it",
    "ntkcourse.dynamics.x_flow_coefficients__mutmut_53":
        "safe_mu's placeholder 2.0 for 1.0 on null modes: replaced by 0 on the null space at the end",
    "ntkcourse.dynamics.x_gradient_descent_predictor__mutmut_76":
        "the horizon computed as η·s/(1 − μ_m) at s = inf too: that is inf (η > 0, μ_m < 1), the same as math.inf",
    "ntkcourse.dynamics.x_gradient_descent_predictor__mutmut_101":
        "momentum 0 through the companion-matrix recursion (the test mom == 1.0 never holds): with μ_m = 0 it is "
        "gradient descent's own recursion c_{s+1} = (1 − ημ)c_s + η, equal to the closed form up to rounding "
        "(test_momentum_zero_is_plain_gradient_descent); it differs only in cost, and where the closed form's "
        "intermediate (1 − ημ)^s overflows although c_s is still finite (s = 1024, 1025 for ημ = 3)",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_10":
        "f_train_0 read without dtype=float64: real inputs (integer, float32, JAX arrays) only meet float64 arrays "
        "(y − f₀ and the added base), which numpy promotes exactly, so the outputs are the same",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_12": "f_train_0 read without the dtype argument: as mutant 10",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_29":
        "k_test_train read without dtype=float64: it only enters products with float64 arrays, which numpy "
        "promotes exactly (same values for real inputs)",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_31": "k_test_train read without the dtype argument: as mutant 29",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_57": "f_test_0 read without dtype=float64: as mutant 10",
    "ntkcourse.dynamics.x__initial_outputs__mutmut_59": "f_test_0 read without the dtype argument: as mutant 10",
    "ntkcourse.dynamics.x_prepare_problem__mutmut_43":
        "y_train read without dtype=float64: its only uses are its shape, isfinite, and differences and products "
        "with float64 arrays (y − f₀, Vᵀy in inference), which numpy promotes exactly for real targets",
    "ntkcourse.dynamics.x_prepare_problem__mutmut_45": "y_train read without the dtype argument: as mutant 43",
    "ntkcourse.dynamics.x_prepare_problem__mutmut_83":
        "reshape(n, -2) for reshape(n, -1): numpy takes any negative size as the one to infer",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_27":
        "y_train read without dtype=float64: cho_solve picks LAPACK's double routine from the float64 factor and "
        "converts real targets exactly",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_29": "y_train read without the dtype argument: as mutant 27",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_45":
        "k_test_train read without dtype=float64: it only multiplies the float64 solution (exact promotion)",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_47": "k_test_train read without the dtype argument: as mutant 45",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_77":
        "cho_solve's check_finite None for False: a flag tested for truth",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_80":
        "cho_solve with its default check_finite=True: y_train was refused unless finite and the factor of a finite "
        "matrix is finite, so the check passes (time only)",
    "ntkcourse.dynamics.x_kernel_regression__mutmut_81": "cho_solve with check_finite=True: as mutant 80",
    # dual (ntkcourse/dual.py)
    "ntkcourse.dual.x_arccos__mutmut_3":
        "arccos without the lower clip: for x < -1, |x| > 1/2 takes the half-angle branch, where "
        "_half_angle_arcsin sets z = (1 - |x|)/2 < 0 to 0, so the angle is 0 and the result pi, as for x = -1",
    "ntkcourse.dual.x_arccos__mutmut_4":
        "arccos without the upper clip: for x > 1, z = (1 - x)/2 < 0 is set to 0 by _half_angle_arcsin, angle"
        " 0, as for x = 1 (as mutant 3)",
    "ntkcourse.dual.x_arccos__mutmut_7":
        "arccos's clip without its upper bound (argument dropped): as mutant 4",
    "ntkcourse.dual.x_arccos__mutmut_9":
        "arccos's clip at -2 instead of -1: values in [-2, -1) give pi either way (as mutant 3)",
    "ntkcourse.dual.x_arccos__mutmut_10":
        "arccos's clip at 2 instead of 1: values in (1, 2] give 0 either way (as mutant 4)",
    "ntkcourse.dual.x_arccos__mutmut_20":
        "x <= 0 for x < 0 in arccos's reflection: at x = 0 the angle is pi/2 and pi - pi/2 is exactly pi/2 in"
        " floating point (a halving is exact), so both branches give the same value",
    "ntkcourse.dual.x_relu__mutmut_5":
        "ab_relu(0.0) instead of ab_relu(0.0, 1.0): 1.0 is ab_relu's default slope b",
    "ntkcourse.dual.x_leaky_relu__mutmut_5":
        "ab_relu(alpha) instead of ab_relu(alpha, 1.0): 1.0 is ab_relu's default slope b",
    "ntkcourse.dual.x_abs_activation__mutmut_5":
        "ab_relu(-1.0) instead of ab_relu(-1.0, 1.0): 1.0 is ab_relu's default slope b",
    "ntkcourse.dual.x_gelu__mutmut_19":
        "GELU's r = q12/sqrt((1+q1)(1+q2)) without the lower clip: |r| <= sqrt(q1 q2 / ((1+q1)(1+q2))) < 1 "
        "for any valid covariance, and dual.arcsin clips its argument to [-1, 1] again",
    "ntkcourse.dual.x_gelu__mutmut_20":
        "GELU's r without the upper clip: as mutant 19",
    "ntkcourse.dual.x_gelu__mutmut_23":
        "GELU's clip of r without its upper bound (argument dropped): as mutant 19",
    "ntkcourse.dual.x_gelu__mutmut_27":
        "GELU's clip of r at -2: as mutant 19 (|r| < 1)",
    "ntkcourse.dual.x_gelu__mutmut_28":
        "GELU's clip of r at 2: as mutant 19 (|r| < 1)",
    "ntkcourse.dual.x__relu_parts__mutmut_34":
        "rho <= 0 for rho < 0 when choosing pi - theta: at rho = 0 the angle is pi/2 and pi - pi/2 is exactly pi/2 "
        "in floating point, so both branches give the same value",
    "ntkcourse.dual.x_ab_relu__mutmut_33":
        "d2 * e_relu also when d2 == 1.0 (a shortcut that skips a multiplication): multiplying by 1.0 is exact",
    "ntkcourse.dual.x_ab_relu__mutmut_36":
        "the shortcut taken when d2 == 2.0 instead of 1.0: d2 = (b - a)**2 is never exactly 2.0 in floating point "
        "(no float t has t*t rounded to 2: the neighbours of sqrt(2) give 2 +- 4e-16), so d2 * e_relu is always "
        "used, which is exact for d2 == 1.0",
    "ntkcourse.dual.x_ab_relu__mutmut_38":
        "ab_ * cov + out also when ab_ == 0.0 (a shortcut): 0.0 * cov is a zero and adding it leaves out unchanged "
        "for finite covariances (expectations refuses others)",
    "ntkcourse.dual.x_ab_relu__mutmut_52":
        "d2 * e_step also when d2 == 1.0: as mutant 33",
    "ntkcourse.dual.x_ab_relu__mutmut_55":
        "the derivative kernel's shortcut taken when d2 == 2.0: as mutant 36 (never taken)",
    "ntkcourse.dual.x_ab_relu__mutmut_57":
        "ab_ + out also when ab_ == 0.0 (a shortcut): adding 0.0 leaves out unchanged",
    "ntkcourse.dual.x_ab_relu__mutmut_70":
        "the diagonal derivative kernel divided by ones_like(va) instead of multiplied: x / 1.0 and x * 1.0 are "
        "both exactly x, and the result has the same shape and dtype",
    "ntkcourse.dual.x_erf__mutmut_28":
        "erf's arcsin argument r = 2b^2 q12/sqrt((1+2b^2 q1)(1+2b^2 q2)) without the lower clip: |r| < 1 for any "
        "valid covariance (2b^2 sqrt(q1 q2) < sqrt((1+2b^2 q1)(1+2b^2 q2))), and dual.arcsin clips again",
    "ntkcourse.dual.x_erf__mutmut_29": "erf's r without the upper clip: as mutant 28",
    "ntkcourse.dual.x_erf__mutmut_32": "erf's clip of r without its upper bound (argument dropped): as mutant 28",
    "ntkcourse.dual.x_erf__mutmut_37": "erf's clip of r at -2: as mutant 28",
    "ntkcourse.dual.x_erf__mutmut_38": "erf's clip of r at 2: as mutant 28",
    "ntkcourse.dual.x_erf__mutmut_39":
        "the second value _ratio returns (ia * ib) becomes ia / ib: no caller uses it (nngp discards it)",
    "ntkcourse.dual.x_arcsin__mutmut_3":
        "arcsin without the lower clip: for x < -1, |x| > 1/2 takes the half-angle branch where z = (1 - |x|)/2 < 0 "
        "is set to 0, giving -pi/2 as for x = -1 (as arccos's mutant 3)",
    "ntkcourse.dual.x_arcsin__mutmut_4": "arcsin without the upper clip: as mutant 3 (pi/2 for x > 1)",
    "ntkcourse.dual.x_arcsin__mutmut_7": "arcsin's clip without its upper bound (argument dropped): as mutant 4",
    "ntkcourse.dual.x_arcsin__mutmut_9": "arcsin's clip at -2: as mutant 3",
    "ntkcourse.dual.x_arcsin__mutmut_10": "arcsin's clip at 2: as mutant 4",
    "ntkcourse.dual.x_arcsin__mutmut_32":
        "x <= 0 for x < 0 in arcsin's odd reflection: at x = 0 the value is 0 and becomes -0.0, equal to 0.0 as a "
        "number (-0.0 == 0.0); every use of it is arithmetic, where the sign of a zero term does not change a sum",
    "ntkcourse.dual.x__asin_poly__mutmut_34":
        "_ASIN_POLY[k - 7] for _ASIN_POLY[k + 7], k = 4..0: the tuple has 14 coefficients, so the negative index "
        "k - 7 is k + 7 (the same coefficients, 11 down to 7)",
    "ntkcourse.dual.x_quadrature__mutmut_86":
        "the inner nodes z_j replaced by -z_j in v = sv (rho z_i + orth z_j): probabilists' Gauss-Hermite nodes are "
        "symmetric about 0 with equal weights at +-z_j, so the inner sum is the same sum in another order "
        "(round-off only)",
    "ntkcourse.dual.x__inv_sqrt__mutmut_7":
        "1 instead of 0 where the variance is 0 (v >= 0): a zero variance comes with a zero covariance "
        "(cov^2 <= var1 var2), so the correlation cov * factor is 0 with either factor",
    "ntkcourse.dual.x__inv_sqrt__mutmut_19":
        "1 instead of 0 where v <= 0: as mutant 7 (v = 0 has cov = 0; v < 0 is no variance)",
    "ntkcourse.dual.x__inv_sqrt__mutmut_16":
        "rsqrt of 0 (inf) in the branch the outer where discards (inner v >= 0): the same values (gradients with "
        "respect to a zero variance are infinite anyway, through sqrt(var) at 0)",
    "ntkcourse.dual.x__inv_sqrt__mutmut_18":
        "rsqrt(2) for rsqrt(1) in the branch the outer where discards: the same values",
    "ntkcourse.dual.x__half_angle_arcsin__mutmut_3":
        "|x| = 1/2 in the half-angle branch (>= for >): there both branches give z = 1/4 and s = 1/2, the same angle "
        "(pi/3 for arccos, pi/6 for arcsin) and the same sine up to round-off",
    "ntkcourse.dual.x__safe_correlation__mutmut_21":
        "rho not clipped below -1: for a valid covariance rho >= -1 up to round-off, and an excess of round-off "
        "size moves v = sv rho z by ~1e-16 relative (orth = sqrt(max(1 - rho^2, 0)) is 0 either way)",
    "ntkcourse.dual.x__safe_correlation__mutmut_22": "rho not clipped above 1: as mutant 21",
    "ntkcourse.dual.x__safe_correlation__mutmut_25": "rho not clipped above 1 (argument dropped): as mutant 21",
    "ntkcourse.dual.x__safe_correlation__mutmut_27": "rho clipped at -2: as mutant 21",
    "ntkcourse.dual.x__safe_correlation__mutmut_28": "rho clipped at 2: as mutant 21",
    # empirical (ntkcourse/empirical.py)
    "ntkcourse.empirical.x_empirical_kernel_fn__mutmut_2":
        "the default implementation 'AUTO' for 'auto': _canonical_implementation lower-cases names first",
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_24":
        "the number of outputs read from f(params, x1[:2]) instead of x1[:1]: only shape[1:] is used, which does "
        "not depend on the batch size for a function of each input (and x1[:2] is x1[:1] for one input)",
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_34":
        "with x2=None every pair (i, m) is computed, not only m >= i: each pair's value is then computed twice, "
        "both times as the same sum of the same products (a*b and b*a are equal floats, summed in the same leaf "
        "order), and written to (i, m) and (m, i): the same symmetric result, twice the work",
    "ntkcourse.empirical.x_naive_pairwise_ntk__mutmut_36":
        "as mutant 34 (the start of the inner loop 0 instead of i)",
    "ntkcourse.empirical.xǁ_Runningǁstderr__mutmut_4":
        "np.full_like(mean, None) for np.full_like(mean, np.nan): the mean is a float64 array and numpy converts a "
        "None fill value to NaN for float arrays (the same array)",
    "ntkcourse.empirical.x_pure_kernel__mutmut_2":
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2",
    "ntkcourse.empirical.x_pure_kernel__mutmut_11":
        "vmap_axes None for 0: pure_kernel takes a stax triple, for which _KernelComputer sets vmap_axes = 0 anyway",
    "ntkcourse.empirical.x_pure_kernel__mutmut_35":
        "PRNGKey(1) for PRNGKey(0) in eval_shape: only the shapes and dtypes of init_fn's parameters are read",
    "ntkcourse.empirical.x_pure_kernel__mutmut_43":
        "the placeholder parameters (zeros, used only to check shapes and choose the implementation) in float64 "
        "instead of init_fn's dtype: the choice can differ only between 'jacobian' and 'jvp_vjp' for Jacobians near "
        "256 MiB, two implementations of the same kernel",
    "ntkcourse.empirical.x_pure_kernel__mutmut_45":
        "np.zeros without its dtype: as mutant 43",
    "ntkcourse.empirical.x_pure_kernel__mutmut_55":
        "core(None, ...) runs the NTK-vector products instead of the implementation chosen: the same kernel to "
        "round-off (the three implementations agree to 1e-15 relative in float64, test_the_three_implementations_"
        "agree); only the speed differs",
    # stax (ntkcourse/stax/*.py)
    "ntkcourse.stax.layers.x_masked_global_pool__mutmut_60":
        "diagonal_spatial=False not set on the pooled kernel: its input already has False (GlobalAvgPool refuses "
        "a diagonal input with _needs_all_positions; GlobalSumPool's input_diagonal, GlobalAvgPool's, makes the "
        "engine compute every pair of steps, and a masked kernel comes only from input arrays)",
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_95":
        "batch_axis % ndim <= channel_axis % ndim for <: they are never equal there, check_layout has refused "
        "any axis that is not where the kernel keeps the batch or the channels (two different axes)",
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_132":
        "diagonal_spatial=False not set after the mean: _needs_all_positions has just refused a diagonal input, "
        "so the kernel's flag is already False (as masked_global_pool's mutant 60)",
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_156":
        "reads_neighbours left at its default False: as mutant 147 (only the grouping into compiled programs)",
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_168":
        "reads_neighbours False for True: as mutant 147 (only the grouping into compiled programs)",
    "ntkcourse.stax.layers.x_AvgPool__mutmut_2":
        "the default padding 'valid' for 'VALID': validation.one_of(..., upper=True) upper-cases it first",
    "ntkcourse.stax.layers.x_GlobalAvgPool__mutmut_147":
        "reads_neighbours None for True: layer() stores bool(reads_neighbours), which only decides where the "
        "engine splits the kernel map into compiled programs (engine.kernel_fn._stage_groups): the same "
        "operations, the same "
        "values, another grouping",
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
       for i, new in ((79, "materialise=None"), (82, ""), (83, "materialise=s >= 0"), (84, "materialise=s > 1"))},
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
    "ntkcourse.grading.checks.x__statement_that_raised__mutmut_4":
        "the value for a traceback without frames: the traceback of an exception raised inside a with block "
        "always holds the frame of that block, so the branch is unreachable",
}
# _safe_correlation's second value, sqrt(var1) sqrt(var2), is discarded by its only caller (quadrature:
# ``rho, _ = _safe_correlation(...)``): mutants 6-19 change only that value.
EQUIVALENT.update({f"ntkcourse.dual.x__safe_correlation__mutmut_{i}":
                   "changes only the second value, which the only caller (quadrature) discards" for i in range(6, 20)})
# empirical: how many columns _jvp_vjp_ntk computes at a time (lax.map's batch_size) and how many Monte Carlo samples
# _KernelSampler.batches draws at a time change the memory used and the speed, never a value: lax.map gives the
# same result for any positive integer batch size (or none), and sample s always uses fold_in(key, s) whatever the
# batch it falls in (samples past the total are dropped). These mutants leave the batch size a positive integer.
EQUIVALENT.update({f"ntkcourse.empirical.x__jvp_vjp_ntk__mutmut_{i}":
                   "another positive integer (or no) batch size for the columns of lax.map: same values"
                   for i in (31, 32, 33, 77, 88, 92, 96, 99, 137, 148, 151, 155, 158)})
EQUIVALENT.update({f"ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_{i}":
                   "another positive integer number of samples per compiled batch: same draws (fold_in(key, s)), "
                   "same values" for i in (62, 67, 69, 70, 71, 72, 73, 78)})
EQUIVALENT.update({
    "ntkcourse.empirical.x__symmetrise__mutmut_53":
        "first < second for <=: where first == second every pair of axes has equal indices, so the mirrored entry "
        "is the entry itself (the same value either way)",
    "ntkcourse.empirical.x__symmetrise__mutmut_23":
        "the running index in the default float dtype instead of int32: sums of products of integer indices, exact in "
        "float32 below 2^24 per side (a kernel with 2^24 rows per side would hold 2^48 entries), same comparisons",
    "ntkcourse.empirical.x__symmetrise__mutmut_25": "as mutant 23 (dtype argument dropped)",
    "ntkcourse.empirical.xǁ_KernelComputerǁ__call____mutmut_19":
        "the static keyword arguments sorted as (name, value) pairs with key=None: names are unique, so the "
        "order is that of the names, as before (the compilation key)",
    "ntkcourse.empirical.xǁ_KernelComputerǁ__call____mutmut_21": "as mutant 19 (the key argument dropped)",
    "ntkcourse.empirical.x__walk__mutmut_78":
        "the probes subtracted instead of added: every back-propagated signal delta changes sign, and each "
        "layer's contribution is a product of two of them (delta . delta', and the bias sums likewise): exactly "
        "the same kernel",
    "ntkcourse.empirical.x__structured_ntk__mutmut_43":
        "has_bias or b_scale for and: a layer without a bias has b_std None, so b_scale = (b_std or 0)^2 = 0 and "
        "the bias term is skipped either way; with a bias and b_scale = 0 it adds 0 times a finite product",
    "ntkcourse.empirical.x__outputs__mutmut_11":
        "row 1 for row 0 of the output of a batch of one: JAX clamps an out-of-range static index inside traced "
        "code (gather's clip mode), so it reads row 0, the same value",
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_23":
        "None for [] when n_samples is neither an int nor a sequence: both are falsy, so the same refusal follows",
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_106":
        "batch_size not passed on (the default): the draws are fold_in(key, s) whatever the batch, so the same "
        "estimates (documented: the estimate does not depend on batch_size); only memory and speed differ",
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_112": "as mutant 106 (the argument dropped)",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_31":
        "the placeholder parameters (zeros, used only to check shapes and choose the implementation) in float64: "
        "the choice can differ only between implementations that give the same kernel to round-off "
        "(as x_pure_kernel__mutmut_43)",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_33": "as mutant 31 (dtype argument dropped)",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_44":
        "no parameter bytes counted: only the number of draws per compiled batch changes (see the batch-size "
        "entries): same values",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_49": "one byte per leaf: as mutant 44 (batch size only)",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_50": "8-byte items counted: as mutant 44 (batch size only)",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_51": "default-float items counted: as mutant 44",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_89":
        "x2's shape left out of the cache key of the compiled batch: the cached function is jitted, and jit traces "
        "again for a new shape of its argument; nothing in the cached closure depends on x2's shape",
    "ntkcourse.empirical.xǁ_KernelSamplerǁbatches__mutmut_94":
        "core(None, ...) runs the NTK-vector products: the same kernel to round-off (as x_pure_kernel__mutmut_55)",
    "ntkcourse.empirical.x__reduce_full__mutmut_1":
        "the default of first_is_x2: its only caller (_jvp_vjp_ntk) passes first_is_x2=True",
    "ntkcourse.empirical.x__reduce_full__mutmut_5":
        "the (x1, x2) layout branch never taken: the only caller passes first_is_x2=True",
    "ntkcourse.empirical.x__reduce_full__mutmut_9": "the (x1, x2) layout branch, never taken: as mutant 5",
    "ntkcourse.empirical.x__reduce_full__mutmut_10": "the (x1, x2) layout branch, never taken: as mutant 5",
    "ntkcourse.empirical.x__reduce_full__mutmut_11": "the (x1, x2) layout branch, never taken: as mutant 5",
    "ntkcourse.empirical.x_empirical_ntk_fn__mutmut_2":
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2",
    "ntkcourse.empirical.x_monte_carlo_kernel_fn__mutmut_2":
        "the default implementation 'AUTO' for 'auto': lower-cased first, as x_empirical_kernel_fn__mutmut_2",
    "ntkcourse.empirical.x_empirical_nngp_fn__mutmut_14":
        "the implementation 'JACOBIAN' for 'jacobian': lower-cased first (and the NNGP uses none of them)",
    "ntkcourse.empirical.xǁ_KernelComputerǁcore__mutmut_11":
        "the structured branch not recognised: the NTK-vector products compute the same kernel to round-off (the "
        "implementations agree to 1e-10 relative), and the NNGP is then taken of the same outputs; only the speed "
        "differs (as x_pure_kernel__mutmut_55)",
    "ntkcourse.empirical.xǁ_KernelComputerǁcore__mutmut_43":
        "the Jacobian branch not recognised: the NTK-vector products instead, as mutant 11",
})
# The einsum of a structured layer's contribution: optimize= only chooses the order of the pairwise contractions
# (jnp.einsum accepts None and unknown strings alike): the same sums up to round-off.
EQUIVALENT.update({f"ntkcourse.empirical.x__structured_ntk__mutmut_{i}":
                   "einsum's optimize option (the contraction order): same values up to round-off"
                   for i in (37, 40, 41, 42)})
# _assemble chooses the cheaper association of Θ_*X·V·C (Θ_*X(VC) or (Θ_*X V)C) by comparing the two costs,
# n²Tk + mnTk <= mn² + mnTk; mutants 63-76 change an operator of that comparison, so the other association may be
# computed: the same product up to round-off (~1e-16 relative) whenever the outputs are finite, at another cost.
# (After an unstable learning rate has overflowed the outputs, one order can give NaN where the other gives ±inf:
# neither value is meaningful, and the tests do not pin either.)
EQUIVALENT.update({f"ntkcourse.dynamics.x__assemble__mutmut_{i}":
                   "an operator of the cost comparison that chooses the order of the two products: same finite "
                   "values up to round-off, only the cost changes" for i in range(63, 77)})


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


def figures(found: dict[str, str]) -> dict:
    """Mutants made, killed, survived (non-equivalent), ... of one set of mutants and their statuses."""
    survived = [name for name, status in found.items() if status == "survived"]
    # Mutants not reached (a run stopped early, or left out by --only) are counted apart, not in the fraction.
    counted = [name for name in found if name not in EQUIVALENT and found[name] not in {"skipped", "not checked"}]
    # A mutant that no selected test runs ("no tests") is a change the tests cannot catch: it counts as
    # surviving, in the fraction and in the list, unless it is listed as equivalent.
    untested = [name for name, status in found.items() if status == "no tests"]
    real = sorted(name for name in survived + untested if name not in EQUIVALENT)
    # A listed-equivalent mutant that --again did not test (it skips them) counts as equivalent, not "not reached".
    equivalent = [name for name in found if name in EQUIVALENT and found[name] in {"survived", "not checked"}]
    return {
        "mutants": len(found),
        "killed": sum(s in {"killed", "timeout"} for s in found.values()),
        "survived": len(real) - sum(name in untested for name in real), "equivalent": len(equivalent),
        "no tests": sum(name in untested for name in real),
        "timeouts": sum(s == "timeout" for s in found.values()),
        "not reached": sum(s == "not checked" and name not in EQUIVALENT for name, s in found.items()),
        "other": sorted({s for s in found.values()} - {"killed", "timeout", "survived", "no tests", "not checked"}),
        "fraction": len(real) / len(counted) if counted else float("nan"),
        "real": real,
    }


def run_module(module: str, jobs: int, keep: Path | None, again: bool = False, summary: bool = False,
               only: list[str] | None = None) -> dict:
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"mutation-{module.replace('/', '-')}-")) if keep is None else keep
    if summary:
        pass  # only read the kept run's results
    elif again:
        # The survivors of the kept run, the mutants it did not reach (stopped early), its timeouts (on a
        # loaded machine possibly the load, not the mutant) and the mutants no test ran (new tests may reach
        # them) are tested with
        # the checkout's tests as they are now: adding tests cannot revive a killed mutant, so the result is
        # that of a full run with the current tests (the source must not have changed: prepare afresh then).
        refresh_tests(work, module)
        # Mutants listed as equivalent are not tested again: they are left out of the fraction whatever their
        # status, and a surviving one costs a run of every test of its function.
        pending = [name for name, status in statuses(work).items()
                   if status in {"survived", "not checked", "timeout", "no tests"} and selected(name, only)
                   and name not in EQUIVALENT]
        if pending:
            mutmut(work, "run", "--max-children", str(jobs), *pending, check=False)
    else:
        prepare(work, module)
        # mutmut takes shell patterns of mutant names (none: every mutant).
        mutmut(work, "run", "--max-children", str(jobs), *(only or ()), check=False)
    found = statuses(work)
    summary = {"module": module, **figures(found), "seconds": time.perf_counter() - start}
    for name in summary["real"]:
        print(mutmut(work, "show", name, check=False).rstrip(), "\n")
    files = sorted({source_file(name) for name in found})
    summary["files"] = {f: figures({n: s for n, s in found.items() if source_file(n) == f}) for f in files
                        } if len(files) > 1 else {}
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return summary


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
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (sources, tests) in MODULES.items():
            print(f"{name}: {' '.join(sources)}  <-  pytest {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; expected some of {list(MODULES)}")
    modules = args.modules or list(MODULES)
    if args.keep is not None and len(modules) != 1:
        parser.error("--keep works with one module")
    if (args.again or args.summary) and (args.keep is None or not (args.keep / "mutants").is_dir()):
        parser.error("--again and --summary need --keep naming the folder of an earlier run of the same module")
    summaries = [run_module(m, args.jobs, args.keep, args.again, args.summary, args.only) for m in modules]
    print("module: mutants, killed (of which timeouts), survived (non-equivalent), equivalent excluded, no tests "
          "(non-equivalent; counted as surviving), not reached; surviving fraction of those tested")
    def line(name, s, seconds=""):
        other = f"; other statuses: {s['other']}" if s["other"] else ""
        fraction = "none tested" if s["fraction"] != s["fraction"] else f"{100 * s['fraction']:.1f} % surviving"
        return (f"{name}: {s['mutants']}, {s['killed']} ({s['timeouts']}), {s['survived']}, {s['equivalent']}, "
                f"{s['no tests']}, {s['not reached']}; {fraction}{seconds}{other}")

    for s in summaries:
        print(line(s["module"], s, f" ({s['seconds']:.0f} s)"))
        for f, per_file in s["files"].items():
            print("    " + line(f, per_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
