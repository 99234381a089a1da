r"""Signal propagation through wide random networks, against the mean-field maps.

For random fully connected networks (no training) of width :math:`N` and depth
:math:`L`, with :math:`h^l = W^l \phi(h^{l-1}) + b^l`, :math:`W^l_{ij} \sim N(0,
\sigma_w^2/N)`, :math:`b^l_i \sim N(0, \sigma_b^2)`, this study measures per layer the
length :math:`q^l = |h^l|^2/N` and the correlation :math:`c^l` of two inputs, and the
norm of the gradient :math:`\partial \langle z, h^L\rangle / \partial h^l` for a random
output direction :math:`z`, and puts beside them the iterates of the maps of
:mod:`jaxact.theory` from the same :math:`q^0, c^0` (Poole et al., 2016; Schoenholz et
al., 2017):

.. math::
    q^{l+1} = \mathcal{L}(q^l), \qquad c^{l+1} = \mathcal{C}(c^l), \qquad
    \frac{|\delta^{l-1}|^2}{|\delta^{l}|^2} = \chi(q^{l-1}).

Both inputs start at the length fixed point, :math:`q^0 = q^*` (so the correlation map
at :math:`q^*` applies from the first layer, and :math:`\chi = \chi_1` at every layer),
with correlation :math:`c^0`.

*Sampling.* Only the products of each :math:`W^l` with the two signals enter what is
measured, and the rows of :math:`W^l [\phi(h_a), \phi(h_b)]` are i.i.d.
:math:`N(0, \tfrac{\sigma_w^2}{N} G)`, :math:`G` the Gram matrix of the two signals.
Drawing those rows (``--method sampled``, the default) instead of the :math:`N \times N`
matrix gives every measured quantity its exact finite-width law at :math:`O(N)` per
layer; the backward pass draws :math:`W^T \delta` from :math:`W`'s law given the forward
product (:math:`W = g\phi^T/|\phi|^2 + W'(I - \phi\phi^T/|\phi|^2)`, :math:`W'` fresh).
That makes averaging over a thousand independent networks cheap, which the finite-width
fluctuations need (relu/He's :math:`q^l` is a multiplicative random walk: one network
drifts by ~50% in 60 layers at width 1,000, while the mean follows the map). ``--method
dense`` draws the full matrices (same law, :math:`O(N^2)` per layer) as a cross-check.

Writes ``signal.csv`` (one row per configuration and layer), ``signal.png`` and
``summary.md`` to ``--out``::

    python -m experiments.signal_propagation --out results/signal_propagation
"""

import argparse
import concurrent.futures
import dataclasses
import functools
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxact
from experiments import atomic_files, background, devices, recording
from experiments.arguments import number, positive_int
from experiments.atomic_files import prepare_output_folder, save_figure

FIELDS = (
    "activation", "label", "sigma_w2", "sigma_b2", "width", "networks", "gradient_networks",
    "method", "layer",
    "q_measured", "q_theory", "q_sem", "c_measured", "c_theory", "c_sem", "c_star",
    "log_grad_measured", "log_grad_theory", "xi_c", "chi_1",
)  # fmt: skip
DEFAULT_CONFIGS = ("tanh@1.5,0.05", "tanh@1.76,0.05", "tanh@2.5,0.05", "relu@2", "selu@1")
_NAMES = {("relu", 2.0, 0.0): "relu/He", ("selu", 1.0, 0.0): "selu/LeCun"}
# The targets the study is held to.
Q_TOLERANCE = 0.02  # relative, every layer
C_TOLERANCE = 0.02  # absolute, every layer
XI_TOLERANCE = 0.10  # relative, where xi_c < XI_MAX
XI_MAX = 30.0
SLOPE_TOLERANCE = 0.05  # relative, where |log chi_1| / 2 >= SLOPE_MIN
SLOPE_MIN = 0.01  # per layer; below it chi_1 ~ 1 and the slope is held to SLOPE_MIN * tolerance


@dataclasses.dataclass(frozen=True)
class Config:
    """One random-network family: activation (with params), sigma_w^2, sigma_b^2."""

    activation: str
    params: tuple[tuple[str, Any], ...]
    sigma_w2: float
    sigma_b2: float

    @property
    def spec(self) -> str:
        if not self.params:
            return self.activation
        return self.activation + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def label(self) -> str:
        named = _NAMES.get((self.spec, self.sigma_w2, self.sigma_b2))
        return named or f"{self.spec} σw²={self.sigma_w2:g} σb²={self.sigma_b2:g}"


def parse_config(text: str) -> Config:
    """``NAME[:p=v,...]@SIGMA_W2[,SIGMA_B2]`` -> :class:`Config` (sigma_b^2 defaults to 0).

    Raises:
        ValueError: for a malformed text, an unknown activation or parameter, or a negative
            or non-finite variance.

    Examples:
        >>> parse_config("tanh@1.76,0.05")
        Config(activation='tanh', params=(), sigma_w2=1.76, sigma_b2=0.05)
    """
    from experiments.trainability import parse_activation

    spec, at, variances = text.partition("@")
    if not at:
        raise ValueError(f"configuration {text!r} must be NAME[:p=v]@SIGMA_W2[,SIGMA_B2]")
    name, params = parse_activation(spec.strip())
    parts = [p.strip() for p in variances.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"variances in {text!r} must be numbers, got {variances!r}") from None
    if len(numbers) not in (1, 2) or not all(math.isfinite(v) and v >= 0 for v in numbers):
        raise ValueError(f"configuration {text!r} needs SIGMA_W2[,SIGMA_B2], finite and >= 0")
    if numbers[0] == 0:
        raise ValueError(f"sigma_w^2 must be > 0 in {text!r}")
    return Config(name, params, numbers[0], numbers[1] if len(numbers) == 2 else 0.0)


# --- theory ---------------------------------------------------------------------------


def _iterates(step, x0: float, depth: int, guess: np.ndarray, *, tol: float) -> np.ndarray:
    r"""The iterates :math:`x_{l+1} = f(x_l)`, :math:`l < L`, from :math:`x_0`, all at once.

    Newton's method on the whole sequence: each sweep evaluates ``step(x) = (f(x), f'(x))``
    at every layer in one vectorised call (the quadrature's cost per call barely depends on
    how many points it gets, up to 64), then solves the linearised recursion
    :math:`x'_{l+1} = f(x_l) + f'(x_l)(x'_l - x_l)` layer by layer. Sweep :math:`k` makes the
    first :math:`k` layers exact, so at most ``depth`` sweeps are needed; from a good guess
    a handful are. Ends where every :math:`|x_{l+1} - f(x_l)|` is at most ``tol``.
    """
    x = np.asarray(guess, np.float64).copy()
    x[0] = x0
    for _ in range(depth + 2):  # sweep k leaves layers <= k exact: depth + 1 suffice
        value, slope = (np.asarray(v, np.float64) for v in step(x[:-1]))
        if np.max(np.abs(x[1:] - value)) <= tol:
            return x
        new = x.copy()
        for layer in range(depth):
            new[layer + 1] = value[layer] + slope[layer] * (new[layer] - x[layer])
        x = new
    raise RuntimeError(f"the map's iterates did not converge to {tol:g}")  # pragma: no cover


def length_fixed_point(config: Config) -> float:
    """q*, the length map's fixed point reached from q = 1 (:func:`jaxact.theory.fixed_point`).

    Raises:
        ValueError: where it is not finite and positive.
    """
    from jaxact import theory

    kw = {"sigma_w": math.sqrt(config.sigma_w2), "sigma_b": math.sqrt(config.sigma_b2)}
    q_star = theory.fixed_point(config.activation, q0=1.0, **kw, **dict(config.params))
    if not 0 < q_star < math.inf:
        raise ValueError(f"{config.label}: no finite positive length fixed point (q* = {q_star})")
    return q_star


def theory_profile(
    config: Config, depth: int, c0: float, *, q_star: float | None = None
) -> dict[str, Any]:
    r"""q*, c*, chi_1, xi_c and the iterates q^l, c^l (l = 0..depth) from q^0 = q*, c^0.

    The iterates are those of :func:`jaxact.theory.length_map` and
    :func:`jaxact.theory.correlation_map` (at q*), :math:`\mathcal{L}(q) = \sigma_w^2
    E[\phi(\sqrt q z)^2] + \sigma_b^2` and :math:`\mathcal{C}(c) = (\sigma_w^2
    E[\phi(u_1)\phi(u_2)] + \sigma_b^2) / q^*`, evaluated by the same quadrature
    (:mod:`jaxact.theory.quadrature`) for all layers at once (see :func:`_iterates`), to
    float32 rounding (``tests/test_signal_propagation.py`` checks them against the maps
    called layer by layer). The log-gradient profile is
    :math:`\tfrac12 \sum_{k=l}^{L-1} \log\chi(q^k)` (0 at the output layer :math:`L`).
    """
    from jaxact import theory
    from jaxact.theory import quadrature

    params = dict(config.params)
    kw = {"sigma_w": math.sqrt(config.sigma_w2), "sigma_b": math.sqrt(config.sigma_b2), **params}
    if q_star is None:
        q_star = length_fixed_point(config)
    chi_1 = theory.chi1(config.activation, q0=q_star, **kw)
    # c = 1 is the stable fixed point where chi_1 <= 1 (correlation_fixed_point's own rule;
    # its bracketing of a c* < 1 is needed in the chaotic phase only).
    c_star = 1.0
    if chi_1 > 1:
        c_star = theory.correlation_fixed_point(config.activation, q0=q_star, **kw)
    xi_c = theory.depth_scales(config.activation, q0=q_star, **kw).xi_c
    act = quadrature.activation(config.activation, params)
    dtype = quadrature.default_dtype()
    sw2 = jnp.square(jnp.asarray(kw["sigma_w"], dtype))
    sb2 = jnp.square(jnp.asarray(kw["sigma_b"], dtype))
    qs = jnp.asarray(q_star, dtype)

    def length(q):
        a, _, da, _ = quadrature.moments(act, jnp.asarray(q, dtype))
        return sw2 * a + sb2, sw2 * da

    def correlation(c):
        f, g = quadrature.pair_moments(act, qs, jnp.asarray(np.clip(c, -1, 1), dtype))
        return (sw2 * f + sb2) / qs, sw2 * g

    layers = np.arange(depth + 1)
    q = _iterates(length, q_star, depth, np.full(depth + 1, q_star), tol=4e-7 * q_star)
    decay = np.exp(-layers / min(xi_c, 1e6)) if xi_c > 0 else np.zeros(depth + 1)
    c = _iterates(correlation, c0, depth, c_star + (c0 - c_star) * decay, tol=4e-7)
    chi = np.asarray(
        theory.chi(config.activation, np.asarray(q, np.float32), sigma_w=kw["sigma_w"], **params)
    )
    log_grad = np.concatenate([np.cumsum(0.5 * np.log(chi[:-1])[::-1])[::-1], [0.0]])
    return {
        "q_star": q_star,
        "c_star": c_star,
        "chi_1": chi_1,
        "xi_c": xi_c,
        "q": q,
        "c": c,
        "log_grad": log_grad,
    }


# --- simulation -----------------------------------------------------------------------


def _inputs(
    key: jax.Array, width: int, q0: jax.Array, c0: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Two vectors with |h|^2/N = q0 each and correlation c0 exactly."""
    u = jax.random.normal(key, (2, width))
    a = u[0] / jnp.linalg.norm(u[0])
    v = u[1] - (u[1] @ a) * a
    v = v / jnp.linalg.norm(v)
    scale = jnp.sqrt(q0 * width)
    return a * scale, (c0 * a + jnp.sqrt(1 - c0 * c0) * v) * scale


def _stats(ha: jax.Array, hb: jax.Array) -> tuple[jax.Array, jax.Array]:
    qa, qb = jnp.mean(ha * ha), jnp.mean(hb * hb)
    return (qa + qb) / 2, jnp.mean(ha * hb) / jnp.sqrt(qa * qb)


def _derivative(phi):
    return lambda h: jax.jvp(phi, (h,), (jnp.ones_like(h),))[1]


def sampled_network(
    phi, key, *, width: int, depth: int, sw2, sb2, q0, c0, bias: bool = True, gradient=True
):
    """One network by exact sampling of the products W phi (see the module docstring).

    ``bias=False`` draws no biases (for sigma_b = 0: a quarter fewer random numbers);
    ``gradient`` (a bool, or a traced one) False skips the backward pass (|delta|^2 is NaN).

    Returns:
        (q (depth + 1,), c (depth + 1,), |delta|^2 (depth + 1,)) for layers 0..depth.
    """
    dphi = _derivative(phi)
    k_in, k_fwd, k_out, k_bwd = jax.random.split(key, 4)
    ha, hb = _inputs(k_in, width, q0, c0)
    s = jnp.sqrt(sw2 / width)

    def forward(carry, k):
        ha, hb = carry
        z = jax.random.normal(k, (3 if bias else 2, width))
        pa, pb = phi(ha), phi(hb)
        na, nb = jnp.linalg.norm(pa), jnp.linalg.norm(pb)
        rho = jnp.clip((pa @ pb) / (na * nb), -1.0, 1.0)
        ga = s * na * z[0]
        gb = s * nb * (rho * z[0] + jnp.sqrt(1 - rho * rho) * z[1])
        new = (ga + jnp.sqrt(sb2) * z[2], gb + jnp.sqrt(sb2) * z[2]) if bias else (ga, gb)
        return new, (*_stats(*new), ha, pa, ga)

    _, (q, c, h_prev, p_prev, g) = jax.lax.scan(forward, (ha, hb), jax.random.split(k_fwd, depth))

    def backward(delta, inputs):
        h, p, g, k = inputs  # h^{l-1}, phi(h^{l-1}), W^l phi(h^{l-1}); delta = delta^l
        xi = s * jnp.linalg.norm(delta) * jax.random.normal(k, (width,))
        pp = p @ p
        wt_delta = p * ((g @ delta) / pp) + xi - p * ((p @ xi) / pp)
        new = dphi(h) * wt_delta
        return new, new @ new

    def backward_pass():
        top = jax.random.normal(k_out, (width,))
        _, norms = jax.lax.scan(
            backward, top, (h_prev, p_prev, g, jax.random.split(k_bwd, depth)), reverse=True
        )
        return jnp.concatenate([norms, (top @ top)[None]])

    grad2 = jax.lax.cond(gradient, backward_pass, lambda: jnp.full(depth + 1, jnp.nan))
    q0_, c0_ = _stats(ha, hb)
    return (jnp.concatenate([q0_[None], q]), jnp.concatenate([c0_[None], c]), grad2)


def dense_network(
    phi, key, *, width: int, depth: int, sw2, sb2, q0, c0, bias: bool = True, gradient=True
):
    """One network with its full N x N weight matrices; the same outputs as
    :func:`sampled_network` (it always draws the biases; the gradient only if ``gradient``)."""
    k_in, k_net, k_out = jax.random.split(key, 3)
    ha, hb = _inputs(k_in, width, q0, c0)
    keys = jax.random.split(k_net, depth)
    s = jnp.sqrt(sw2 / width)

    def layer(h, k, e):
        kw, kb = jax.random.split(k)
        w = s * jax.random.normal(kw, (width, width))
        b = jnp.sqrt(sb2) * jax.random.normal(kb, (width,))
        return phi(h) @ w.T + b + e

    def forward(h0, perturb):
        def step(h, inputs):
            new = layer(h, *inputs)
            return new, new

        top, hs = jax.lax.scan(step, h0, (keys, perturb))
        return top, hs

    top_dir = jax.random.normal(k_out, (width,))
    zeros = jnp.zeros((depth, 2, width))
    h0 = jnp.stack([ha, hb])
    (top, hs), pullback = jax.vjp(forward, h0, zeros)

    def backward_pass():
        # The gradient of <z, h_a^L>: cotangent z on input a's last layer only.
        cot_top = jnp.zeros_like(top).at[0].set(top_dir)
        d_h0, d_pert = pullback((cot_top, jnp.zeros_like(hs)))
        norms = jnp.sum(jnp.square(d_pert[:, 0]), axis=-1)
        return jnp.concatenate([jnp.sum(jnp.square(d_h0[0]))[None], norms])

    grad2 = jax.lax.cond(gradient, backward_pass, lambda: jnp.full(depth + 1, jnp.nan))
    q, c = jax.vmap(_stats)(hs[:, 0], hs[:, 1])
    q0_, c0_ = _stats(ha, hb)
    return (jnp.concatenate([q0_[None], q]), jnp.concatenate([c0_[None], c]), grad2)


@functools.lru_cache(maxsize=16)
def _program(
    activation: str, params: tuple, width: int, depth: int, method: str, chunk: int, bias: bool
):
    """The jitted simulation of a block of networks; the variances are its arguments, so the
    configurations of one activation (with biases or without) share it."""
    phi = jaxact.get(activation, **dict(params))
    one = {"sampled": sampled_network, "dense": dense_network}[method]

    def run(keys, sw2, sb2, q0, c0, gradient):
        def network(k):
            return one(
                phi, k, width=width, depth=depth, sw2=sw2, sb2=sb2, q0=q0, c0=c0, bias=bias,
                gradient=gradient,
            )  # fmt: skip

        return jax.lax.map(jax.vmap(network), keys.reshape(-1, chunk))

    return jax.jit(run, compiler_options=devices.COMPILER_OPTIONS)


def simulate(
    config: Config, *, width: int, depth: int, networks: int, q0: float, c0: float,
    seed: int = 0, method: str = "sampled", q_precision: float = 0.0,
    c_precision: float | Callable[[], float] = 0.0, max_networks: int = 0, group: int = 256,
    gradient_networks: int = 0, device: jax.Device | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Independent networks of one configuration, ``group`` per compiled call (vmapped; the
    calls all have one shape, so the program compiles once).

    At least ``networks``; then, where ``q_precision`` or ``c_precision`` is > 0, as many
    more (up to ``max_networks``) as the spread of the first ones says the standard error
    of the mean :math:`q^l` needs to fall below ``q_precision`` (relative) and that of the
    mean :math:`c^l` below ``c_precision`` (absolute), at every layer. relu/He's
    :math:`q^l` is a multiplicative random walk (:math:`\\mathcal{L}'(q^*) = 1`: nothing
    pulls it back), so it needs several times the networks tanh does. ``c_precision`` may be
    a function returning it, called once the first ``networks`` are drawn (the study computes
    the decay length that decides it meanwhile). The gradient is taken in the first
    ``gradient_networks`` (rounded up to a whole call; 0: all). ``device``: where the
    networks run (default: JAX's default device).

    Returns:
        ``q``, ``c`` of shape (networks drawn, depth + 1) and ``grad2`` of shape (networks
        with the gradient, depth + 1), float64 numpy.
    """
    group = min(group, networks)
    chunk = math.gcd(group, 128) if method == "sampled" else 1
    bias = config.sigma_b2 > 0
    run = _program(config.activation, config.params, width, depth, method, chunk, bias)
    f32 = jnp.float32
    scalars = jax.device_put((f32(config.sigma_w2), f32(config.sigma_b2), f32(q0), f32(c0)), device)
    base = jax.random.key(seed)
    parts: list[tuple[jax.Array, ...]] = []
    with_gradient: list[bool] = []  # per call: whether it took the gradient

    def draw(n_total: int) -> None:
        while len(parts) * group < n_total:
            keys = jax.random.split(jax.random.fold_in(base, len(parts)), group)
            gradient = not gradient_networks or len(parts) * group < gradient_networks
            call = jax.device_put((keys, jnp.bool_(gradient)), device)
            parts.append(run(call[0], *scalars, call[1]))
            with_gradient.append(gradient)

    def rows(i: int, calls: list[tuple[jax.Array, ...]]) -> np.ndarray:
        return np.concatenate(
            [np.asarray(p[i], np.float64).reshape(group, depth + 1) for p in calls]
        )

    def collect() -> dict[str, np.ndarray]:
        taken = [p for p, g in zip(parts, with_gradient, strict=True) if g]
        return {"q": rows(0, parts), "c": rows(1, parts), "grad2": rows(2, taken)}

    draw(networks)
    result = collect()
    needed = 0
    if q_precision > 0:
        spread = np.max(result["q"].std(0, ddof=1) / result["q"].mean(0))
        needed = math.ceil((spread / q_precision) ** 2)
    if callable(c_precision):
        c_precision = c_precision()
    if c_precision > 0:
        needed = max(needed, math.ceil((np.max(result["c"].std(0, ddof=1)) / c_precision) ** 2))
    if needed:
        needed = min(max(max_networks, networks), needed)
        if needed > len(parts) * group:
            draw(needed)
            result = collect()
    return result


# --- comparison -----------------------------------------------------------------------


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(x, y, 1)[0])


def compare(theory: dict[str, Any], sim: dict[str, np.ndarray]) -> dict[str, Any]:
    """The measured profiles beside the theory's, and the agreement figures.

    Returns:
        The per-layer means and standard errors, and ``q_error`` (max relative), ``c_error``
        (max absolute), ``xi_fit`` with its fit window (NaN where xi_c >= :data:`XI_MAX` or
        the window is too short), ``slope`` and ``slope_theory`` (per layer, of
        log |delta^l|).
    """
    n, layers = sim["q"].shape
    q_m, c_m = sim["q"].mean(0), sim["c"].mean(0)
    q_sem, c_sem = sim["q"].std(0, ddof=1) / math.sqrt(n), sim["c"].std(0, ddof=1) / math.sqrt(n)
    g2 = sim["grad2"].mean(0)
    log_grad = 0.5 * np.log(g2 / g2[-1])
    result = {
        "networks": n,
        "gradient_networks": len(sim["grad2"]),
        "q_measured": q_m,
        "q_sem": q_sem,
        "c_measured": c_m,
        "c_sem": c_sem,
        "log_grad_measured": log_grad,
        "q_error": float(np.max(np.abs(q_m / theory["q"] - 1))),
        "c_error": float(np.max(np.abs(c_m - theory["c"]))),
        "slope": _slope(np.arange(layers), log_grad),
        "slope_theory": -0.5 * math.log(theory["chi_1"]),
        "xi_fit": math.nan,
        "xi_window": (0, 0),
    }
    xi, c_star = theory["xi_c"], theory["c_star"]
    result["c_limit"] = c_star
    if xi < XI_MAX:
        gap_t = np.abs(theory["c"] - c_star)
        with np.errstate(divide="ignore", invalid="ignore"):
            local = -1 / np.log(gap_t[1:] / gap_t[:-1])  # the theory's own decay length
        # The asymptotic regime: the map itself decays at xi_c to 5%.
        asymptotic = np.zeros(layers, bool)
        asymptotic[1:] = np.abs(local / xi - 1) < 0.05
        if c_star == 1.0:
            # c = 1 is a fixed point at every width: fit log(1 - c^l) where the gap stands
            # ten standard errors above the noise.
            gap_m = 1 - c_m
            idx = np.flatnonzero(asymptotic & (gap_m > 10 * c_sem))
            if idx.size >= 5:
                span = np.arange(idx[0], idx[-1] + 1)
                span = span[gap_m[span] > 0]
                result["xi_fit"] = -1 / _slope(span.astype(float), np.log(gap_m[span]))
                result["xi_window"] = (int(idx[0]), int(idx[-1]))
        else:
            # A stable c* < 1 moves by O(1/N) at finite width: fit c^l = c_inf + A e^{-l/xi}
            # with c_inf free, from the onset of the asymptotic regime to the last layer.
            idx = np.flatnonzero(asymptotic)
            if idx.size and layers - idx[0] >= 8:
                span = np.arange(idx[0], layers)
                result["xi_fit"], result["c_limit"] = _fit_exponential(span, c_m[span])
                result["xi_window"] = (int(span[0]), int(span[-1]))
    return result


def _fit_exponential(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares ``y ~ c + A exp(-x / xi)``: (xi, c), xi on a fine logarithmic grid."""

    def residual(xi: float) -> tuple[float, float]:
        basis = np.stack([np.ones_like(x, dtype=float), np.exp(-(x - x[0]) / xi)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        return float(np.sum((basis @ coef - y) ** 2)), float(coef[0])

    grid = np.exp(np.linspace(np.log(0.5), np.log(10 * XI_MAX), 2001))
    best = min(grid, key=lambda xi: residual(xi)[0])
    return float(best), residual(best)[1]


def verdicts(theory: dict[str, Any], result: dict[str, Any]) -> dict[str, bool | None]:
    """Each target met (True), missed (False) or not applicable (None)."""
    xi = theory["xi_c"]
    xi_ok = None
    if xi < XI_MAX:
        xi_ok = bool(abs(result["xi_fit"] / xi - 1) <= XI_TOLERANCE)  # NaN -> False
    expected = result["slope_theory"]
    allowance = SLOPE_TOLERANCE * max(abs(expected), SLOPE_MIN)
    return {
        "q": result["q_error"] <= Q_TOLERANCE,
        "c": result["c_error"] <= C_TOLERANCE,
        "xi": xi_ok,
        "slope": abs(result["slope"] - expected) <= allowance,
    }


def rows_for(config: Config, settings: dict[str, Any], theory, result) -> list[dict[str, Any]]:
    """The tidy rows of one configuration, one per layer."""
    base = {
        "activation": config.spec,
        "label": config.label,
        "sigma_w2": config.sigma_w2,
        "sigma_b2": config.sigma_b2,
        "width": settings["width"],
        "networks": result["networks"],
        "gradient_networks": result["gradient_networks"],
        "method": settings["method"],
        "c_star": theory["c_star"],
        "xi_c": theory["xi_c"],
        "chi_1": theory["chi_1"],
    }
    return [
        {
            **base,
            "layer": layer,
            "q_measured": result["q_measured"][layer],
            "q_theory": theory["q"][layer],
            "q_sem": result["q_sem"][layer],
            "c_measured": result["c_measured"][layer],
            "c_theory": theory["c"][layer],
            "c_sem": result["c_sem"][layer],
            "log_grad_measured": result["log_grad_measured"][layer],
            "log_grad_theory": theory["log_grad"][layer],
        }
        for layer in range(len(theory["q"]))
    ]


def summary_markdown(settings: dict[str, Any], entries: Sequence[tuple], seconds: float) -> str:
    """The agreement table: one line per configuration, and whether each target is met."""
    mark = {True: "yes", False: "**no**", None: "n/a"}
    lines = [
        "# Signal propagation: wide random networks against the mean-field maps",
        "",
        f"Width {settings['width']}, depth {settings['depth']}; n independent networks per "
        f"configuration ({settings['method']} weights; at least {settings['networks']}, more "
        f"where the mean q^l needs them for a relative standard error below "
        f"{settings['q_precision']:g}, or the mean c^l for one below {settings['c_precision']:g} "
        f"where the decay length is fitted; at most {settings['max_networks']}; the gradient "
        f"in the first {settings['gradient_networks']} of them), inputs at "
        f"q^0 = q*, c^0 = {settings['c0']:g}; seed {settings['seed']}; {seconds:.1f} s in all.",
        "",
        f"Targets: q^l within {Q_TOLERANCE:.0%} of the length map's iterates at every layer; "
        f"c^l within {C_TOLERANCE} of the correlation map's; the decay length of |c^l - c*| "
        f"within {XI_TOLERANCE:.0%} of xi_c where xi_c < {XI_MAX:g} (fitted from the layer where "
        "the map itself decays at xi_c to 5%: log(1 - c^l) while 1 - c^l is > 10 standard errors "
        "where c* = 1, which holds at every width; c^l = limit + A exp(-l/xi) to the last layer "
        "where c* < 1, which moves by O(1/N) at finite width); the "
        f"per-layer slope of log|dh^L/dh^l| within {SLOPE_TOLERANCE:.0%} of -1/2 log chi_1 "
        f"(of {SLOPE_TOLERANCE * SLOPE_MIN:g} absolute where |1/2 log chi_1| < {SLOPE_MIN}).",
        "",
        "| configuration | n | q* | c* | chi_1 | xi_c | max relative q error | max c error "
        "| fitted decay length (layers) | gradient slope / layer (theory) | all met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, theory, result, ok in entries:
        xi_fit = result["xi_fit"]
        window = result["xi_window"]
        fit = "n/a" if ok["xi"] is None else f"{xi_fit:.2f} (layers {window[0]}-{window[1]}"
        if ok["xi"] is not None and result["c_limit"] != theory["c_star"]:
            fit += f"; limit {result['c_limit']:.4f}"
        fit += ")" if ok["xi"] is not None else ""
        met = all(v is not False for v in ok.values())
        lines.append(
            f"| {config.label} | {result['networks']} | {theory['q_star']:.4f} | "
            f"{theory['c_star']:.4f} | "
            f"{theory['chi_1']:.4f} | {_depth(theory['xi_c'])} | {result['q_error']:.2%} "
            f"({mark[ok['q']]}) | {result['c_error']:.4f} ({mark[ok['c']]}) | {fit} "
            f"({mark[ok['xi']]}) | {result['slope']:+.4f} ({result['slope_theory']:+.4f}, "
            f"{mark[ok['slope']]}) | {mark[met]} |"
        )
    return "\n".join(lines) + "\n"


def _depth(xi: float) -> str:
    return f"{xi:.2f}" if xi < 1e3 else "> 1000 (critical)"


def plot(entries: Sequence[tuple], path: Path, settings: dict[str, Any]) -> None:
    """q^l, c^l, |c^l - c*| and log|delta^l| against layer: measured points, theory lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (config, theory, result, _) in enumerate(entries):
        colour = colours[i % len(colours)]
        layers = np.arange(len(theory["q"]))
        every = max(1, len(layers) // 20)
        panels = (
            (theory["q"], result["q_measured"]),
            (theory["c"], result["c_measured"]),
            (
                np.abs(theory["c"] - theory["c_star"]),
                np.abs(result["c_measured"] - theory["c_star"]),
            ),
            (theory["log_grad"], result["log_grad_measured"]),
        )
        for ax, (line, points) in zip(axes, panels, strict=True):
            ax.plot(layers, line, "-", color=colour, lw=1.2, label=config.label)
            ax.plot(layers[::every], points[::every], "o", color=colour, ms=3, mfc="none")
    axes[0].set_ylabel("$q^l$ (length)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("$c^l$ (correlation of two inputs)")
    axes[2].set_ylabel("$|c^l - c^*|$")
    axes[2].set_yscale("log")
    axes[2].set_ylim(1e-4, 1.5)
    axes[3].set_ylabel("$\\log |\\partial \\langle z, h^L\\rangle / \\partial h^l|$")
    for ax in axes:
        ax.set_xlabel("layer $l$")
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(
        f"Random networks, width {settings['width']}, depth {settings['depth']}, "
        f"n = {min(r['networks'] for _, _, r, _ in entries)}-"
        f"{max(r['networks'] for _, _, r, _ in entries)} per configuration: "
        "points measured (mean), lines jaxact.theory",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=80)


# --- command line ---------------------------------------------------------------------

_nonnegative = number(float, lambda v: 0 <= v < math.inf, "a number >= 0")
_correlation = number(float, lambda v: -1 < v < 1, "a number in (-1, 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.signal_propagation",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--config", dest="configs", action="append", default=argparse.SUPPRESS,
        help="NAME[:p=v,q=w]@SIGMA_W2[,SIGMA_B2], repeatable (default: "
        + " ".join(DEFAULT_CONFIGS) + ")")  # fmt: skip
    add("--width", type=positive_int, default=1000, help="units per layer")
    add("--depth", type=positive_int, default=60, help="layers")
    add(
        "--networks",
        type=positive_int,
        default=1024,
        help="independent networks (one input pair each) per configuration, at least",
    )
    add(
        "--q-precision",
        type=_nonnegative,
        default=0.006,
        help="draw more networks until the standard error of q^l is below this (relative) "
        "at every layer; 0: exactly --networks",
    )
    add(
        "--c-precision",
        type=_nonnegative,
        default=0.001,
        help="likewise for the standard error of c^l (absolute), where xi_c < 30 (the "
        "decay length is fitted)",
    )
    add("--max-networks", type=positive_int, default=16384,
        help="the most networks --q-precision and --c-precision may ask for")  # fmt: skip
    add(
        "--gradient-networks",
        type=positive_int,
        default=2048,
        help="take the gradient (the backward pass) in this many of the networks, at most",
    )
    add("--c0", type=_correlation, default=0.2, help="correlation of the two inputs")
    add("--seed", type=int, default=0)
    add("--method", choices=("sampled", "dense"), default="sampled",
        help="draw the products W phi exactly (O(N) per layer) or the full matrices")  # fmt: skip
    add("--out", default="results/signal_propagation", help="output directory")
    add("--no-plot", dest="plot", action="store_false", default=argparse.SUPPRESS,
        help="tables and summary only")  # fmt: skip
    return parser


def _theory_in_background(
    configs: Sequence[Config], depth: int, c0: float
) -> tuple[list[concurrent.futures.Future], list[concurrent.futures.Future]]:
    """Every configuration's q*, then every theory profile, in a daemon thread (Ctrl-C need
    not wait for it): (q* futures, profile futures), in the order of ``configs``."""
    q_stars = [concurrent.futures.Future() for _ in configs]
    profiles = [concurrent.futures.Future() for _ in configs]

    def work():
        for config, q_star in zip(configs, q_stars, strict=True):
            background.settle(q_star, length_fixed_point, config)
        for config, q_star, profile in zip(configs, q_stars, profiles, strict=True):
            background.settle(
                profile,
                lambda c, q: theory_profile(c, depth, c0, q_star=q.result()),
                config,
                q_star,
            )

    background.in_background(work)
    return q_stars, profiles


def study(settings: dict[str, Any], configs: Sequence[Config], *, log=print) -> list[tuple]:
    """(config, theory, comparison, verdicts) for every configuration.

    The theory (quadrature driven from the host) runs in its own thread while the networks
    run: a simulation needs only q*, and the decay length once its first networks are in.
    With several JAX devices (the command line makes one CPU device per core, up to 8),
    each runs the configurations of one compiled program at a time, in its own thread.
    """
    q_stars, profiles = _theory_in_background(configs, settings["depth"], settings["c0"])
    entries: list[tuple | None] = [None] * len(configs)
    # The configurations that share a program (activation, with biases or without) run on
    # one device, so that it compiles once.
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault((config.activation, config.params, config.sigma_b2 > 0), []).append(i)
    todo = list(groups.values())
    lock = threading.Lock()

    def one(i: int, device: jax.Device) -> None:
        config, q_star, profile = configs[i], q_stars[i], profiles[i]
        start = time.perf_counter()

        def c_precision():
            # The decay-length fit needs the mean c^l to a few 1e-3 where it applies.
            xi = profile.result()["xi_c"]
            return settings["c_precision"] if xi < XI_MAX else 0.0

        sim = simulate(
            config,
            width=settings["width"],
            depth=settings["depth"],
            networks=settings["networks"],
            q0=q_star.result(),
            c0=settings["c0"],
            seed=settings["seed"],
            method=settings["method"],
            q_precision=settings["q_precision"],
            c_precision=c_precision,
            max_networks=settings["max_networks"],
            gradient_networks=settings["gradient_networks"],
            device=device,
        )
        theory = profile.result()
        result = compare(theory, sim)
        entries[i] = (config, theory, result, verdicts(theory, result))
        log(f"{config.label:28s} {time.perf_counter() - start:5.1f} s  n = "
            f"{result['networks']:5d}  max q error "
            f"{result['q_error']:.2%}  max c error {result['c_error']:.4f}")  # fmt: skip

    def worker(device: jax.Device) -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    group = todo.pop(0)
                for i in group:
                    one(i, device)
        except BaseException:
            with lock:
                todo.clear()  # the other workers stop after the configuration they are in
            raise

    hardware = jax.local_devices()[: len(groups)]
    workers = [background.in_background(worker, device) for device in hardware]
    concurrent.futures.wait(workers)  # no worker is left inside XLA when an error leaves
    for future in workers:
        future.result()
    return entries  # type: ignore[return-value]


SETTINGS = (
    "width", "depth", "networks", "c0", "seed", "method", "q_precision", "c_precision",
    "max_networks", "gradient_networks",
)  # fmt: skip


def run_study(
    out: Path, settings: dict[str, Any], configs: Sequence[Config], *, plot_figure: bool = True
) -> list[tuple]:
    """Runs the study and writes ``signal.csv``, ``summary.md`` and (optionally) ``signal.png``.

    Returns:
        The entries of :func:`study`.
    """
    start = time.perf_counter()
    entries = study(settings, configs)
    seconds = time.perf_counter() - start
    rows = [
        r
        for config, theory, result, _ in entries
        for r in rows_for(config, settings, theory, result)
    ]
    recording.write_csv(out / "signal.csv", FIELDS, rows)
    if plot_figure:
        plot(entries, out / "signal.png", settings)
    atomic_files.atomic_write_text(out / "summary.md", summary_markdown(settings, entries, seconds))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    """The command line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    plot_figure = getattr(args, "plot", True)
    devices.use_cpu_cores()  # its programs run side by side, one per device
    try:
        configs = [parse_config(t) for t in (getattr(args, "configs", None) or DEFAULT_CONFIGS)]
        prepare_output_folder(out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = {k: getattr(args, k) for k in SETTINGS}
    try:
        with atomic_files.output_lock(out):
            run_study(out, settings, configs, plot_figure=plot_figure)
    except atomic_files.OutputLocked as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing written: run the same command again",
              file=sys.stderr)  # fmt: skip
        return 130
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}/signal.csv, summary.md" + (", signal.png" if plot_figure else ""))
    return 0


if __name__ == "__main__":
    background.exit_process(main())
