"""Graded notebooks: correct answers written differently earn full marks, common
mistakes lose their question's points.

For each assignment, one :func:`ntkcourse.grading.grade.grade` run grades, as an
instructor would, submissions built from the reference solution
(tests/notebook_answers.py). The grader first runs the reference solution
itself and refuses to grade when it fails its own checks
(tests/grading/test_grading_robustness.py), so every run here is also that of
a reference passing its checks; the reference is not graded a second time as a
submission of its own (the correct variants below are it, with answers
returned in other types, and each run costs a whole notebook: the suite's time).
The submissions:

* the released exercise as it is: it runs and scores zero;
* three *correct* submissions whose answer functions return float32 arrays
  (computed in float32 where the reference casts to float64), lists, or JAX
  arrays, and where ``REWRITTEN`` has one, a correct submission with answers
  written another way in jax.numpy (float32 end to end): each must score full
  marks with no problem reported;
* two *mistake* submissions, each planting common mistakes in different
  questions: exactly the listed questions lose their points, every other
  question keeps them, and where a mistake is marked ``visible`` a check that
  students see (not only a hidden one or the comparison with the reference)
  catches it.

The list answers keep the functions that later answers call as they are (a
student whose question 1 returns a list would break their own question 3,
which is not what is tested here); those functions are covered by the float32
and JAX submissions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from notebook_answers import (ROOT, answer_sources, called_elsewhere, read, reference_labels, replaced, submission,
                              with_outputs_as)
from ntkcourse.grading.grade import grade

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

# The slowest check cell takes ~20 s on the loaded 2-core machine; 300 s per cell
# keeps a busy CI machine from timing out.
CELL_TIMEOUT_S = 300


@dataclass(frozen=True)
class Mistake:
    question: str
    what: str
    old: str
    new: str
    visible: bool


# Each entry: submission name -> (mistakes planted together, questions that must lose their points).
# Questions listed beyond the mistakes' own call a wrong earlier answer (README: "Later questions that
# call earlier answers fail with them").
MISTAKES = {
    "ch00_warmup": {
        "swapped_recursion_and_no_ridge": ([
            Mistake("q3_relu_ntk", "the lesson plan's swapped recursion",
                    "        theta = sigma + theta * sigma_dot",
                    "        theta = sigma * sigma_dot / 2 + theta * sigma / 2", visible=True),
            Mistake("q4_kernel_regression", "the ridge ignored",
                    "np.linalg.solve(k_train_train + ridge * np.eye(n), ", "np.linalg.solve(k_train_train, ",
                    visible=True),
        ], {"q3_relu_ntk", "q4_kernel_regression", "q5_predict_depth_correlation"}),
        "no_clip_and_wrong_prediction": ([
            Mistake("q1_relu_expectation", "rho not clipped to [-1, 1]",
                    "theta = np.arccos(np.clip(c / norm, -1.0, 1.0))", "theta = np.arccos(c / norm)",
                    visible=False),
            Mistake("q5_predict_depth_correlation", "a prediction that the measurement contradicts",
                    'return "increases"', 'return "decreases"', visible=True),
        ], {"q1_relu_expectation", "q5_predict_depth_correlation"}),
    },
    "ch01_gp_limit": {
        "variances_not_updated_and_noise_missing": ([
            Mistake("q2_relu_nngp", "the variances not carried through the layers",
                    "\n        var1, var2 = affine(var1 / 2), affine(var2 / 2)", "", visible=True),
            Mistake("q4_gp_posterior", "the noise left out of the linear systems",
                    "system = k_train + noise * np.eye(k_train.shape[0])", "system = k_train", visible=True),
        ], {"q2_relu_nngp", "q4_gp_posterior"}),
        "lesson_plan_erf_and_wrong_prediction": ([
            Mistake("q1_erf_expectation", "the lesson plan's formula (that of erf(z), not erf(z / sqrt 2))",
                    "c / np.sqrt((1 + a) * (1 + b))", "2 * c / np.sqrt((1 + 2 * a) * (1 + 2 * b))", visible=True),
            Mistake("q5_predict_monte_carlo_error", "the error falling like 1/S rather than 1/sqrt(S)",
                    "return 4.0", "return 16.0", visible=True),
        ], {"q1_erf_expectation", "q5_predict_monte_carlo_error"}),
    },
    "ch02_linearisation": {
        "no_f0_and_flow_for_descent": ([
            Mistake("q4_linearised_outputs", "f(x; theta0) left out of the linear model",
                    "return (f0 + df)[:, 0]", "return df[:, 0]", visible=True),
            Mistake("q5_linear_gd_outputs", "gradient flow's exp(-eta lambda s) for gradient descent",
                    "left = (1.0 - learning_rate * lam) ** steps", "left = np.exp(-learning_rate * lam * steps)",
                    visible=True),
        ], {"q4_linearised_outputs", "q5_linear_gd_outputs", "q6_predict_linearisation_gap"}),
        "transposed_ntk_and_wrong_prediction": ([
            Mistake("q3_jacobian_ntk", "J(x2) J(x1)^T, the transpose", "return j1 @ j2.T", "return j2 @ j1.T",
                    visible=True),
            Mistake("q6_predict_linearisation_gap", "a first-order gap (halving c halves it)",
                    "return 4.0", "return 2.0", visible=True),
        ], {"q3_jacobian_ntk", "q6_predict_linearisation_gap"}),
    },
    "ch03_ntk_recursion": {
        "sigma_dot_order_and_no_readout_bias": ([
            Mistake("q1_relu_ntk", "Sigma-dot taken from the updated kernel",
                    "        t = angle(var1, var2, cov)\n        sigma_dot = W_std**2 * (np.pi - t) / (2 * np.pi)\n"
                    "        cov = affine(np.sqrt(var1 * var2) / (2 * np.pi) * (np.sin(t) + (np.pi - t) * np.cos(t)))\n"
                    "        var1, var2 = affine(var1 / 2), affine(var2 / 2)\n",
                    "        t = angle(var1, var2, cov)\n"
                    "        cov = affine(np.sqrt(var1 * var2) / (2 * np.pi) * (np.sin(t) + (np.pi - t) * np.cos(t)))\n"
                    "        var1, var2 = affine(var1 / 2), affine(var2 / 2)\n"
                    "        t = angle(var1, var2, cov)\n        sigma_dot = W_std**2 * (np.pi - t) / (2 * np.pi)\n",
                    visible=True),
            Mistake("q4_standard_ntk", "the read-out bias's gradient forgotten",
                    "return width * e_relu + 1.0 + W_std**2", "return width * e_relu + W_std**2", visible=True),
        ], {"q1_relu_ntk", "q4_standard_ntk"}),
        "input_normalisation_and_wrong_prediction": ([
            Mistake("q4_standard_ntk", "x.x'/d in the first layer's gradient (the NTK parameterisation's)",
                    "* (x1 @ x2.T + 1.0)", "* (x1 @ x2.T / d + 1.0)", visible=True),
            Mistake("q5_predict_learning_rate", "the NTK parameterisation's answer (no change with width)",
                    "return 0.5", "return 1.0", visible=True),
        ], {"q4_standard_ntk", "q5_predict_learning_rate"}),
    },
    "ch04_training_dynamics": {
        "mean_loss_and_nngp_for_a": ([
            Mistake("q4_gd_train_outputs", "the mean loss instead of the notebook's sum",
                    "return 0.5 * jnp.sum((apply_fn(p, x)[:, 0] - y) ** 2)",
                    "return 0.5 * jnp.mean((apply_fn(p, x)[:, 0] - y) ** 2)", visible=True),
            Mistake("q5_ensemble", "the NNGP used for A = Theta_* Theta^-1",
                    "a = np.linalg.solve(theta, theta_star.T).T", "a = np.linalg.solve(sigma, sigma_star.T).T",
                    visible=True),
        ], {"q4_gd_train_outputs", "q5_ensemble"}),
        "increasing_modes_and_wrong_prediction": ([
            Mistake("q2_mode_residuals", "modes left in eigh's increasing order",
                    "    lam, v = lam[::-1], v[:, ::-1]\n", "", visible=True),
            Mistake("q6_predict_slowest_frequency", "the low frequency predicted last",
                    "return 8", "return 1", visible=True),
        ], {"q2_mode_residuals", "q6_predict_slowest_frequency"}),
    },
    "ch05_finite_width": {
        "unscaled_loss_and_wrong_prediction": ([
            Mistake("q5_lazy_weight_change", "the loss not divided by alpha^2",
                    "return 0.5 * jnp.sum((g(p, x) - y) ** 2) / alpha**2", "return 0.5 * jnp.sum((g(p, x) - y) ** 2)",
                    visible=True),
            Mistake("q6_predict_fluctuation_exponent", "the 1/n rate of the kernel's drift in training",
                    "return -0.5", "return -1.0", visible=True),
        ], {"q5_lazy_weight_change", "q6_predict_fluctuation_exponent"}),
        "absolute_deviation": ([
            Mistake("q1_relative_deviation", "the distance not divided by ||K||_F",
                    "return np.linalg.norm(k_hat - k) / np.linalg.norm(k)", "return np.linalg.norm(k_hat - k)",
                    visible=True),
        # Question 6 still passes: an unnormalised distance has the same log-log slope, since the limit
        # kernel it would be divided by is the same at every width.
        ], {"q1_relative_deviation", "q2_mean_ntk_deviation"}),
    },
    "ch07_convolutional": {
        "no_border_and_diagonal_for_gap": ([
            Mistake("q1_conv1d_nngp", "the filter slid along one axis only (h + d paired with h' unshifted)",
                    "total = sum(padded[d:d + h, d:d + h] for d in range(filter_width))",
                    "total = sum(padded[d:d + h, half:half + h] for d in range(filter_width))", visible=True),
            Mistake("q2_readouts", "GlobalAvgPool taken as the mean of the diagonal, like Flatten",
                    'return float(np.einsum("hhww->hw", plane).mean()), float(plane.mean())',
                    'return float(np.einsum("hhww->hw", plane).mean()), float(np.einsum("hhww->hw", plane).mean())',
                    visible=True),
        ], {"q1_conv1d_nngp", "q2_readouts"}),
        "unshifted_second_image_and_sum_not_mean": ([
            Mistake("q3_shift_changes", "'both' computed with only the first image shifted",
                    "both = np.max(np.abs(ntk(moved(x1), moved(x2)) - base)) / scale",
                    "both = np.max(np.abs(ntk(moved(x1), x2) - base)) / scale", visible=True),
            Mistake("q4_predict_linear_gap", "the spatial sum taken for the mean (GAP read as a sum pooling)",
                    "m1 = np.asarray(x1, dtype=float).mean(axis=(0, 1))",
                    "m1 = np.asarray(x1, dtype=float).sum(axis=(0, 1))", visible=True),
        ], {"q3_shift_changes", "q4_predict_linear_gap"}),
    },
    "ch08_recurrent": {
        "no_sharing_term_and_zero_padding": ([
            Mistake("q1_rnn_step", "the gradients of earlier steps dropped (no weight-sharing term in Theta)",
                    "return sigma, sigma + sw**2 * k_dot * theta_prev", "return sigma, sigma", visible=True),
            Mistake("q3_pad_batch", "padded with zeros whatever the mask constant",
                    "out = np.full((len(sequences), longest, sequences[0].shape[1]), mask_constant, dtype=float)",
                    "out = np.zeros((len(sequences), longest, sequences[0].shape[1]))", visible=True),
        ], {"q1_rnn_step", "q3_pad_batch"}),
        "erf_of_z_over_root_two_and_no_readout_nngp": ([
            Mistake("q2_memory", "the arcsin argument of erf(z / sqrt 2) (ERRATA #2) used for erf(z)",
                    "2 / np.pi * np.arcsin(2 * c / np.sqrt((1 + 2 * a) * (1 + 2 * b)))",
                    "2 / np.pi * np.arcsin(c / np.sqrt((1 + a) * (1 + b)))", visible=True),
            Mistake("q4_predict_ntk", "the read-out's own term E[relu(u)^2] forgotten",
                    "return T / 2 + T * (T + 1) / 4", "return T * (T + 1) / 4", visible=True),
        ], {"q2_memory", "q4_predict_ntk"}),
    },
    "ch09_graph": {
        "no_self_loops_and_no_readout_factor": ([
            Mistake("q1_aggregate", "the node itself left out of the aggregation (A instead of A + I)",
                    "a_hat = np.asarray(a, dtype=float) + np.eye(len(a))", "a_hat = np.asarray(a, dtype=float)",
                    visible=True),
            Mistake("q3_gntk_pair", "the read-out's factor 2 forgotten",
                    "return 2.0 * float(np.sum(jump if jk else ntk))", "return float(np.sum(jump if jk else ntk))",
                    visible=True),
        ], {"q1_aggregate", "q3_gntk_pair"}),
        "no_c_sigma_and_wrong_prediction": ([
            Mistake("q2_relu_layer", "c_sigma = 2 left out of Sigma-dot",
                    "sigma_dot = (np.pi - theta) / np.pi", "sigma_dot = (np.pi - theta) / (2 * np.pi)",
                    visible=True),
            Mistake("q5_star_prediction", "the centre's degree forgotten (every node taken to have degree 1)",
                    "return 4.0 * (3 * n + 1) ** 2", "return 4.0 * (2 * n + 2) ** 2", visible=True),
        ], {"q2_relu_layer", "q3_gntk_pair", "q5_star_prediction"}),
    },
    "ch12_connections": {
        "erf_of_z_over_root_two_and_no_ratio": ([
            Mistake("q1_erf_fixed_point", "the arcsin argument of erf(z / sqrt 2) (ERRATA #2) used for erf(z)",
                    "math.asin(2 * q / (1 + 2 * q))", "math.asin(q / (1 + q))", visible=True),
            Mistake("q4_mp_density", "the ratio gamma left out of the denominator",
                    "(2 * math.pi * variance * ratio * safe)", "(2 * math.pi * variance * safe)", visible=True),
        # Question 2 calls question 1, so it fails with it.
        ], {"q1_erf_fixed_point", "q2_erf_xi_c", "q4_mp_density"}),
        "slope_for_scale_and_wrong_prediction": ([
            Mistake("q3_fit_depth_scale", "the fitted slope returned instead of -1 / slope",
                    "return -1.0 / slope", "return slope", visible=True),
            Mistake("q5_predict_top_eigenvalue", "the edge taken as (1 + gamma)^2 instead of (1 + sqrt(gamma))^2",
                    "return variance * (1 + math.sqrt(n / m)) ** 2", "return variance * (1 + n / m) ** 2",
                    visible=True),
        ], {"q3_fit_depth_scale", "q5_predict_top_eigenvalue"}),
    },
    "ch10_feature_learning": {
        "adam_like_sgd_and_no_denominator": ([
            Mistake("q1_mup_exponents", "the hidden layers' Adam rate taken order one, as under SGD",
                    '"adam": {"input": 0.0, "hidden": -1.0, "output": -1.0}',
                    '"adam": {"input": 0.0, "hidden": 0.0, "output": -1.0}', visible=False),
            Mistake("q3_relative_change", "the absolute change returned (no division by the norm before)",
                    "return float(np.linalg.norm(after - before) / np.linalg.norm(before))",
                    "return float(np.linalg.norm(after - before))", visible=True),
        ], {"q1_mup_exponents", "q3_relative_change"}),
        "sign_and_wrong_prediction": ([
            Mistake("q2_readout_step", "the step taken up the gradient (sign)",
                    "return -lr * h @ (h.T @ np.asarray(residual, dtype=float))",
                    "return lr * h @ (h.T @ np.asarray(residual, dtype=float))", visible=True),
            Mistake("q4_predict_output", "SP's output change predicted like a sum of random signs, n^(1/2)",
                    'return {"sp": 1.0, "mup": 0.0}[parameterization]',
                    'return {"sp": 0.5, "mup": 0.0}[parameterization]', visible=True),
        ], {"q2_readout_step", "q4_predict_output"}),
    },
    "ch11_scaling": {
        "float32_bytes_and_no_ridge_in_cg": ([
            Mistake("q1_kernel_gigabytes", "4 bytes per number (float32) instead of 8",
                    "return 8.0 * n * n * pairs_per_entry / 1e9", "return 4.0 * n * n * pairs_per_entry / 1e9",
                    visible=True),
            Mistake("q2_cg_solve", "the ridge left out of the products (K alpha = y solved instead)",
                    "ap = k @ p + ridge * p", "ap = k @ p", visible=True),
        ], {"q1_kernel_gigabytes", "q2_cg_solve"}),
        "no_ridge_in_the_floor_and_wrong_prediction": ([
            Mistake("q3_nystrom_apply", "the ridge left out of the floor lambda_r + rho",
                    "((lam[-1] + ridge) / (lam + ridge) - 1.0)", "(lam[-1] / (lam + ridge) - 1.0)", visible=True),
            Mistake("q4_predict_exponent", "the 1/M rate of a variance taken for the error",
                    "return -0.5", "return -1.0", visible=True),
        ], {"q3_nystrom_apply", "q4_predict_exponent"}),
    },
    "ch06_theory": {
        "derivative_not_squared_and_no_factor_two": ([
            Mistake("q5_chi1", "tanh' not squared", "(1 - np.tanh(np.sqrt(q) * z) ** 2) ** 2",
                    "(1 - np.tanh(np.sqrt(q) * z) ** 2)", visible=True),
            Mistake("q3_arora_bound", "the factor 2 under the root forgotten",
                    "np.sqrt(2 * y @ np.linalg.solve(H, y) / len(y))", "np.sqrt(y @ np.linalg.solve(H, y) / len(y))",
                    visible=True),
        ], {"q5_chi1", "q3_arora_bound", "q6_predict_label_noise"}),
        "unit_norm_gram_and_wrong_prediction": ([
            Mistake("q1_relu_gram", "the chapter's unit-norm formula (inner products taken as cosines)",
                    "np.clip(g / np.outer(norms, norms), -1.0, 1.0)", "np.clip(g, -1.0, 1.0)", visible=True),
            Mistake("q6_predict_label_noise", "noise predicted to lower the bound",
                    'return "increases"', 'return "decreases"', visible=True),
        ], {"q1_relu_gram", "q6_predict_label_noise"}),
    },
}
VARIANTS = ("float32", "list", "jax")

# Answers written differently, computed end to end in jax.numpy (float32 by default), replacing the
# reference's answer for that question in an otherwise correct submission.
REWRITTEN = {
    "ch04_training_dynamics": {
        "q2_mode_residuals": '''
def mode_residuals(ntk_train, y, f0_train, learning_rate, times):
    lam, v = jnp.linalg.eigh(jnp.asarray(ntk_train, dtype=jnp.float32))
    lam, v = lam[::-1], v[:, ::-1]
    r0 = v.T @ (jnp.ravel(jnp.asarray(f0_train)) - jnp.ravel(jnp.asarray(y)))
    return (jnp.exp(-learning_rate * jnp.outer(jnp.asarray(times), lam)) * r0) ** 2
''',
    },
    "ch06_theory": {
        "q1_relu_gram": '''
import jax.numpy as jnp

def relu_gram_any_norm(x):
    x = jnp.asarray(x, dtype=jnp.float32)
    g = x @ x.T
    norms = jnp.linalg.norm(x, axis=1)
    return g * (jnp.pi - jnp.arccos(jnp.clip(g / jnp.outer(norms, norms), -1, 1))) / (2 * jnp.pi)
''',
    },
}
ASSIGNMENTS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def test_every_assignment_has_mistake_submissions():
    assert sorted(MISTAKES) == ASSIGNMENTS


def _submissions(name):
    """{student: notebook} for the released exercise as it is, the three correct variants and the mistake
    submissions of ``name``."""
    sources = answer_sources(read(ROOT / "solutions" / f"{name}.ipynb"))
    out = {"exercise": read(ROOT / "exercises" / f"{name}.ipynb")}
    for kind in VARIANTS:
        skip = lambda q: called_elsewhere(sources, q) if kind == "list" else ()  # noqa: E731
        out[f"correct_{kind}"] = submission(name, {q: with_outputs_as(s, kind, skip(q)) for q, s in sources.items()})
    if name in REWRITTEN:
        out["correct_rewritten"] = submission(name, {**sources, **REWRITTEN[name]})
    for student, (mistakes, _) in MISTAKES[name].items():
        answers = dict(sources)
        for m in mistakes:
            answers[m.question] = replaced(answers[m.question], m.old, m.new)
        out[student] = submission(name, answers)
    return out


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """(assignment, {student: result}) from one grading run over all its submissions."""
    name = request.param
    work = tmp_path_factory.mktemp(f"answers_{name}")
    for student, notebook in _submissions(name).items():
        (work / "submissions" / f"{student}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        (work / "submissions" / f"{student}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    summary = grade([work / "submissions"], name, work / "out", solutions_dir=ROOT / "solutions", jobs=2,
                    share_compilations=True,
                    cell_timeout=CELL_TIMEOUT_S, scratch_root=work)
    return name, {r["student"]: r for r in summary.results}


def _describe(result):
    return {q: (v["points"], v["max"]) for q, v in result["questions"].items()}, result["problems"]


def test_released_exercise_runs_and_scores_zero(graded):
    """The released exercise runs top to bottom (its answers raise NotImplementedError, which is not an
    error of the run) and scores zero on every question."""
    name, results = graded
    exercise = results["exercise"]
    assert exercise["status"] == "ok", _describe(exercise)
    assert exercise["total"] == 0, _describe(exercise)


def test_assignment_has_at_least_four_graded_questions(graded):
    name, results = graded
    assert len(results["correct_float32"]["questions"]) >= 4


def _failures(result):
    return {q: [c["message"] for c in v["checks"] if not c["passed"]]
            for q, v in result["questions"].items() if not v["passed"]}


def test_correct_answers_written_differently_score_full_marks(graded):
    name, results = graded
    correct = [s for s in results if s.startswith("correct_")]
    assert len(correct) == len(VARIANTS) + (name in REWRITTEN)
    for student in correct:
        result = results[student]
        assert result["status"] == "ok" and not result["problems"], (student, result["problems"])
        assert result["total"] == result["max"], (student, _failures(result))


def test_each_mistake_loses_exactly_its_questions_points(graded):
    name, results = graded
    for student, (_, losing) in MISTAKES[name].items():
        result = results[student]
        assert result["status"] == "ok", (student, result["problems"])
        lost = {q for q, v in result["questions"].items() if v["points"] == 0}
        assert lost == losing, (student, _failures(result))


def test_visible_mistakes_fail_a_check_students_see(graded):
    """A visible check cell stops at its first failing check, and every check but
    ``close_to_reference`` does in a student's notebook what it does at grading: a
    failure whose label is not a reference comparison is one the student sees."""
    name, results = graded
    compared = reference_labels(read(ROOT / "solutions" / f"{name}.ipynb"))
    for student, (mistakes, _) in MISTAKES[name].items():
        checks = results[student]["questions"]
        for m in mistakes:
            if m.visible:
                seen = [c["message"] for c in checks[m.question]["checks"] if not c["hidden"] and not c["passed"]
                        and not any(c["message"].startswith(f"{label}: ") for label in compared)]
                assert seen, f"{student}: {m.what} ({m.question}) is caught by no visible check"
