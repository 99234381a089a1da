r"""Mean-field theory of signal propagation, and the initialisation it prescribes.

A wide fully connected network with weights :math:`W_{ij} \sim N(0, \sigma_w^2/N)` and
biases :math:`b_i \sim N(0, \sigma_b^2)` propagates the variance :math:`q^l` of its
pre-activations :math:`h^l = W^l \phi(h^{l-1}) + b^l` through the *length map*

.. math::
    q^{l+1} = \mathcal{L}(q^l) = \sigma_w^2\,\mathbb{E}_{z}\!\left[\phi(\sqrt{q^l} z)^2\right]
    + \sigma_b^2, \qquad z \sim N(0, 1),

to a fixed point :math:`q^*`, and its squared gradient norms, layer to layer, by

.. math::
    \chi(q) = \sigma_w^2\,\mathbb{E}_{z}\!\left[\phi'(\sqrt{q} z)^2\right], \qquad
    \chi_1 = \chi(q^*)

(Poole et al., 2016; Schoenholz et al., 2017). :math:`\chi_1 < 1` makes gradients
vanish with depth, :math:`\chi_1 > 1` explode; :math:`\chi_1 = 1` is *critical*.

Three modules, each importing only the ones before it:

- :mod:`jaxact.theory.quadrature`: expectations against the normal density (composite
  Gauss-Legendre, split at the activation's breakpoints) and the prepared-activation cache;
- :mod:`jaxact.theory.maps`: the length map, :math:`\chi`, the fixed points, the
  correlation map and the depth scales, pure JAX (jittable, differentiable);
- :mod:`jaxact.theory.critical`: :func:`critical_gain`, the critical :math:`\sigma_w` for a
  given :math:`\sigma_b`, and the initializers :func:`critical_init` and
  :func:`critical_bias_init` for a Flax ``Dense`` layer.

Every public name is importable from ``jaxact.theory``.

>>> import jaxact
>>> round(jaxact.critical_gain("relu") ** 2, 4)
2.0
>>> round(jaxact.theory.chi1("relu", sigma_w=2**0.5), 4)
1.0
"""

from jaxact.theory.critical import critical_bias_init as critical_bias_init
from jaxact.theory.critical import critical_gain as critical_gain
from jaxact.theory.critical import critical_init as critical_init
from jaxact.theory.critical import gain as gain
from jaxact.theory.critical import variance_preserving_gain as variance_preserving_gain
from jaxact.theory.maps import DepthScales as DepthScales
from jaxact.theory.maps import chi as chi
from jaxact.theory.maps import chi1 as chi1
from jaxact.theory.maps import correlation_fixed_point as correlation_fixed_point
from jaxact.theory.maps import correlation_map as correlation_map
from jaxact.theory.maps import depth_scales as depth_scales
from jaxact.theory.maps import fixed_point as fixed_point
from jaxact.theory.maps import gradient_depth_scale as gradient_depth_scale
from jaxact.theory.maps import length_map as length_map

__all__ = [
    "DepthScales",
    "chi",
    "chi1",
    "correlation_fixed_point",
    "correlation_map",
    "critical_bias_init",
    "critical_gain",
    "critical_init",
    "depth_scales",
    "fixed_point",
    "gradient_depth_scale",
    "length_map",
    "variance_preserving_gain",
]
