"""μP, feature learning and hyper-parameter transfer (Yang & Hu 2021; Yang et al. 2021), in JAX and optax.

* :mod:`~ntkcourse.mup.parameterization` — abc-parameterisations as data: presets ``'sp'``, ``'ntk'``, ``'mup'``,
  ``'mean_field'``, and the concrete scales at a width given a base width;
* :mod:`~ntkcourse.mup.optax_scaling` — ``scale_by_layer``: per-layer learning rates for any optax optimiser;
* :mod:`~ntkcourse.mup.networks` — MLPs built under a parameterisation;
* :mod:`~ntkcourse.mup.coord_check` — the coordinate check and fitted width exponents;
* :mod:`~ntkcourse.mup.transfer` — learning-rate sweeps across widths (μTransfer);
* :mod:`~ntkcourse.mup.feature_learning` — relative change of the representation and of the empirical NTK.
"""
from .coord_check import CoordinateCheck, coordinate_check, train_for, width_slopes
from .feature_learning import FeatureChange, FeatureLearning, feature_change, feature_learning_vs_width, relative_change
from .networks import MupMLP, mlp
from .transfer import LearningRateSweep, learning_rate_sweep
from .optax_scaling import scale_by_layer, scaled_optimizer, width_scaled
from .parameterization import (
    KINDS,
    PRESETS,
    EffectiveExponents,
    Exponents,
    LayerScales,
    Parameterization,
    effective_exponents,
    get_parameterization,
    layer_scales,
)

__all__ = [
    "CoordinateCheck", "coordinate_check", "train_for", "width_slopes",
    "FeatureChange", "FeatureLearning", "feature_change", "feature_learning_vs_width", "relative_change",
    "MupMLP", "mlp",
    "scale_by_layer", "scaled_optimizer", "width_scaled",
    "LearningRateSweep", "learning_rate_sweep",
    "KINDS", "PRESETS", "EffectiveExponents", "Exponents", "LayerScales", "Parameterization",
    "effective_exponents", "get_parameterization", "layer_scales",
]
