r"""abc-parameterisations of an MLP as data: the exponents of width in each layer's multiplier, initial
standard deviation and learning rate (Yang & Hu 2021, *Tensor Programs IV*; Yang et al. 2021, *Tensor Programs V*).

Convention (Tensor Programs IV, §3; Tensor Programs V, Table 9). Each weight matrix is used as
:math:`W = n^{-a}\, w` with trainable :math:`w_{ij} \sim \mathcal N(0, n^{-2b})` and per-layer learning rate
:math:`\eta\, n^{-c}`, for hidden width :math:`n`. Four kinds of parameter:

``input``   the first layer, input dimension d (fixed) → n;
``hidden``  n → n;
``output``  n → k outputs (fixed);
``bias``    the bias vectors of the width-n layers (treated as input weights with a constant input 1).

Invariance (Tensor Programs IV, eq. (5)): per layer, :math:`(a, b, c) \to (a+\theta, b-\theta, c-2\theta)` leaves
SGD training unchanged, and :math:`(a, b, c) \to (a+\theta, b-\theta, c-\theta)` leaves Adam unchanged (Adam's
update does not depend on the gradient's scale). Only the *effective* exponents matter:

* initial standard deviation of :math:`W`: :math:`n^{-(a+b)}`;
* SGD learning rate of :math:`W` itself: :math:`n^{-(2a+c)}` (the multiplier enters the gradient and the update);
* Adam update size of :math:`W`: :math:`n^{-(a+c_\mathrm{Adam})}`.

**Base width.** With a base width :math:`n_0` (microsoft/mup's ``set_base_shapes``), the concrete values at width
:math:`n` and ratio :math:`r = n / n_0` are

* multiplier :math:`r^{-a}`,
* initial standard deviation :math:`\sigma / \sqrt{\text{fan-in at } n_0}\; r^{-b}` (``bias``: :math:`\sigma_b r^{-b}`),
* learning-rate multiplier :math:`r^{-c}`,

so that at :math:`n = n_0` every preset is the standard network (multiplier 1, fan-in initialisation, one global
learning rate): hyper-parameters tuned at :math:`n_0` mean the same thing at every width under μP.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional

from ..validation import fail, one_of, positive_int

__all__ = [
    "KINDS",
    "OPTIMIZERS",
    "Exponents",
    "Parameterization",
    "PRESETS",
    "get_parameterization",
    "EffectiveExponents",
    "effective_exponents",
    "LayerScales",
    "layer_scales",
]

KINDS = ("input", "hidden", "output", "bias")
OPTIMIZERS = ("sgd", "adam")


class Exponents(NamedTuple):
    """Exponents of width for one kind of parameter: multiplier ``n^-a``, std ``n^-b``, learning rates ``n^-c``.

    ``c_adam`` is None where the papers define no Adam scaling for the preset.
    """

    a: float
    b: float
    c_sgd: float
    c_adam: Optional[float]


class Parameterization(NamedTuple):
    """A named abc-parameterisation: ``exponents[kind]`` for each kind it defines (``None``: not defined)."""

    name: str
    exponents: Dict[str, Optional[Exponents]]
    description: str

    def exponents_of(self, kind: str) -> Exponents:
        """The exponents of ``kind``, or a ValueError naming the kind if this parameterisation does not define it."""
        kind = one_of(f"Parameterization({self.name!r}).exponents_of", "kind", kind, KINDS)
        e = self.exponents[kind]
        if e is None:
            raise fail(
                f"Parameterization({self.name!r})",
                "kind",
                f"a kind this parameterisation defines ({', '.join(k for k in KINDS if self.exponents[k] is not None)})"
                f"; {self.description}",
                kind,
            )
        return e


def _preset(name, description, input, hidden, output, bias):
    return Parameterization(name, dict(input=input, hidden=hidden, output=output, bias=bias), description)


PRESETS: Dict[str, Parameterization] = {
    # Standard parameterisation with one width-independent learning rate, as used in practice (and as compared
    # with μP in Tensor Programs V). Tensor Programs IV's Table 1 lists SP with c = 1 (learning rate ∝ 1/n), the
    # largest that stays stable; with c = 0 the output's change grows with width (the coordinate check shows it).
    "sp": _preset(
        "sp",
        "standard parameterisation: fan-in initialisation, one learning rate at every width",
        input=Exponents(0.0, 0.0, 0.0, 0.0),
        hidden=Exponents(0.0, 0.5, 0.0, 0.0),
        output=Exponents(0.0, 0.5, 0.0, 0.0),
        bias=Exponents(0.0, 0.0, 0.0, 0.0),
    ),
    # NTK parameterisation (Jacot et al. 2018), Tensor Programs IV Table 1 ("NTP"): N(0, 1) weights, 1/sqrt(fan-in)
    # multipliers. Neither paper gives an Adam scaling for it.
    "ntk": _preset(
        "ntk",
        "NTK parameterisation: N(0, 1) weights times 1/sqrt(fan-in), one SGD learning rate (kernel regime)",
        input=Exponents(0.0, 0.0, 0.0, None),
        hidden=Exponents(0.5, 0.0, 0.0, None),
        output=Exponents(0.5, 0.0, 0.0, None),
        bias=Exponents(0.0, 0.0, 0.0, None),
    ),
    # Maximal update parameterisation, Tensor Programs IV Table 1 (SGD) and Tensor Programs V Table 9 (SGD, Adam).
    "mup": _preset(
        "mup",
        "maximal update parameterisation (μP): every layer's features move by Θ(1) in one step",
        input=Exponents(-0.5, 0.5, 0.0, 0.5),
        hidden=Exponents(0.0, 0.5, 0.0, 1.0),
        output=Exponents(0.5, 0.5, 0.0, 0.5),
        bias=Exponents(-0.5, 0.5, 0.0, 0.5),
    ),
    # Mean-field parameterisation of a network with ONE hidden layer, Tensor Programs IV Table 1 ("MFP", L = 1):
    # f = (1/n) Σ_i a_i φ(w_i·x), learning rate ∝ n. It is μP moved by θ = 1/2 along the abc symmetry; the Adam
    # exponents follow from that symmetry. Undefined for hidden-to-hidden layers.
    "mean_field": _preset(
        "mean_field",
        "mean-field parameterisation, defined for networks with one hidden layer (depth 1) only",
        input=Exponents(0.0, 0.0, -1.0, 0.0),
        hidden=None,
        output=Exponents(1.0, 0.0, -1.0, 0.0),
        bias=Exponents(0.0, 0.0, -1.0, 0.0),
    ),
}


def get_parameterization(parameterization) -> Parameterization:
    """The preset named ``parameterization`` (``'sp'``, ``'ntk'``, ``'mup'``, ``'mean_field'``), or a
    :class:`Parameterization` passed through unchanged.
    """
    if isinstance(parameterization, Parameterization):
        return parameterization
    if not isinstance(parameterization, str) or parameterization not in PRESETS:
        raise fail(
            "get_parameterization", "parameterization", "one of " + ", ".join(map(repr, PRESETS)), parameterization
        )
    return PRESETS[parameterization]


class EffectiveExponents(NamedTuple):
    """Width exponents of the quantities that determine training, invariant under the abc symmetry.

    ``init_var``: variance of ``W = n^-a w`` at initialisation is ``n^init_var``; ``sgd_lr``: the SGD step on ``W``
    is ``η n^sgd_lr ∇_W L``; ``adam_lr``: Adam moves ``W`` by ``η n^adam_lr`` times an O(1) direction (None where
    the preset has no Adam scaling).
    """

    init_var: float
    sgd_lr: float
    adam_lr: Optional[float]


def effective_exponents(parameterization, kind: str) -> EffectiveExponents:
    """``init_var = -2(a + b)``, ``sgd_lr = -(2a + c)``, ``adam_lr = -(a + c_adam)``: Tensor Programs V's Table 3
    (which puts every multiplier into the initialisation and the learning rate) in powers of the width.
    """
    e = get_parameterization(parameterization).exponents_of(kind)
    adam = None if e.c_adam is None else -(e.a + e.c_adam)
    return EffectiveExponents(-2.0 * (e.a + e.b), -(2.0 * e.a + e.c_sgd), adam)


class LayerScales(NamedTuple):
    """Concrete values for one parameter at one width: ``W = multiplier · w``, ``w ~ N(0, init_std²)``, learning
    rate ``η · lr_multiplier``.
    """

    multiplier: float
    init_std: float
    lr_multiplier: float


def layer_scales(
    parameterization,
    kind: str,
    *,
    width: int,
    base_width: int,
    optimizer: str = "sgd",
    std: float = 1.0,
    base_fan_in: int = 1,
) -> LayerScales:
    """Multiplier, initial standard deviation and learning-rate multiplier of one parameter at ``width``.

    With ``r = width / base_width`` (module docstring): ``multiplier = r^-a``,
    ``init_std = std / sqrt(base_fan_in) · r^-b``, ``lr_multiplier = r^-c`` (``c`` of ``optimizer``).
    ``base_fan_in`` is the fan-in at the base width: ``d`` for ``input``, ``base_width`` for ``hidden`` and
    ``output``, 1 for ``bias``.

    Raises:
      ValueError: an unknown parameterisation, kind or optimizer; a width below the base width; a kind the
        parameterisation does not define (hidden layers under mean-field); Adam where no Adam scaling is defined.
    """
    where = "layer_scales"
    p = get_parameterization(parameterization)
    kind = one_of(where, "kind", kind, KINDS)
    optimizer = one_of(where, "optimizer", optimizer, OPTIMIZERS)
    width = positive_int(where, "width", width)
    base_width = positive_int(where, "base_width", base_width)
    base_fan_in = positive_int(where, "base_fan_in", base_fan_in)
    if width < base_width:
        raise fail(where, "width", f"at least base_width = {base_width} (μP is anchored at the base width)", width)
    e = p.exponents_of(kind)
    c = e.c_sgd if optimizer == "sgd" else e.c_adam
    if c is None:
        raise fail(where, "optimizer", f"'sgd' for the {p.name!r} parameterisation (it defines no Adam scaling)",
                   optimizer)
    r = width / base_width
    return LayerScales(r ** (-e.a), float(std) / base_fan_in**0.5 * r ** (-e.b), r ** (-c))
