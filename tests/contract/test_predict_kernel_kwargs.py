"""``predict.gradient_descent_mse_ensemble`` passes ``kernel_fn``'s keyword
arguments as neural-tangents does: the training ones (``mask_constant`` of
``examples/imdb.py``, graph patterns) reach the test-train and test-test
kernels too, unless ``predict_fn`` overrides them.
"""
import numpy as np
import pytest

from ntkcourse.predict import kernel_kwargs_for_test


def test_training_keywords_reach_the_test_kernels():
    td, tt = kernel_kwargs_for_test({"mask_constant": 100.0}, {}, "here")
    assert td == tt == {"mask_constant": 100.0}


def test_pairs_of_arrays_combine_test_and_train_parts():
    # pattern=(p, p) for the training inputs, (q, q) for the test inputs:
    # the test-train kernel takes (q, p), the test-test one (q, q).
    p, q = np.ones((3, 2, 2)), np.zeros((4, 2, 2))
    td, tt = kernel_kwargs_for_test({"pattern": (p, p)}, {"pattern": (q, q)}, "here")
    assert td["pattern"][0] is q and td["pattern"][1] is p
    assert tt["pattern"] == (q, q)


def test_a_keyword_with_different_scalar_values_is_refused():
    with pytest.raises(ValueError, match="here: the keyword argument `mask_constant` of kernel_fn is 100.0 for the "
                                         "training inputs and 0.0 for the test inputs"):
        kernel_kwargs_for_test({"mask_constant": 100.0}, {"mask_constant": 0.0}, "here")
