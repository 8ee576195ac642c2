r"""Layers that define a finite network and its infinite-width kernels at once.

Every layer is a triple ``(init_fn, apply_fn, kernel_fn)``:

* ``init_fn(key, input_shape) -> (output_shape, params)`` draws parameters;
* ``apply_fn(params, x) -> y`` runs the finite network;
* ``kernel_fn(x1, x2=None, get=None)`` returns the NNGP and NTK of the same
  network in the limit of infinite width (channels), computed in float64.

The API, the argument names and defaults, the parameterisations and the kernel
values follow ``neural_tangents.stax`` (Novak et al. 2020), so that a user of
that library can switch by changing the import. Conventions (as there):

* inputs are ``(batch, features)``, NHWC images ``(batch, H, W, C)``, or
  sequences ``(batch, T, features)`` for :func:`Recurrent`;
* the input kernel is :math:`\Sigma^{(0)}(x, x') = x \cdot x' / d` (mean over
  the channel axis; ERRATA #5);
* NTK parameterisation (default): :math:`z = \sigma_w W x / \sqrt{n_{in}} + \sigma_b b`
  with standard normal ``W`` and ``b``; standard parameterisation:
  :math:`W \sim N(0, \sigma_w^2/n_{in})`, :math:`b \sim N(0, \sigma_b^2)`;
* ``b_std=None`` means no bias at all (no bias parameter, no NTK term);
* after a ``Dense`` layer, :math:`\Sigma \mapsto \sigma_w^2 \Sigma + \sigma_b^2`
  and :math:`\Theta \mapsto \sigma_w^2 \Theta + \Sigma_{\text{new}}` (NTK
  parameterisation); after an activation, :math:`\Sigma \mapsto \check\phi(\Sigma)`
  and :math:`\Theta \mapsto \Theta \cdot \check{\phi'}(\Sigma)`. This is the
  recursion of Jacot et al. (2018) and Arora et al. (2019):
  :math:`\Theta^{(\ell)} = \Sigma^{(\ell)} + \Theta^{(\ell-1)} \dot\Sigma^{(\ell)}`
  (ERRATA #1 gives a wrong version found in the source notes);
* convolutional kernels keep the full covariance between spatial positions:
  ``nngp`` has shape ``(n1, n2, H1, H2, W1, W2)`` until a ``Flatten`` or
  ``GlobalAvgPool`` removes the spatial axes (Novak et al. 2019;
  Garriga-Alonso et al. 2019; Arora et al. 2019).

Where things are: each layer's formula sits next to its finite network in
:mod:`~ntkcourse.stax.layers` (affine, pooling, reshaping),
:mod:`~ntkcourse.stax.convolutions` (transposed and locally connected),
:mod:`~ntkcourse.stax.dot_general` (a constant linear map),
:mod:`~ntkcourse.stax.activations` and :mod:`~ntkcourse.stax.combinators`;
formulas on spatial covariances in :mod:`~ntkcourse.stax.spatial`; layouts
(``dimension_numbers``, ``batch_axis``, ``channel_axis``) in
:mod:`~ntkcourse.stax.conv_specs`; the masks of padded inputs in a finite
network (``apply_fn(..., mask_constant=c)``) in
:mod:`~ntkcourse.stax.masked`; the
boundary that makes a triple, and what each layer declares, in
:mod:`~ntkcourse.stax.layer`. How kernels are computed (blocks, memory,
threads, devices) is :mod:`ntkcourse.engine`.

Precision: kernels are computed in float64 whatever the global
``jax_enable_x64`` setting. They come back as JAX float64 arrays in 64-bit
mode, and as NumPy float64 arrays with it off (float32 under the caller's
``jit``), so that ``jnp`` and NumPy code can use them in either mode
(:mod:`ntkcourse.engine.outputs`). Pass ``dtype=jnp.float32`` to
``kernel_fn`` for float32 (about twice as fast, relative error around 1e-6).
"""
from ..kernel import Kernel
from .activations import (
    ABRelu,
    Abs,
    Cos,
    Elementwise,
    ElementwiseNumerical,
    Erf,
    Gelu,
    LeakyRelu,
    Relu,
    Sin,
)
from .activations_extra import (
    Exp,
    ExpNormalized,
    Gabor,
    Gaussian,
    Hermite,
    Monomial,
    Polynomial,
    Rbf,
    RectifiedMonomial,
    Sigmoid_like,
    Sign,
)
from .aggregate import Aggregate
from .attention import GlobalSelfAttention
from .combinators import FanInSum, FanOut, Identity, parallel, repeat, serial
from .convolutions import ConvLocal, ConvTranspose
from .dot_general import DotGeneral
from .dropout import Dropout
from .fan_in import FanInConcat, FanInProd
from .indexing import Index, Slice
from .layer import LayerSpec, StructuredRule, layer, layer_spec
from .layers import AvgPool, Conv, Dense, Flatten, GlobalAvgPool
from .normalization import LayerNorm
from .pooling import GlobalSumPool, SumPool
from .recurrent import Recurrent
from .resize import ImageResize

__all__ = [
    "Kernel",
    "LayerSpec",
    "StructuredRule",
    "layer",
    "layer_spec",
    "serial",
    "parallel",
    "repeat",
    "FanOut",
    "FanInSum",
    "FanInConcat",
    "FanInProd",
    "LayerNorm",
    "Dense",
    "Conv",
    "ConvTranspose",
    "ConvLocal",
    "AvgPool",
    "GlobalAvgPool",
    "SumPool",
    "GlobalSumPool",
    "DotGeneral",
    "Dropout",
    "Flatten",
    "Index",
    "ImageResize",
    "Slice",
    "Recurrent",
    "GlobalSelfAttention",
    "Aggregate",
    "Identity",
    "Relu",
    "LeakyRelu",
    "ABRelu",
    "Abs",
    "Erf",
    "Gelu",
    "Sin",
    "Cos",
    "ElementwiseNumerical",
    "Elementwise",
    "Sigmoid_like",
    "Sign",
    "Exp",
    "ExpNormalized",
    "Gaussian",
    "Rbf",
    "Monomial",
    "RectifiedMonomial",
    "Polynomial",
    "Hermite",
    "Gabor",
]
