"""jaxact: activation functions for JAX, accurate in value and derivative across the float range.

``import jaxact as nn`` drops in for the activations of ``jax.nn``; the registry
(:func:`get`, :func:`names`, :func:`info`) finds any of them by name. The Flax
layers live in :mod:`jaxact.linen` and :mod:`jaxact.nnx` (optional extra ``flax``).
"""

from jaxact import theory as theory
from jaxact.normalizers import glu as glu
from jaxact.normalizers import log_softmax as log_softmax
from jaxact.normalizers import logsumexp as logsumexp
from jaxact.normalizers import softmax as softmax
from jaxact.normalizers import softmin as softmin
from jaxact.normalizers import sparsemax as sparsemax
from jaxact.rectifiers import hard_shrink as hard_shrink
from jaxact.rectifiers import hard_sigmoid as hard_sigmoid
from jaxact.rectifiers import hard_silu as hard_silu
from jaxact.rectifiers import hard_swish as hard_swish
from jaxact.rectifiers import hard_tanh as hard_tanh
from jaxact.rectifiers import identity as identity
from jaxact.rectifiers import leaky_relu as leaky_relu
from jaxact.rectifiers import linear as linear
from jaxact.rectifiers import prelu as prelu
from jaxact.rectifiers import relu as relu
from jaxact.rectifiers import relu6 as relu6
from jaxact.rectifiers import rrelu as rrelu
from jaxact.rectifiers import soft_shrink as soft_shrink
from jaxact.rectifiers import step as step
from jaxact.rectifiers import threshold as threshold
from jaxact.registry import ActivationInfo as ActivationInfo
from jaxact.registry import aliases as aliases
from jaxact.registry import get as get
from jaxact.registry import info as info
from jaxact.registry import names as names
from jaxact.registry import resolve as resolve
from jaxact.smooth import celu as celu
from jaxact.smooth import elu as elu
from jaxact.smooth import exponential as exponential
from jaxact.smooth import gelu as gelu
from jaxact.smooth import log_sigmoid as log_sigmoid
from jaxact.smooth import mish as mish
from jaxact.smooth import selu as selu
from jaxact.smooth import sigmoid as sigmoid
from jaxact.smooth import silu as silu
from jaxact.smooth import soft_sign as soft_sign
from jaxact.smooth import softplus as softplus
from jaxact.smooth import softsign as softsign
from jaxact.smooth import sparse_plus as sparse_plus
from jaxact.smooth import sparse_sigmoid as sparse_sigmoid
from jaxact.smooth import squareplus as squareplus
from jaxact.smooth import swish as swish
from jaxact.smooth import tanh as tanh
from jaxact.smooth import tanh_shrink as tanh_shrink
from jaxact.theory import critical_bias_init as critical_bias_init
from jaxact.theory import critical_gain as critical_gain
from jaxact.theory import critical_init as critical_init
from jaxact.theory import variance_preserving_gain as variance_preserving_gain

__version__ = "0.1.0"
