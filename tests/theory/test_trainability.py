"""Training deep plain networks over (sigma_w^2, depth): the trainable-depth rule of Schoenholz et al. (2017)."""
import jax.numpy as jnp
import numpy as np
import pytest

from ntkcourse import dual
from ntkcourse import signal_propagation as sp
from ntkcourse.data import load_digits
from ntkcourse.trainability import training_accuracy_grid

TANH = dual.quadrature(jnp.tanh, deg=50)


def test_bad_weight_variances_and_labels_are_named_in_the_error():
    x, labels = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"training_accuracy_grid: `sigma_w2s` must be a non-empty 1-D array"):
        training_accuracy_grid(jnp.tanh, [1.0, -1.0], 0.05, [2], x, labels)
    with pytest.raises(ValueError, match=r"training_accuracy_grid: `x, labels` must be inputs \(n, d\)"):
        training_accuracy_grid(jnp.tanh, [1.0], 0.05, [2], x, labels.astype(float))


@pytest.mark.slow
def test_at_depth_50_only_the_network_initialised_near_the_edge_of_chaos_trains():
    # Schoenholz et al.'s rule: trainable iff depth < 6 xi_c. At sb2 = 0.05, 6 xi_c is 7 at sw2 = 0.5
    # (ordered), > 1000 at sw2 = 1.76 (the boundary) and 36 at sw2 = 5 (chaotic), so at depth 50 only
    # the middle one should train. 300 SGD steps on 512 digits, width 64: "trains" means training
    # accuracy > 0.9, "fails" means < 0.2 (chance is 0.1); measured 0.10, 0.99, 0.10.
    sw2 = [0.5, 1.76, 5.0]
    limits = [sp.trainable_depth(TANH, s, 0.05) for s in sw2]
    assert limits[0] < 50 < limits[1] and limits[2] < 50
    digits = load_digits(flat=True)
    acc = training_accuracy_grid(jnp.tanh, sw2, 0.05, [50], digits.images[:512], digits.labels[:512],
                                 width=64, steps=300, learning_rate=1e-2)[:, 0]
    assert acc[1] > 0.9 and acc[0] < 0.2 and acc[2] < 0.2
