"""Specification of ntkcourse.dynamics' refusals and warnings: each names the function, the argument, the
value received and what was expected, and points at the caller's line.

Written from the survivors of a mutation run (tools/mutation.py dynamics). Kernels are small numpy
matrices (no JAX); expected numbers are worked out by hand in each docstring.
"""
import math
import warnings

import numpy as np
import pytest

from ntkcourse.dynamics import (
    checked_cholesky,
    gradient_descent_prediction,
    gradient_descent_predictor,
    gradient_flow_prediction,
    gradient_flow_predictor,
    kernel_regression,
)
from ntkcourse.spectral import IllConditionedKernelWarning, UnstableLearningRateWarning

K = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])
Y = np.array([1.0, -1.0, 0.5])
KT = np.array([[0.3, 0.1, 0.2], [0.0, 0.4, 0.1]])


def caught_warning(category, call):
    """The single warning of ``category`` that ``call()`` emits (other categories are ignored)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w for w in caught if issubclass(w.category, category)]
    assert len(found) == 1, [str(w.message) for w in caught]
    return found[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(f_test_0=np.zeros(2)), r"^gradient_flow_predictor: `f_test_0` was given without k_test_train"),
        (dict(k_test_train=KT, f_train_0=np.zeros(3), f_test_0=np.zeros(3)),
         r"^gradient_flow_predictor: `f_test_0` must have shape \(2,\), got shape \(3,\)\.$"),
        (dict(f_train_0=np.array([0.0, np.nan, 0.0])),
         r"^gradient_flow_predictor: `f_train_0` must hold finite initial outputs, got NaN or inf\.$"),
        (dict(k_test_train=KT, f_train_0=np.zeros(3), f_test_0=np.array([np.inf, 0.0])),
         r"^gradient_flow_predictor: `f_test_0` must hold finite initial outputs, got NaN or inf\.$"),
        (dict(k_test_train=np.array([[0.0, np.nan, 0.0]])),
         r"^gradient_flow_predictor: `k_test_train` must be a finite kernel matrix, got NaN or inf\.$"),
        (dict(k_test_train=np.ones(3)),
         r"^gradient_flow_predictor: `k_test_train` must have shape \(m, n\) with n = 3 training points, got shape "
         r"\(3,\)\.$"),
    ],
)
def test_flow_initial_outputs_and_test_kernel_are_checked(kwargs, match):
    """Each inconsistent or non-finite initial output / test kernel is refused with its own message."""
    predict = gradient_flow_predictor(K, Y)
    with pytest.raises(ValueError, match=match):
        predict(1.0, **kwargs)


def test_flow_refuses_non_finite_targets():
    """A NaN target is refused naming y_train (not propagated into every output)."""
    with pytest.raises(ValueError,
                       match=r"^gradient_flow_predictor: `y_train` must hold finite targets, got NaN or inf"):
        gradient_flow_predictor(K, np.array([1.0, np.nan, 0.0]))


def test_flow_refuses_the_zero_kernel_without_ridge():
    """Θ = 0 and ρ = 0: nothing can be learned, an error naming k_train_train; with a ridge it is allowed."""
    with pytest.raises(ValueError, match=r"^gradient_flow_predictor: `k_train_train` must be a non-zero kernel "
                                         r"\(nothing can be learned otherwise\), got the zero matrix\.$"):
        gradient_flow_predictor(np.zeros((2, 2)), np.ones(2))
    out = gradient_flow_prediction(np.zeros((2, 2)), np.ones(2), 5.0, ridge=0.5)
    np.testing.assert_array_equal(out.train, 0.0)   # no mode is learnable: outputs stay at f₀ = 0


def test_descent_errors_name_gradient_descent_predictor():
    """Gradient descent's refusals name gradient_descent_predictor, at construction and at prediction."""
    with pytest.raises(ValueError, match=r"^gradient_descent_predictor: `learning_rate` must be a finite number > 0"):
        gradient_descent_predictor(K, Y, -0.1)
    predict = gradient_descent_predictor(K, Y, 0.1)
    with pytest.raises(ValueError, match=r"^gradient_descent_predictor: `f_train_0` must have the shape of y_train"):
        predict(3, f_train_0=np.zeros(2))
    with pytest.raises(ValueError, match=r"^gradient_descent_predictor: `steps` must be non-negative"):
        predict(-1)


def test_descent_default_has_no_ridge_and_no_momentum():
    """Without ridge and momentum, 3 steps of η = 0.1 give f₃ = (I − (I − ηΘ)³) y (matrix powers; 1e-13)."""
    expected = (np.eye(3) - np.linalg.matrix_power(np.eye(3) - 0.1 * K, 3)) @ Y
    np.testing.assert_allclose(gradient_descent_prediction(K, Y, 3, learning_rate=0.1).train, expected, atol=1e-13)


def test_descent_one_shot_passes_ridge_momentum_and_initial_outputs_on():
    """The one-shot form with ρ, momentum, f₀ equals the predictor called with the same (1e-14)."""
    f0, f0t = np.array([0.1, 0.2, -0.3]), np.array([0.5, -0.5])
    one = gradient_descent_prediction(K, Y, 4, KT, learning_rate=0.2, ridge=0.3, momentum=0.5, f_train_0=f0,
                                      f_test_0=f0t)
    ref = gradient_descent_predictor(K, Y, 0.2, ridge=0.3, momentum=0.5)(4, KT, f0, f0t)
    np.testing.assert_allclose(one.train, ref.train, atol=1e-14)
    np.testing.assert_allclose(one.test, ref.test, atol=1e-14)


def test_unstable_learning_rate_warning_states_the_bound():
    """λ_max(diag(4, 1)) = 4, momentum 0.5, ridge 1: bound 2(1 + 0.5)/(4 + 1) = 0.6; η = 0.7 warns with both numbers."""
    w = caught_warning(UnstableLearningRateWarning,
                       lambda: gradient_descent_predictor(np.diag([4.0, 1.0]), np.ones(2), 0.7, ridge=1.0,
                                                          momentum=0.5))
    assert "`learning_rate` = 0.7 is at or above the stability bound 2(1+momentum)/(λ_max+ridge) = 0.6:" in str(
        w.message)


def test_ill_conditioning_warning_states_its_numbers():
    """λ = (1, 10⁻¹⁵), ηt = 10¹⁶: κ_eff = 1·min(10¹⁶, 10¹⁵) = 10¹⁵, n·ε = 2·2.2e-16 = 4.4e-16, amplified 0.44."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2))(1e16, np.ones((1, 2))))
    text = str(w.message)
    assert "effective condition number 1e+15" in text and "(n·ε = 4.4e-16)" in text and "about 0.44 " in text


def test_well_conditioned_long_training_does_not_warn():
    """κ_eff = λ_max·min(ηt, 1/λ_min) = 2.3·(1/0.8) ≈ 3 at t = 10⁶: far below the warning level, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_flow_prediction(K, Y, 1e6, KT)


def test_singular_limit_warning_states_the_rank():
    """A rank-1 2x2 kernel at t = ∞ without ridge: the warning gives rank 1 < n = 2."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.ones((2, 2)), np.ones(2))(np.inf))
    assert "numerical rank 1 < n = 2) and ridge = 0: in the t → ∞ limit" in str(w.message)


def test_singular_descent_limit_names_steps():
    """Gradient descent's infinite-step limit of a singular kernel words the limit as 'steps → ∞'."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_descent_prediction(np.ones((2, 2)), np.ones(2), np.inf, learning_rate=0.1))
    assert "in the steps → ∞ limit" in str(w.message)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_train=np.ones(2)), r"^kernel_regression: `y_train` must have shape \(n,\) or \(n, k\) with n = 3, got "
                                   r"shape \(2,\)\.$"),
        (dict(y_train=np.array([1.0, np.inf, 0.0])),
         r"^kernel_regression: `y_train` must hold finite targets, got NaN or inf\.$"),
        (dict(k_test_train=np.ones((2, 2))),
         r"^kernel_regression: `k_test_train` must have shape \(m, n\) with n = 3, got shape \(2, 2\)\.$"),
        (dict(k_test_train=np.full((1, 3), np.nan)),
         r"^kernel_regression: `k_test_train` must be a finite kernel matrix, got NaN or inf\.$"),
        (dict(ridge=-0.5), r"^kernel_regression: `ridge` must be a finite number >= 0, got -0.5\.$"),
    ],
)
def test_kernel_regression_refusals(kwargs, match):
    """kernel_regression refuses bad targets, test kernels and ridges, naming each."""
    args = dict(y_train=Y, k_test_train=None, ridge=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        kernel_regression(K, args["y_train"], args["k_test_train"], ridge=args["ridge"])


def test_kernel_regression_defaults_to_the_training_fit_without_ridge():
    """Without k_test_train and ridge the fit on the training points is K K⁻¹ y = y (1e-12)."""
    np.testing.assert_allclose(kernel_regression(K, Y), Y, atol=1e-12)


def test_failed_cholesky_names_the_function_the_shift_and_a_remedy():
    """K = diag(1, −1) is not PD: the error names the caller, the kernel, the shift's value and suggests
    1e-6·trace/n = 0 (trace 0) for the shift."""
    with pytest.raises(ValueError, match=r"^kernel_regression: `k_train_train` \+ ridge·I \(ridge = 0\) is not "
                                         r"positive definite to working precision \(Cholesky failed: .*\)\. "
                                         r"The kernel is singular or not PSD; add a ridge, "
                                         r"e\.g\. ridge=0 \(1e-6 · trace/n\)\.$"):
        checked_cholesky(np.diag([1.0, -1.0]), 0.0, 2.2e-16, "k_train_train", "ridge", "kernel_regression")


def test_ill_conditioned_cholesky_warns_with_the_condition_number():
    """K = diag(1, 1e-15): κ = 1e15, n·ε·κ = 2·2.2e-16·1e15 ≈ 0.44 > 10⁻²: a warning naming the function, the
    shift and κ."""
    def call():
        kernel_regression(np.diag([1.0, 1e-15]), np.ones(2))
    w = caught_warning(IllConditionedKernelWarning, call)
    assert str(w.message).startswith("kernel_regression: `k_train_train` + ridge·I is ill-conditioned "
                                     "(condition number ≈ 1e+15)")
    assert math.isfinite(kernel_regression(np.diag([1.0, 1e-15]), np.ones(2), ridge=1e-3)[1])


def test_full_rank_kernel_limit_does_not_warn():
    """t = ∞ without ridge on a full-rank, well-conditioned kernel is plain kernel regression: no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_flow_predictor(K, Y)(np.inf)


def test_ill_conditioning_is_not_warned_for_train_outputs_only():
    """The amplification warning concerns test predictions: the same ill-conditioned case without k_test_train is
    silent (train outputs stay bounded by the data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2))(1e16)


def test_ill_conditioning_counts_the_ridge_in_the_effective_condition_number():
    """λ = (1, 1e-15), ρ = 1e-14, ηt = 1e16: κ_eff = (1 + ρ)·min(1e16, 1/(1e-15 + ρ)) = 1/1.1e-14 = 9.09e13, so
    n·ε·κ ≈ 0.04 > 10⁻²: the warning gives 9.09e+13 (without the ridge in 1/μ it would be 1e+15)."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2), ridge=1e-14)(
                           1e16, np.ones((1, 2))))
    assert "effective condition number 9.09e+13" in str(w.message)


def test_momentum_horizon_in_the_ill_conditioning_warning():
    """Heavy ball accumulates c ≈ ηs/(1 − μ_m) on a tiny mode: λ = (1, 1e-15), η = 0.5, μ_m = 0.9, s = 10¹³ gives
    κ_eff = 0.5·10¹³/0.1 = 5e13 (n·ε·κ ≈ 0.022 > 10⁻²), stated in the warning."""
    predict = gradient_descent_predictor(np.diag([1.0, 1e-15]), np.ones(2), 0.5, momentum=0.9)
    w = caught_warning(IllConditionedKernelWarning, lambda: predict(1e13, np.ones((1, 2))))
    assert "effective condition number 5e+13" in str(w.message)
    assert "at the requested number of steps" in str(w.message)


def test_learning_rate_exactly_at_the_bound_warns():
    """η = 2(1 + 0.5)/(4 + 1) = 0.6 exactly (both sides round to the same double): 'at or above' the bound warns,
    and the limit s → ∞ is refused naming the learning rate and the bound."""
    with pytest.warns(UnstableLearningRateWarning, match="at or above the stability bound"):
        predict = gradient_descent_predictor(np.diag([4.0, 1.0]), np.ones(2), 0.6, ridge=1.0, momentum=0.5)
    with pytest.raises(ValueError, match=r"^gradient_descent_predictor: `steps` = inf asks for the limit of gradient "
                                         r"descent, which does not exist for learning_rate = 0\.6 ≥ the stability "
                                         r"bound 0\.6; expected a learning rate below the bound\.$"):
        predict(np.inf)


def test_learning_rate_one_over_lambda_fits_that_mode_in_one_step():
    """Θ = diag(2, 1), η = 1/2: ηλ = 1 for the first mode, whose output after 0, 1, 2 steps is 0, y₁, y₁ exactly; the
    second mode (ηλ = 1/2) gives y₂(1 − 2^{−s}) = 0, 0.5, 0.75 (exact in binary)."""
    out = gradient_descent_prediction(np.diag([2.0, 1.0]), np.array([3.0, 1.0]), np.array([0, 1, 2]),
                                      learning_rate=0.5)
    np.testing.assert_array_equal(out.train, [[0.0, 0.0], [3.0, 0.5], [3.0, 0.75]])


def test_warnings_point_at_the_callers_line():
    """Each warning is attributed (stacklevel) to the line that called the public function, not to the package:
    the unstable learning rate, amplified round-off, a singular limit, an ill-conditioned Cholesky factor.

    (Left out of the mutation run's selection: mutmut's trampolines add a frame between the package's
    functions, which moves every stacklevel by one.)
    """
    calls = [
        (UnstableLearningRateWarning, lambda: gradient_descent_predictor(np.diag([4.0, 1.0]), np.ones(2), 0.7)),
        (IllConditionedKernelWarning,
         lambda: gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2))(1e16, np.ones((1, 2)))),
        (IllConditionedKernelWarning, lambda: gradient_flow_predictor(np.ones((2, 2)), np.ones(2))(np.inf)),
        (IllConditionedKernelWarning, lambda: kernel_regression(np.diag([1.0, 1e-15]), np.ones(2))),
    ]
    for category, call in calls:
        w = caught_warning(category, call)
        # The lambda's own line, not the line of caught_warning that calls it (one frame further out).
        assert (w.filename, w.lineno) == (__file__, call.__code__.co_firstlineno)


@pytest.mark.parametrize("kernel", [np.eye(3), K], ids=["identity", "well-conditioned"])
def test_well_conditioned_cholesky_does_not_warn(kernel):
    """κ(I) = 1 and κ(K) ≈ 3: n·ε·κ is far below 10⁻², so kernel_regression gives no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel_regression(kernel, Y)


def test_failed_cholesky_suggests_a_shift_of_a_millionth_of_the_mean_diagonal():
    """K = diag(2, 2, −1): trace/n = 1, so the suggested ridge is 1e-6·3/3 = 1e-06."""
    with pytest.raises(ValueError, match=r"add a ridge, e\.g\. ridge=1e-06 \(1e-6 · trace/n\)\.$"):
        kernel_regression(np.diag([2.0, 2.0, -1.0]), Y)


def test_cholesky_condition_number_uses_the_largest_column_sum():
    """K = [[1, 1 − 1e-14], [1 − 1e-14, 1]]: the 1-norm condition number (LAPACK dpocon with ‖K‖₁, the largest
    column sum) is 2e14, the value numpy's cond(K, 1) gives; the sum of all entries would double it."""
    kernel = np.array([[1.0, 1 - 1e-14], [1 - 1e-14, 1.0]])
    w = caught_warning(IllConditionedKernelWarning, lambda: kernel_regression(kernel, np.ones(2)))
    assert f"(condition number ≈ {np.linalg.cond(kernel, 1):.3g})" in str(w.message)
    assert "(condition number ≈ 2e+14)" in str(w.message)
    # n·ε = 2 · 2.2e-16 and the amplified error n·ε·κ = 4.4e-16 · 2e14 ≈ 0.089
    assert "(n·ε = 4.4e-16) can be amplified to a relative error of about 0.089." in str(w.message)


def test_kernel_regression_refuses_an_asymmetric_kernel_naming_it():
    """An asymmetric train kernel is refused by kernel_regression, naming k_train_train."""
    with pytest.raises(ValueError, match=r"^kernel_regression: `k_train_train` must be a symmetric kernel matrix"):
        kernel_regression(np.triu(np.ones((3, 3))), Y)


def test_f_train_0_without_f_test_0_is_refused_in_full():
    """The refusal of f_train_0 without f_test_0 says why the test outputs are needed and both remedies."""
    with pytest.raises(ValueError) as err:
        gradient_flow_predictor(K, Y)(1.0, KT, np.zeros(3))
    assert str(err.value) == (
        "gradient_flow_predictor: `f_train_0` was given without f_test_0: the initial outputs on the test points are "
        "needed too (they come from the same network). Pass f_test_0, or neither for zero initial outputs.")


def test_momentum_refusal_names_gradient_descent_predictor():
    """momentum = 1.5 is refused naming the function, the argument, the interval and the value."""
    with pytest.raises(ValueError, match=r"^gradient_descent_predictor: `momentum` must be a number in \[0, 1\), "
                                         r"got 1\.5\.$"):
        gradient_descent_predictor(K, Y, 0.1, momentum=1.5)


def test_negative_time_is_refused_naming_gradient_flow_predictor():
    """t = −1 is refused by the predictor, naming it and the argument t."""
    with pytest.raises(ValueError, match=r"^gradient_flow_predictor: `t` must be non-negative \(training runs forward "
                                         r"from t = 0\), got -1\.$"):
        gradient_flow_predictor(K, Y)(-1.0)


def test_unstable_learning_rate_warning_in_full():
    """The case of test_unstable_learning_rate_warning_states_the_bound (bound 0.6, η = 0.7): the whole text, with
    what happens and the remedy."""
    w = caught_warning(UnstableLearningRateWarning,
                       lambda: gradient_descent_predictor(np.diag([4.0, 1.0]), np.ones(2), 0.7, ridge=1.0,
                                                          momentum=0.5))
    assert str(w.message) == (
        "gradient_descent_predictor: `learning_rate` = 0.7 is at or above the stability bound "
        "2(1+momentum)/(λ_max+ridge) = 0.6: the top mode does not converge and the predicted outputs oscillate or "
        "grow geometrically. Use a learning rate below the bound (ntkcourse.spectral.max_learning_rate).")


def test_ill_conditioning_warning_in_full_at_a_finite_time():
    """The case of test_ill_conditioning_warning_states_its_numbers (κ_eff = 10¹⁵, n·ε = 4.4e-16, 0.44) at a finite
    time: the whole text, which names 'the requested time' and both remedies."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2))(1e16, np.ones((1, 2))))
    assert str(w.message) == (
        "gradient_flow_predictor: `k_train_train` is ill-conditioned at the requested time: effective condition "
        "number 1e+15, so round-off in the kernel (n·ε = 4.4e-16) can reach a relative error of about 0.44 in the "
        "predictions. Add a ridge (e.g. ridge=1e-6 * trace/n) or compute the kernel in float64.")


def test_singular_limit_warning_in_full():
    """The rank-1 kernel at t = ∞ without ridge: the whole text, what goes wrong in the limit and the remedy."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.ones((2, 2)), np.ones(2))(np.inf))
    assert str(w.message) == (
        "gradient_flow_predictor: `k_train_train` is singular (numerical rank 1 < n = 2) and ridge = 0: in the "
        "t → ∞ limit the train outputs do not reach y_train in the null space, and the test outputs are the "
        "minimum-norm (pseudo-inverse) solution. Add a ridge (e.g. ridge=1e-6 * trace/n) for kernel ridge regression.")


def test_not_psd_warning_names_the_predictor_and_the_kernel():
    """An eigenvalue of −0.1 with λ_max = 1 (n·ε·max|λ| = 4.44e-16) is reported naming gradient_flow_predictor and
    k_train_train, with the eigenvalue and the tolerance."""
    from ntkcourse.spectral import KernelNotPSDWarning
    w = caught_warning(KernelNotPSDWarning,
                       lambda: gradient_flow_prediction(np.diag([1.0, -0.1]), np.ones(2), 1.0))
    assert str(w.message).startswith(
        "gradient_flow_predictor: `k_train_train` is not positive semi-definite: its smallest eigenvalue is -0.1, "
        "below the round-off tolerance −n·ε·max|λ| = -4.44e-16.")


def test_checked_cholesky_names_itself_by_default():
    """Called without `where`, checked_cholesky's refusal names checked_cholesky."""
    with pytest.raises(ValueError, match=r"^checked_cholesky: `k` \+ shift·I \(shift = 0\) is not positive definite"):
        checked_cholesky(np.diag([1.0, -1.0]), 0.0, 2.2e-16, "k", "shift")


def test_cholesky_condition_number_is_that_of_the_kernel_not_of_a_wrong_triangle():
    """K = [[4, 2], [2, 1 + 4e-14]]: κ₁(K) = 2.25e14 (numpy's cond(K, 1)), so n·ε·κ = 4.4e-16·2.25e14 ≈ 0.1. The
    estimate must read the Cholesky factor's own triangle: with a₁₁ = 4 ≠ 1 the other triangle (K's entries) gives
    3e14."""
    kernel = np.array([[4.0, 2.0], [2.0, 1 + 4e-14]])
    w = caught_warning(IllConditionedKernelWarning, lambda: kernel_regression(kernel, np.ones(2)))
    assert f"(condition number ≈ {np.linalg.cond(kernel, 1):.3g})" in str(w.message)
    assert "(condition number ≈ 2.25e+14); round-off in the kernel (n·ε = 4.4e-16) can be amplified to a relative " \
           "error of about 0.1." in str(w.message)


def test_cholesky_warning_level_is_strict():
    """I₁ has rcond = 1 exactly, so n·ε/rcond = ε: ε = 0.01 is exactly the level 10⁻² and stays silent; the next
    double above 0.01 warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked_cholesky(np.eye(1), 0.0, 0.01, "k", "shift")
    caught_warning(IllConditionedKernelWarning,
                   lambda: checked_cholesky(np.eye(1), 0.0, np.nextafter(0.01, 1.0), "k", "shift"))


def test_amplification_warning_level_is_strict():
    """λ = (1, 10⁻¹⁴), η = 1: κ_eff = min(t, 10¹⁴) = t and n·ε = 2·2⁻⁵² = 2⁻⁵¹ (a power of two, so products are
    exact): t = 0.01·2⁵¹ gives n·ε·κ_eff = 0.01 exactly, which is silent; the next double above warns."""
    t = 0.01 * 2.0 ** 51
    predict = gradient_flow_predictor(np.diag([1.0, 1e-14]), np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(t, np.ones((1, 2)))
    caught_warning(IllConditionedKernelWarning, lambda: predict(np.nextafter(t, np.inf), np.ones((1, 2))))


def test_effective_condition_number_adds_the_ridge_to_the_top_eigenvalue():
    """A float16 kernel diag(1, 1/16) (ε = 2⁻¹⁰, n·ε = 2⁻⁹ ≈ 0.002) with ρ = 1/8 at t = 10⁶:
    κ_eff = (λ_max + ρ)/(λ_min + ρ) = 1.125/0.1875 = 6 and n·ε·κ = 0.0117 > 10⁻²: the warning gives 6 (with
    λ_max − ρ it would be 4.67, below the level)."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: gradient_flow_predictor(np.diag([1.0, 0.0625]).astype(np.float16), np.ones(2),
                                                       ridge=0.125)(1e6, np.ones((1, 2))))
    assert "effective condition number 6, so round-off in the kernel (n·ε = 0.002) can reach a relative error of " \
           "about 0.012 in the predictions." in str(w.message)


def test_null_modes_do_not_enter_the_effective_condition_number():
    """Θ = [[1, 1], [1, 1]] (λ = 2, 0) at t = 10¹⁶ with a test kernel: the null mode is left out of the predictions
    and of κ_eff = 2·min(10¹⁶, 1/2) = 1, so nothing is amplified: no warning (1/0 is not computed either)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_flow_predictor(np.ones((2, 2)), np.ones(2))(1e16, np.ones((1, 2)))


def test_cholesky_condition_number_is_infinite_when_lapacks_estimate_underflows():
    """K = diag(10³⁰⁰, 10⁻³⁰⁰) factors (pivots 10¹⁵⁰ and 10⁻¹⁵⁰), but ‖K‖₁‖K⁻¹‖₁ = 10⁶⁰⁰ overflows, so dpocon's
    rcond is 0: the warning says κ ≈ inf (no division by zero) and the solve still gives K K⁻¹ y = y exactly."""
    kernel = np.diag([1e300, 1e-300])
    w = caught_warning(IllConditionedKernelWarning, lambda: kernel_regression(kernel, np.ones(2)))
    assert "(condition number ≈ inf); round-off in the kernel (n·ε = 4.4e-16) can be amplified to a relative " \
           "error of about inf." in str(w.message)


def test_cholesky_warns_for_a_well_conditioned_kernel_of_low_precision():
    """A float16 identity of 11 rows: κ = 1 (rcond = 1 exactly) but n·ε = 11·2⁻¹⁰ = 0.011 > 10⁻²: the warning
    states κ ≈ 1, the round-off 0.011 and the amplified error 0.011."""
    w = caught_warning(IllConditionedKernelWarning,
                       lambda: kernel_regression(np.eye(11, dtype=np.float16), np.ones(11)))
    assert "(condition number ≈ 1); round-off in the kernel (n·ε = 0.011) can be amplified to a relative error of " \
           "about 0.011." in str(w.message)


@pytest.mark.parametrize("function, category, call", [
    ("gradient_flow_predictor", IllConditionedKernelWarning,
     lambda: gradient_flow_predictor(np.ones((2, 2)), np.ones(2))(np.inf)),
    ("gradient_flow_predictor", IllConditionedKernelWarning,
     lambda: gradient_flow_predictor(np.diag([1.0, 1e-15]), np.ones(2))(1e16, np.ones((1, 2)))),
    ("gradient_descent_predictor", IllConditionedKernelWarning,
     lambda: gradient_descent_predictor(np.ones((2, 2)), np.ones(2), 0.1)(np.inf)),
    ("gradient_descent_predictor", UnstableLearningRateWarning,
     lambda: gradient_descent_predictor(np.diag([4.0, 1.0]), np.ones(2), 0.7)),
], ids=["flow-singular-limit", "flow-amplified-round-off", "descent-singular-limit", "descent-unstable-rate"])
def test_every_warning_begins_with_the_public_functions_name(function, category, call):
    """The conditioning and learning-rate warnings begin with 'function: ' (the project's rule for messages), for
    each predictor that emits them."""
    assert str(caught_warning(category, call).message).startswith(f"{function}: ")
