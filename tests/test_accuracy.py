"""Accuracy of the smooth activations against the mpmath reference in experiments/accuracy.py."""

import jax
import jax.numpy as jnp
import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxact
from experiments import accuracy
from jaxact import smooth

EPS32 = 2.0**-23
CASES = {label: (name, params) for label, name, params in accuracy.CASES}


def _fn(name):
    return getattr(jaxact, name)


@pytest.mark.parametrize("label", list(CASES))
def test_float32_grid(label):
    name, params = CASES[label]
    result = accuracy.errors(_fn(name), name, accuracy.case_grid(name), params=params)
    assert not result["value_nonfinite"].any()
    assert not result["derivative_nonfinite"].any()
    worst = result["x"][np.argmax(result["value"])]
    assert result["value"].max() <= 4.0, f"value at x={worst}"
    worst = result["x"][np.argmax(result["derivative"])]
    assert result["derivative"].max() <= 8.0, f"derivative at x={worst}"


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize(
    "label", ["sigmoid", "tanh", "softplus", "silu", "mish", "gelu(approximate=False)", "elu"]
)
def test_half_types_within_one_ulp(label, dtype):
    name, _ = CASES[label]
    result = accuracy.errors(_fn(name), name, accuracy.case_grid(name, dtype, dense=200))
    assert result["value"].max() <= 1.0
    assert result["derivative"].max() <= 1.0


@pytest.mark.parametrize("label", list(CASES))
def test_float64_sane(label):
    """float64 (measured: values <= 5 eps, derivatives <= 7 eps, hard_silu's excepted)."""
    name, params = CASES[label]
    with jax.enable_x64(True):
        x = accuracy.case_grid(name, np.float64)
        result = accuracy.errors(_fn(name), name, x, params=params)
    assert not result["value_nonfinite"].any()
    assert not result["derivative_nonfinite"].any()
    assert result["value"].max() <= 8.0
    assert result["derivative"].max() <= 16.0


@pytest.mark.parametrize("label", list(CASES))
def test_nan_in_nan_out(label):
    name, params = CASES[label]
    assert jnp.isnan(_fn(name)(jnp.float32(jnp.nan), **params))


@pytest.mark.parametrize("label", list(CASES))
def test_infinities_give_limits_with_finite_derivative(label):
    name, params = CASES[label]
    fn = _fn(name)
    huge = np.array([-np.finfo(np.float32).max, np.finfo(np.float32).max], np.float32)
    hi, _, slope_hi, _ = accuracy.reference(name, huge, params)
    with np.errstate(over="ignore", invalid="ignore"):
        limit = np.where(np.abs(hi) > 1e30, np.sign(hi) * np.inf, hi.astype(np.float32))
    limit = np.where(np.abs(hi) < accuracy.TINY, 0.0, limit)
    x = jnp.array([-np.inf, np.inf], jnp.float32)
    np.testing.assert_array_equal(np.asarray(fn(x, **params)), limit)
    slopes = np.asarray(jax.vmap(jax.grad(lambda v: fn(v, **params)))(x))
    unbounded = np.abs(slope_hi) > 1e30  # exponential'(inf) is inf itself
    assert np.isfinite(slopes[~unbounded]).all()
    np.testing.assert_allclose(slopes, np.where(unbounded, np.inf, slope_hi), rtol=1e-6, atol=1e-30)


def test_measurement_is_not_vacuous():
    x = np.array([20.0], np.float32)
    assert accuracy.errors(jax.nn.sigmoid, "sigmoid", x)["derivative"][0] >= 0.99 / EPS32
    x = np.array([-20.0], np.float32)
    assert accuracy.errors(jax.nn.elu, "elu", x)["derivative"][0] >= 0.99 / EPS32
    assert accuracy.errors(jaxact.sigmoid, "sigmoid", x)["derivative"][0] <= 4


def test_issue_examples():
    np.testing.assert_allclose(jax.grad(jaxact.sigmoid)(20.0), 2.0611536e-9, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(jaxact.tanh)(10.0), 8.2446144e-9, rtol=1e-6)
    assert jaxact.softplus(1000.0) == 1000.0
    assert jaxact.softplus(-1000.0) == 0.0
    assert jax.grad(jaxact.softplus)(1000.0) == 1.0


def test_textbook_derivative_formulas_float64():
    """The right formulas (ERRATA): tanh' = 1 - tanh^2, sigmoid' = s (1 - s); not (1 - tanh)^2."""
    with jax.enable_x64(True):
        x = jnp.linspace(-3.0, 3.0, 61, dtype=jnp.float64)
        t, s = jaxact.tanh(x), jaxact.sigmoid(x)
        np.testing.assert_allclose(jax.vmap(jax.grad(jaxact.tanh))(x), 1 - t**2, rtol=1e-13)
        np.testing.assert_allclose(jax.vmap(jax.grad(jaxact.sigmoid))(x), s * (1 - s), rtol=1e-13)
        assert not np.allclose(jax.vmap(jax.grad(jaxact.tanh))(x), (1 - t) ** 2)


def _close(constant, exact):
    return abs(constant - exact) <= 2e-16 * abs(exact)


def _taylor_at_root(slope, guess):
    with mpmath.workdps(60):
        root = mpmath.findroot(slope, mpmath.mpf(guess))
        return root, mpmath.taylor(slope, root, 18)[1:]


def test_hard_coded_constants():
    with mpmath.workdps(60):
        w = mpmath.lambertw(1 / mpmath.e).real
        assert abs(mpmath.mpf(smooth._SILU_ROOT) - (-1 - w)) < mpmath.mpf(10) ** -50
        assert _close(smooth._SILU_EXP_ROOT, float(w))

        root, coefficients = _taylor_at_root(lambda x: accuracy._gelu_slope(x, False), -0.75)
        assert abs(mpmath.mpf(smooth._GELU_ROOT) - root) < mpmath.mpf(10) ** -50
        np.testing.assert_allclose(smooth._GELU_TAYLOR, [float(c) for c in coefficients], 1e-15)
        root, coefficients = _taylor_at_root(lambda x: accuracy._gelu_slope(x, True), -0.75)
        assert abs(mpmath.mpf(smooth._GELU_TANH_ROOT) - root) < mpmath.mpf(10) ** -50
        expected = [float(c) for c in coefficients]
        np.testing.assert_allclose(smooth._GELU_TANH_TAYLOR, expected, 1e-15)

        mills = lambda t: mpmath.ncdf(-t) / mpmath.npdf(t)
        expected = [float(c) for c in mpmath.taylor(mills, smooth._MILLS_CENTRE, 22)]
        np.testing.assert_allclose(smooth._MILLS_TAYLOR, expected, 1e-15)

        k1 = 2 * mpmath.sqrt(2 / mpmath.pi)
        assert abs(mpmath.mpf(smooth._GELU_TANH_K1) / k1 - 1) < mpmath.mpf(10) ** -35
        k3 = k1 * mpmath.mpf("0.044715")
        assert abs(mpmath.mpf(smooth._GELU_TANH_K3) / k3 - 1) < mpmath.mpf(10) ** -35

        x1 = mpmath.findroot(accuracy._mish_slope, mpmath.mpf(-1.19))
        assert abs(mpmath.mpf(smooth._MISH_ROOT) - x1) < mpmath.mpf(10) ** -50
        u1 = mpmath.exp(x1)
        assert _close(smooth._MISH_U1, float(u1))
        assert _close(smooth._MISH_U1_SQUARED, float(u1**2))
        assert _close(smooth._MISH_U1_CUBED, float(u1**3))
        assert _close(smooth._MISH_E1_COEFFICIENT, float(u1 * (6 + 4 * x1)))


@settings(max_examples=25, deadline=None)
@given(
    st.floats(-60, 60, width=32),
    st.sampled_from(["sigmoid", "silu", "mish", "gelu(approximate=True)", "silu(beta=1.7)"]),
)
def test_random_float32_within_bounds(x, label):
    name, params = CASES[label]
    result = accuracy.errors(_fn(name), name, np.array([x], np.float32), params=params)
    assert result["value"][0] <= 4
    assert result["derivative"][0] <= 8


@settings(max_examples=25, deadline=None)
@given(st.floats(-20, 20, width=32), st.floats(0.25, 4, width=32))
def test_random_gain_sigmoid(x, gain):
    result = accuracy.errors(
        jaxact.sigmoid, "sigmoid", np.array([x], np.float32), params={"gain": gain}
    )
    assert result["value"][0] <= 4
    assert result["derivative"][0] <= 8
