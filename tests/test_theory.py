"""Mean-field signal propagation (jaxact.theory): known values, errors, jit/grad, deep networks."""

import math
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import mpmath
import pytest

import jaxact
from jaxact import theory

ELEMENTWISE = [n for n in jaxact.names() if jaxact.info(n).elementwise]


# --- known values ---------------------------------------------------------------------


def test_relu_is_critical_at_he():
    assert theory.chi1("relu", sigma_w=math.sqrt(2)) == pytest.approx(1.0, abs=1e-5)
    assert jaxact.critical_gain("relu") ** 2 == pytest.approx(2.0, rel=1e-5)
    # He keeps every q: the fixed point is the input variance.
    assert theory.fixed_point("relu", sigma_w=math.sqrt(2), q0=3.0) == pytest.approx(3.0)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_leaky_relu_is_critical_at_2_over_1_plus_a2(slope):
    expected = 2 / (1 + slope**2)
    assert jaxact.critical_gain("leaky_relu", negative_slope=slope) ** 2 == pytest.approx(
        expected, 1e-4
    )


def test_expectations_of_squared_derivatives():
    assert float(theory.chi("relu", 1.0, sigma_w=1.0)) == pytest.approx(0.5, abs=1e-6)
    elu = 0.5 + math.e**2 * 0.5 * math.erfc(2 / math.sqrt(2))  # 1/2 + e^2 Phi(-2)
    assert float(theory.chi("elu", 1.0, sigma_w=1.0)) == pytest.approx(elu, rel=1e-5)


def test_tanh_critical_point_at_sigma_b2_0_05():
    sigma_b = math.sqrt(0.05)
    sigma_w = jaxact.critical_gain("tanh", sigma_b=sigma_b)
    assert sigma_w**2 == pytest.approx(1.761, abs=2e-3)
    assert theory.fixed_point("tanh", sigma_w=sigma_w, sigma_b=sigma_b) == pytest.approx(
        0.570, abs=2e-3
    )
    assert theory.chi1("tanh", sigma_w=sigma_w, sigma_b=sigma_b) == pytest.approx(1.0, abs=1e-4)


def test_tanh_critical_point_tends_to_1_0_as_sigma_b_vanishes():
    values = []
    for sigma_b in (0.3, 0.1, 0.03, 0.01):
        sigma_w = jaxact.critical_gain("tanh", sigma_b=sigma_b)
        values.append((sigma_w**2, theory.fixed_point("tanh", sigma_w=sigma_w, sigma_b=sigma_b)))
    sw2s, qs = zip(*values, strict=True)
    assert list(sw2s) == sorted(sw2s, reverse=True) and list(qs) == sorted(qs, reverse=True)
    assert sw2s[-1] == pytest.approx(1.0, abs=0.1) and qs[-1] < 0.05
    with pytest.raises(ValueError, match=r"q\*=0"):
        jaxact.critical_gain("tanh", sigma_b=0.0)


def test_selu_with_lecun_init():
    assert theory.fixed_point("selu", sigma_w=1.0) == pytest.approx(1.0, abs=1e-3)
    assert theory.chi1("selu", sigma_w=1.0) == pytest.approx(1.0716, abs=1e-3)


def test_sigmoid_at_unit_weights():
    assert theory.fixed_point("sigmoid", sigma_w=1.0) == pytest.approx(0.265, abs=1e-3)
    chi_1 = theory.chi1("sigmoid", sigma_w=1.0)
    assert chi_1 == pytest.approx(0.0557, abs=2e-4)
    assert math.sqrt(chi_1) == pytest.approx(0.236, abs=1e-3)  # gradient shrink per layer


def test_quadrature_matches_mpmath_for_sharp_smooth_activations():
    mpmath.mp.dps = 20
    for q in (0.01, 1.0, 100.0):
        exact = mpmath.quad(
            lambda z, q=q: mpmath.tanh(mpmath.sqrt(q) * z) ** 2 * mpmath.npdf(z),
            [-mpmath.inf, -1, 0, 1, mpmath.inf],
        )
        got = float(theory.length_map("tanh", q, sigma_w=1.0))
        assert got == pytest.approx(float(exact), rel=2e-6)


def test_correlation_and_depth_scales():
    assert theory.correlation_fixed_point("tanh", sigma_w=0.8, sigma_b=0.1) == 1.0
    c = theory.correlation_fixed_point("tanh", sigma_w=2.0, sigma_b=0.5)
    assert 0 < c < 1
    c_map = float(theory.correlation_map("tanh", c, sigma_w=2.0, sigma_b=0.5))
    assert c_map == pytest.approx(c, abs=1e-4)
    xi_q, xi_c = theory.depth_scales("tanh", sigma_w=1.0, sigma_b=0.3)
    assert 0 < xi_q < xi_c < math.inf
    # At criticality the correlation depth scale diverges.
    sigma_w = jaxact.critical_gain("tanh", sigma_b=0.3)
    assert theory.depth_scales("tanh", sigma_w=sigma_w * 1.001, sigma_b=0.3).xi_c > 100


def test_variance_preserving_gain():
    assert jaxact.variance_preserving_gain("relu") ** 2 == pytest.approx(2.0, rel=1e-5)
    assert jaxact.variance_preserving_gain("selu") == pytest.approx(1.0, abs=1e-3)
    assert jaxact.variance_preserving_gain("identity") == pytest.approx(1.0, rel=1e-5)


# --- pure JAX ---------------------------------------------------------------------------


def test_maps_are_jittable_and_differentiable():
    f = jax.jit(lambda q, s: theory.length_map("tanh", q, sigma_w=s, sigma_b=0.1))
    q = jnp.array([0.5, 1.0, 2.0])
    assert f(q, 1.5).shape == (3,)
    grad = jax.grad(lambda s: theory.chi("tanh", 1.0, sigma_w=s))(1.5)
    assert float(grad) == pytest.approx(2 * float(theory.chi("tanh", 1.0, sigma_w=1.0)) * 1.5, 1e-5)
    # Through the fixed point (implicit function theorem) versus a central difference.
    fp = lambda s: theory.fixed_point("tanh", sigma_w=s, sigma_b=0.3)
    analytic = float(jax.grad(fp)(1.3))
    numeric = (fp(1.3 + 1e-3) - fp(1.3 - 1e-3)) / 2e-3
    assert analytic == pytest.approx(numeric, rel=1e-2)
    assert float(jax.jit(lambda s: theory.chi1("tanh", sigma_w=s, sigma_b=0.3))(1.3)) > 0


# --- bad input ---------------------------------------------------------------------------


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation"):
        jaxact.critical_gain("relux")
    with pytest.raises(ValueError, match="negative_slope"):
        jaxact.critical_gain("leaky_relu", negative_slop=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        jaxact.critical_gain("tanh", sigma_b=-0.1)
    with pytest.raises(ValueError, match=">= 0"):
        theory.length_map("tanh", 1.0, sigma_w=-1.0)
    with pytest.raises(ValueError, match="variance"):
        theory.chi("tanh", -1.0, sigma_w=1.0)
    with pytest.raises(ValueError, match="finite"):
        jaxact.critical_gain("leaky_relu", negative_slope=math.nan)
    with pytest.raises(ValueError, match="finite"):
        theory.fixed_point("tanh", sigma_w=math.inf)
    with pytest.raises(ValueError, match="elementwise"):
        jaxact.critical_gain("softmax")


@pytest.mark.parametrize(
    ("name", "sigma_b"),
    [("sigmoid", 0.0), ("sigmoid", 0.5), ("gelu", 0.05), ("silu", 0.05), ("mish", 0.05),
     ("softplus", 0.05), ("relu", 0.1), ("exponential", 0.0)],
)  # fmt: skip
def test_no_critical_point_raises_and_suggests(name, sigma_b):
    with pytest.raises(ValueError, match="no critical initialisation") as error:
        jaxact.critical_gain(name, sigma_b=sigma_b)
    assert "sigma_b=" in str(error.value) and "init" in str(error.value)
    with pytest.raises(ValueError):
        jaxact.critical_init(name, sigma_b=sigma_b)


def test_gelu_suggestion_works():
    with pytest.raises(ValueError, match=r"Try sigma_b=(\d+\.\d+)") as error:
        jaxact.critical_gain("gelu", sigma_b=0.05)
    suggested = float(re.search(r"Try sigma_b=(\d+\.\d+)", str(error.value)).group(1))
    sigma_w = jaxact.critical_gain("gelu", sigma_b=suggested)
    assert theory.chi1("gelu", sigma_w=sigma_w, sigma_b=suggested) == pytest.approx(1, abs=1e-3)


def test_saturated_critical_point_is_declined_but_offered():
    with pytest.raises(ValueError, match="saturated") as error:
        jaxact.critical_gain("sigmoid")
    message = str(error.value)
    assert "non-zero mean" in message and "allow_saturated=True" in message
    assert "Poole" in message  # the criterion is jaxact's own, and says so
    sigma_w = jaxact.critical_gain("sigmoid", allow_saturated=True)
    q = theory.fixed_point("sigmoid", sigma_w=sigma_w)
    assert sigma_w**2 == pytest.approx(103.0, abs=0.1) and q == pytest.approx(45.6, abs=0.1)
    # Independently, with mpmath: chi_1 = 1 and L(q*) = q* there.
    mpmath.mp.dps = 20
    expect = lambda f: mpmath.quad(lambda z: f(mpmath.sqrt(q) * z) * mpmath.npdf(z), [-12, 0, 12])
    sig = lambda x: 1 / (1 + mpmath.exp(-x))
    chi_1 = sigma_w**2 * expect(lambda x: (sig(x) * (1 - sig(x))) ** 2)
    assert float(chi_1) == pytest.approx(1.0, abs=1e-4)
    assert float(sigma_w**2 * expect(lambda x: sig(x) ** 2)) == pytest.approx(q, rel=1e-4)


@pytest.mark.parametrize("name", ["gelu", "silu", "mish"])
def test_repelling_critical_point_is_no_stable_critical_point(name):
    with pytest.raises(ValueError, match="not stable") as error:
        jaxact.critical_gain(name, sigma_b=0.05)
    assert "L'(q*)=" in str(error.value) and "Try sigma_b=" in str(error.value)


def test_relu_with_a_bias_is_told_to_drop_the_bias():
    with pytest.raises(ValueError, match=r"Use sigma_b=0 \(critical at sigma_w=1.414\)"):
        jaxact.critical_gain("relu", sigma_b=0.3)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [("rrelu", {"key": jax.random.key(0)}, "mean slope"),
     ("prelu", {"negative_slope": jnp.array([0.1, 0.2])}, r"shape \(2,\).*scalar"),
     ("hard_sigmoid", {"slope": 0.0}, "slope must be")],
)  # fmt: skip
def test_theory_edges_are_clear_errors(name, params, message):
    with pytest.raises(ValueError, match=message):
        jaxact.critical_gain(name, **params)


def test_correlation_fixed_point_near_criticality():
    # Reference values from an independent mpmath computation (tanh, sigma_b^2 = 0.05).
    sigma_b = math.sqrt(0.05)
    xi_c = theory.depth_scales("tanh", sigma_w=math.sqrt(1.78), sigma_b=sigma_b).xi_c
    assert xi_c == pytest.approx(252.0, rel=0.01)
    c = theory.correlation_fixed_point("tanh", sigma_w=math.sqrt(1.78), sigma_b=sigma_b)
    assert c == pytest.approx(0.97537, abs=3e-5)
    with jax.enable_x64(True):  # closer still to criticality, beyond float32's resolution
        c = theory.correlation_fixed_point("tanh", sigma_w=math.sqrt(1.761), sigma_b=sigma_b)
    assert c == pytest.approx(0.99994, abs=2e-5)


def test_return_types():
    c = jnp.array([[0.1, 0.5]])
    out = theory.correlation_map("tanh", c, sigma_w=1.2, sigma_b=0.3)
    assert isinstance(out, jax.Array) and out.shape == c.shape
    assert isinstance(theory.correlation_fixed_point("tanh", sigma_w=2.0, sigma_b=0.5), float)
    assert isinstance(theory.fixed_point("tanh", sigma_w=2.0, sigma_b=0.5), float)
    with pytest.raises(ValueError, match="correlation"):
        theory.correlation_map("tanh", 1.5, sigma_w=1.2)


def test_gain_is_a_deprecated_alias_of_critical_gain():
    with pytest.warns(DeprecationWarning, match="critical_gain"):
        aliased = theory.gain("tanh", sigma_b=0.3)
    assert (
        aliased
        == jaxact.critical_gain("tanh", sigma_b=0.3)
        == theory.critical_gain("tanh", sigma_b=0.3)
    )
    assert not hasattr(jaxact, "gain")  # sigmoid's gain= is the only gain in jaxact's namespace


# --- initializers -----------------------------------------------------------------------


def test_critical_init_variance_and_bias():
    w = jaxact.critical_init("tanh", sigma_b=0.3)(jax.random.key(0), (400, 500))
    assert float(jnp.var(w)) * 400 == pytest.approx(
        jaxact.critical_gain("tanh", sigma_b=0.3) ** 2, 0.02
    )
    b = jaxact.critical_bias_init(0.3)(jax.random.key(1), (20000,))
    assert float(jnp.std(b)) == pytest.approx(0.3, rel=0.03)
    assert not jnp.any(jaxact.critical_bias_init(0.0)(jax.random.key(1), (3,)))


def test_core_imports_without_flax():
    code = "import sys, jaxact; jaxact.critical_gain('relu'); assert 'flax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- deep networks at critical init ------------------------------------------------------

DEPTH, WIDTH, BATCH = 50, 256, 64


# The smallest of (0, 0.05, sqrt(0.05)) at which each activation has a critical point
# (test_sweep_finds_these_settings checks the list against critical_gain).
CRITICAL = (
    ("celu", 0.05), ("elu", 0.05), ("hard_tanh", 0.05), ("identity", 0.0),
    ("leaky_relu", 0.0), ("prelu", 0.0), ("relu", 0.0), ("relu6", 0.0), ("rrelu", 0.0),
    ("selu", 0.05), ("soft_sign", 0.05), ("tanh", 0.05), ("threshold", 0.0),
)  # fmt: skip


def _critical_settings():
    """(name, sigma_b) for every elementwise activation that critical_gain accepts at a small
    sigma_b, the smallest such sigma_b."""
    settings = []
    for name in ELEMENTWISE:
        for sigma_b in (0.0, 0.05, math.sqrt(0.05)):
            try:
                jaxact.critical_gain(name, sigma_b=sigma_b)
            except ValueError:
                continue
            settings.append((name, sigma_b))
            break
    return settings


def _preactivation_gradient_norms(name, sigma_w, sigma_b, q):
    fn = jaxact.get(name)
    keys = jax.random.split(jax.random.key(0), 4)
    weights = jax.random.normal(keys[0], (DEPTH, WIDTH, WIDTH)) * (sigma_w / math.sqrt(WIDTH))
    biases = jax.random.normal(keys[1], (DEPTH, WIDTH)) * sigma_b
    h0 = jax.random.normal(keys[2], (BATCH, WIDTH)) * math.sqrt(q)
    readout = jax.random.normal(keys[3], (BATCH, WIDTH))

    def loss(perturbations):
        def layer(h, xs):
            w, b, e = xs
            return fn(h + e) @ w.T + b, None

        out, _ = jax.lax.scan(layer, h0, (weights, biases, perturbations))
        return jnp.sum(out * readout)

    # The gradient with respect to a zero perturbation of layer l's pre-activations.
    grads = jax.jit(jax.grad(loss))(jnp.zeros((DEPTH, BATCH, WIDTH)))
    return jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2)))


def test_sweep_finds_these_settings():
    assert sorted(_critical_settings()) == sorted(CRITICAL)


@pytest.mark.parametrize(("name", "sigma_b"), CRITICAL)
def test_deep_network_keeps_gradients_at_critical_init(name, sigma_b):
    sigma_w = jaxact.critical_gain(name, sigma_b=sigma_b)
    q = theory.fixed_point(name, sigma_w=sigma_w, sigma_b=sigma_b)
    norms = _preactivation_gradient_norms(name, sigma_w, sigma_b, q)
    assert bool(jnp.all(jnp.isfinite(norms)))
    assert float(norms.max() / norms.min()) <= 2.0, norms
