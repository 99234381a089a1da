r"""The critical initialisation: the weight scale that keeps gradient norms constant with depth.

:func:`critical_gain` finds, for a given bias scale :math:`\sigma_b`, the :math:`\sigma_w` at
which :math:`\chi_1 = 1` at a stable fixed point :math:`q^*`; :func:`critical_init` and
:func:`critical_bias_init` are the matching Flax initializers, and
:func:`variance_preserving_gain` the simpler forward-only scale (He, LeCun). The search
needs concrete numbers: it looks for a root and raises, saying why, where there is none.
"""

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxact.theory.maps import bracket_root, fixed_point_of
from jaxact.theory.quadrature import (
    Activation,
    K,
    activation,
    check_sigma,
    default_dtype,
    is_traced,
    moments,
)

Q_MIN = 1e-5  # critical points below this count as q* = 0


def variance_preserving_gain(name: str, **params: Any) -> float:
    r"""The :math:`\sigma_w` that maps unit pre-activation variance to unit variance (no bias).

    .. math::
        \sigma_w = \mathbb{E}\!\left[\phi(z)^2\right]^{-1/2}, \quad z \sim N(0, 1)

    He init for relu, LeCun for selu. It keeps the forward signal's scale at the first
    layer; it need not keep gradients alive (:func:`critical_gain` does).

    Args:
        name: a registry activation (elementwise).
        **params: the activation's hyperparameters.

    Returns:
        :math:`\sigma_w` as a float.

    Raises:
        ValueError: for an unknown activation or parameter, or an activation that is 0
            almost everywhere.

    Examples:
        >>> import jaxact
        >>> round(jaxact.variance_preserving_gain("relu") ** 2, 4)
        2.0
        >>> round(jaxact.variance_preserving_gain("selu"), 3)
        1.0
    """
    act = activation(name, params)
    with jax.ensure_compile_time_eval():
        a = float(moments(act, jnp.ones((), default_dtype()))[0])
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"{act.name} has E[phi(z)^2] = {a}: no variance-preserving gain exists")
    return 1 / math.sqrt(a)


_CURVE_GRID = np.geomspace(Q_MIN, 1e4, 5 * K)


@functools.lru_cache(maxsize=512)
def _critical_curve(act: Activation) -> tuple[np.ndarray, ...]:
    """On a grid of q: E[phi^2], E[phi'^2], d/dq E[phi^2], E[phi], as float64 numpy arrays."""
    values = moments(act, jnp.asarray(_CURVE_GRID, default_dtype()))
    return tuple(np.asarray(v, dtype=float) for v in values)


def _reached(act: Activation, sw2: float, sb2: float, q0: float) -> float:
    return float(fixed_point_of(act, math.sqrt(sw2), math.sqrt(sb2), q0))


def critical_gain(
    name: str,
    *,
    sigma_b: float = 0.0,
    q0: float = 1.0,
    allow_saturated: bool = False,
    **params: Any,
) -> float:
    r"""The critical weight scale: the :math:`\sigma_w` making :math:`\chi_1 = 1` at a stable q*.

    Solves, for :math:`q^* > 0`,

    .. math::
        \sigma_w^2\,\mathbb{E}\!\left[\phi'(\sqrt{q^*} z)^2\right] = 1, \qquad
        q^* = \sigma_w^2\,\mathbb{E}\!\left[\phi(\sqrt{q^*} z)^2\right] + \sigma_b^2,

    by following the critical line :math:`\sigma_b^2(q) = q - \mathbb{E}[\phi^2] /
    \mathbb{E}[\phi'^2]` over a grid of :math:`q` in :math:`[10^{-5}, 10^4]` and narrowing
    in where it crosses the requested :math:`\sigma_b^2`. A root is accepted only where
    :math:`q^*` is finite, non-zero and attracting (:math:`\mathcal{L}'(q^*) < 1`, or the
    map leaves every :math:`q` in place, as relu's does at :math:`\sigma_w^2 = 2`), is
    the fixed point the length map reaches from ``q0``, and, unless ``allow_saturated``,
    is not saturated: less than half of :math:`q^*` may be common to all inputs,
    :math:`C(0) = (\sigma_w^2\mathbb{E}[\phi]^2 + \sigma_b^2)/q^* < 1/2`. That last
    criterion is jaxact's own, not part of mean-field theory (Poole et al.; Schoenholz et
    al.): sigmoid has an attracting critical point at every :math:`\sigma_b`
    (:math:`\sigma_w^2 = 103.0`, :math:`q^* = 45.6` at :math:`\sigma_b = 0`), but there its
    non-zero mean makes up most of :math:`q^*`, few units carry the gradient, and the
    gradient fluctuates by 2-4x over 50 layers of width 256. Weights
    :math:`\sim N(0, \sigma_w^2/\mathrm{fan\_in})` and biases :math:`\sim N(0, \sigma_b^2)`
    then keep gradient norms constant with depth.

    Args:
        name: a registry activation (elementwise).
        sigma_b: bias standard deviation.
        q0: the input variance whose fixed point must be the critical one.
        allow_saturated: accept a saturated critical point (sigmoid's, hard_sigmoid's,
            step's), which is declined by default.
        **params: the activation's hyperparameters (concrete numbers).

    Returns:
        :math:`\sigma_w` as a float (square it for the variance scale).

    Raises:
        ValueError: for an unknown activation or parameter, a negative or non-finite
            ``sigma_b``, or where no stable (and unsaturated) critical point exists; the
            message says why and suggests a ``sigma_b`` that has one, or another init.

    Examples:
        >>> import jaxact
        >>> round(jaxact.critical_gain("relu") ** 2, 4)  # He
        2.0
        >>> round(jaxact.critical_gain("leaky_relu", negative_slope=0.5) ** 2, 4)  # 2 / (1 + a^2)
        1.6
        >>> round(jaxact.critical_gain("tanh", sigma_b=0.05**0.5) ** 2, 3)
        1.761
        >>> round(jaxact.critical_gain("sigmoid", allow_saturated=True) ** 2, 1)
        103.0
    """
    check_sigma("sigma_b", sigma_b)
    check_sigma("q0", q0)
    if is_traced(sigma_b, q0, params):
        raise ValueError(
            "critical_gain searches for a root and needs concrete numbers, not traced ones"
        )
    act = activation(name, params)
    # Concrete even when called while a jit is tracing (a Flax module building its init).
    with jax.ensure_compile_time_eval():
        return _critical_gain(act, float(sigma_b), float(q0), bool(allow_saturated))


@functools.lru_cache(maxsize=1024)
def _critical_gain(
    act: Activation, sigma_b: float, q0: float, allow_saturated: bool = False
) -> float:
    sb2 = sigma_b**2
    grid = _CURVE_GRID
    a, b, da, mean = _critical_curve(act)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sw2_curve = 1 / b
        sb2_curve = grid - a / b
        slope_curve = da / b  # L'(q) on the critical line
        common_curve = (sw2_curve * mean**2 + sb2_curve) / grid  # C(0) on the critical line
    finite = np.isfinite(sw2_curve) & np.isfinite(sb2_curve) & np.isfinite(slope_curve) & (b > 0)

    def verdict(q: float) -> tuple[float | None, str]:
        """(sigma_w^2, "") if q is a good critical point at this sigma_b, else (None, why)."""
        _, bq, daq, mq = (float(v) for v in moments(act, jnp.asarray(q, default_dtype())))
        sw2, slope = 1 / bq if bq > 0 else math.inf, daq / bq if bq > 0 else math.inf
        where = f"q*={q:.3g} at sigma_w^2={sw2:.4g}"
        if not (math.isfinite(sw2) and sw2 > 0):
            return None, f"E[phi'^2] = 0 at q={q:.3g}"
        if slope > 1 + 1e-3:
            return None, (
                f"{where} has chi_1 = 1 but is not stable: the length map moves away from it "
                f"(L'(q*)={slope:.3g} > 1), so there is no stable critical point here"
            )
        mean_part, bias_part = sw2 * mq**2 / q, sb2 / q
        if mean_part + bias_part >= 0.5 - 1e-3 and not allow_saturated:
            return None, (
                f"{where} is a mean-field critical point (chi_1 = 1, attracting with "
                f"L'(q*)={slope:.3g}), but saturated: C(0) = {mean_part + bias_part:.0%} of q* "
                f"is common to all inputs ({mean_part:.0%} from phi's non-zero mean "
                f"sigma_w^2 E[phi]^2, {bias_part:.0%} from the bias), so few units carry the "
                "gradient and it fluctuates strongly from layer to layer at finite width. "
                "jaxact declines such points (C(0) >= 1/2, its own criterion, not Poole's or "
                "Schoenholz's); pass allow_saturated=True to get it"
            )
        reached = _reached(act, sw2, sb2, q0)
        # 5%: near L'(q*) = 1 the map is flat and the reached point is ill-conditioned.
        if not (math.isfinite(reached) and abs(reached - q) <= 5e-2 * q):
            return (
                None,
                f"{where} attracts, but from q0={q0:g} the length map goes to {reached:.3g}",
            )
        return sw2, ""

    def tolerant_sign(h: np.ndarray, q: np.ndarray) -> np.ndarray:
        # Within float rounding of 0 counts as 0 (relu at sigma_b=0: the whole line is critical).
        return np.where(np.abs(h) <= 1e-5 * (q + sb2), 0.0, np.sign(h))

    # A neutral critical point at q0 itself: L(q0) = q0 with chi = 1 (relu family, identity).
    a0, b0, _, _ = (float(v) for v in moments(act, jnp.asarray(q0, default_dtype())))
    if b0 > 0 and tolerant_sign(np.array([q0 - a0 / b0 - sb2]), np.array([q0]))[0] == 0:
        sw2, _ = verdict(q0)
        if sw2 is not None:
            return math.sqrt(sw2)

    h = np.where(finite, sb2_curve - sb2, np.nan)
    signs = tolerant_sign(h, grid)
    reasons = []
    nonzero = np.flatnonzero(np.isfinite(h) & (signs != 0))
    for i, j in itertools.pairwise(nonzero):
        if signs[i] == signs[j] or not np.all(np.isfinite(h[i : j + 1])):
            continue
        q = _critical_root(act, grid[i], grid[j], sb2)
        if q < Q_MIN:
            continue
        sw2, why = verdict(q)
        if sw2 is not None:
            return math.sqrt(sw2)
        reasons.append(why)

    if reasons:
        why = "; ".join(reasons)
    elif not finite.any():
        why = "E[phi'^2] = 0, so no sigma_w gives chi_1 = 1"
    elif sb2 == 0 and finite[0] and abs(sb2_curve[0]) <= 1e-2 * grid[0]:
        why = (
            f"at sigma_b=0 its critical point is q*=0 (sigma_w^2 -> {sw2_curve[0]:.4g}), where "
            "signals shrink to 0 and gradients fade as a power of depth"
        )
    elif np.nanmax(np.where(finite, sb2_curve, -np.inf)) < 0:
        why = "chi_1 = 1 would need a negative bias variance (E[phi^2] > q E[phi'^2] for every q)"
    else:
        why = "no q* in [1e-5, 1e4] has chi_1 = 1 at this sigma_b"
    raise ValueError(
        f"no critical initialisation for {act.name} at sigma_b={sigma_b:g}: {why}. "
        + _suggest(
            act,
            sw2_curve,
            sb2_curve,
            slope_curve,
            common_curve,
            finite,
            q0,
            sigma_b,
            allow_saturated,
        )
    )


def _critical_root(act: Activation, lo: float, hi: float, sb2: float) -> float:
    """The q in [lo, hi] where q - E[phi^2]/E[phi'^2] = sb2 (a sign change), to float precision."""

    def signs(q: Array) -> Array:
        a, b, _, _ = moments(act, q)
        return jnp.sign(q - a / b - sb2)

    lo_, hi_ = jnp.asarray(lo, default_dtype()), jnp.asarray(hi, default_dtype())
    return float(bracket_root(signs, lo_, hi_, signs(lo_[None])[0], passes=4))


def _suggest(
    act: Activation,
    sw2_curve: np.ndarray,
    sb2_curve: np.ndarray,
    slope_curve: np.ndarray,
    common_curve: np.ndarray,
    finite: np.ndarray,
    q0: float,
    sigma_b: float,
    allow_saturated: bool,
) -> str:
    """A sigma_b on the critical line whose critical point is good, q* nearest q0."""
    grid = _CURVE_GRID
    ok = finite & (sb2_curve > 1e-4) & (slope_curve < 1)
    ok &= (grid >= 1e-2) & (grid <= 100) & ((common_curve < 0.45) | allow_saturated)
    distance = np.where(ok, np.abs(np.log(grid / q0)), np.inf)
    for i in np.argsort(distance)[:8]:
        if not ok[i]:
            break
        reached = _reached(act, sw2_curve[i], sb2_curve[i], q0)
        if math.isfinite(reached) and abs(reached - grid[i]) <= 5e-2 * grid[i]:
            return (
                f"Try sigma_b={math.sqrt(sb2_curve[i]):.3g} (critical at "
                f"sigma_w={math.sqrt(sw2_curve[i]):.4g}, q*={grid[i]:.3g}), or a "
                "variance-preserving init (jaxact.variance_preserving_gain, He or LeCun)."
            )
    if sigma_b > 0:
        try:  # critical without a bias only (the relu family: sigma_b > 0 makes q* grow)
            sigma_w = _critical_gain(act, 0.0, q0, allow_saturated)
        except ValueError:
            pass
        else:
            return f"Use sigma_b=0 (critical at sigma_w={sigma_w:.4g})."
    others = ", ".join(n for n in ("tanh", "relu", "selu") if n != act.name)
    return (
        "No sigma_b has a usable one either: use a variance-preserving init "
        "(jaxact.variance_preserving_gain, He or LeCun) with normalisation or residual "
        f"connections, or an activation that has one ({others})."
    )


def critical_init(name: str, *, sigma_b: float = 0.0, **params: Any) -> Callable[..., Array]:
    r"""A kernel initializer with the critical variance :math:`\sigma_w^2/\mathrm{fan\_in}`.

    ``jax.nn.initializers.variance_scaling(critical_gain(name, sigma_b=sigma_b, **params) ** 2,
    "fan_in", "normal")``: pass it as ``kernel_init`` of a Flax ``Dense`` layer, and
    :func:`critical_bias_init` with the same ``sigma_b`` as its ``bias_init``.

    Args:
        name: a registry activation (elementwise).
        sigma_b: bias standard deviation the gain is computed for.
        **params: the activation's hyperparameters.

    Returns:
        An initializer ``(key, shape, dtype=float32) -> Array``.

    Raises:
        ValueError: as :func:`critical_gain`, where no critical point exists.

    Examples:
        >>> import jax, jaxact
        >>> w = jaxact.critical_init("relu")(jax.random.key(0), (1000, 300))
        >>> round(float(w.var() * 1000), 1)
        2.0
    """
    sigma_w = critical_gain(name, sigma_b=sigma_b, **params)
    return jax.nn.initializers.variance_scaling(sigma_w**2, "fan_in", "normal")


def critical_bias_init(sigma_b: float = 0.0) -> Callable[..., Array]:
    r"""The bias initializer matching :func:`critical_init`: :math:`N(0, \sigma_b^2)`, zeros at 0.

    Args:
        sigma_b: standard deviation of the biases, >= 0.

    Returns:
        An initializer ``(key, shape, dtype=float32) -> Array``.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.critical_bias_init(0.0)(jax.random.key(0), (3,))
        Array([0., 0., 0.], dtype=float32)
    """
    check_sigma("sigma_b", sigma_b)
    if float(sigma_b) == 0:
        return jax.nn.initializers.zeros
    return jax.nn.initializers.normal(float(sigma_b))


def gain(name: str, **kwargs: Any) -> float:
    """Deprecated name of :func:`critical_gain` (``jaxact.sigmoid``'s ``gain`` is another thing).

    >>> import warnings, jaxact
    >>> with warnings.catch_warnings(record=True):
    ...     round(jaxact.theory.gain("relu") ** 2, 4)
    2.0
    """
    warnings.warn(
        "jaxact.theory.gain is now jaxact.theory.critical_gain (also jaxact.critical_gain)",
        DeprecationWarning,
        stacklevel=2,
    )
    return critical_gain(name, **kwargs)
