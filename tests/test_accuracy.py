"""Accuracy of the smooth activations against the mpmath reference in experiments/accuracy.py."""

import inspect

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


# Targets in eps of the dtype: value, first and second derivative (nested jax.grad).
TARGETS = {np.float32: (4.0, 8.0, 16.0), np.float64: (8.0, 16.0, 16.0)}


def _check_grid(label, dtype):
    """Every point of the case's grid (kinks, +-0 and derivative zeros included), one
    jitted call per derivative order: value, f', f'' within the targets, f''' finite."""
    name, params = CASES[label]
    x = accuracy.case_grid(name, dtype, params)
    result = accuracy.errors(_fn(name), name, x, params=params, order=3)
    for kind, target in zip(
        ("value", "derivative", "second_derivative"), TARGETS[dtype], strict=True
    ):
        nonfinite = result[kind + "_nonfinite"]
        assert not nonfinite.any(), f"{kind} not finite at x={x[nonfinite]}"
        worst = np.argmax(result[kind])
        assert result[kind][worst] <= target, f"{kind}: {result[kind][worst]:.3g} eps at {x[worst]}"
    nonfinite = result["third_derivative_nonfinite"]
    assert not nonfinite.any(), f"third derivative not finite at x={x[nonfinite]}"
    if dtype == np.float64:  # the third derivative is right, not only finite
        h = 2.0**-20  # central difference of f'' (same shape: no new compilation)
        kinks = np.asarray(accuracy.breakpoints(name) or (np.inf,))
        inside = (np.abs(x) < 30) & (np.abs(x[:, None] - kinks).min(axis=1) > 4 * h)
        up = accuracy.evaluate(_fn(name), x + h, params, order=2)[2]
        down = accuracy.evaluate(_fn(name), x - h, params, order=2)[2]
        with np.errstate(invalid="ignore"):  # exponential: inf - inf beyond float64's range
            difference = (up - down) / (2 * h)
        np.testing.assert_allclose(result["d3y"][inside], difference[inside], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("label", list(CASES))
def test_float32_grid(label):
    _check_grid(label, np.float32)


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
def test_float64_grid(label):
    """float64, relative down to 2**-1000 (measured: at most 3.5, 7.5 and 4.2 eps)."""
    with jax.enable_x64(True):
        _check_grid(label, np.float64)


@pytest.mark.parametrize("label", list(CASES))
def test_nan_in_nan_out(label):
    name, params = CASES[label]
    assert jnp.isnan(_fn(name)(jnp.float32(jnp.nan), **params))


@pytest.mark.parametrize("label", list(CASES))
def test_infinities_give_limits_with_finite_derivative(label):
    name, params = CASES[label]
    fn = _fn(name)
    huge = np.array([-np.finfo(np.float32).max, np.finfo(np.float32).max], np.float32)
    hi, _, slope_hi, *_ = accuracy.reference(name, huge, params)
    with np.errstate(over="ignore", invalid="ignore"):
        limit = np.where(np.abs(hi) > 1e30, np.sign(hi) * np.inf, hi.astype(np.float32))
    limit = np.where(np.abs(hi) < accuracy.TINY, 0.0, limit)
    x = jnp.array([-np.inf, np.inf], jnp.float32)
    np.testing.assert_array_equal(np.asarray(fn(x, **params)), limit)
    slopes = np.asarray(jax.vmap(jax.grad(lambda v: fn(v, **params)))(x))
    unbounded = np.abs(slope_hi) > 1e30  # exponential'(inf) is inf itself
    assert np.isfinite(slopes[~unbounded]).all()
    np.testing.assert_allclose(slopes, np.where(unbounded, np.inf, slope_hi), rtol=1e-6, atol=1e-30)


@jax.custom_jvp
def _elu_cancelling(x):
    return jnp.where(x > 0, x, jnp.expm1(x))


# elu' = elu + 1 on the left: in float32, expm1(-20) + 1 is 0 (truth 2e-9).
_elu_cancelling.defjvps(lambda t, y, x: jnp.where(x > 0, 1.0, y + 1.0) * t)


def test_measurement_is_not_vacuous():
    x = np.array([20.0], np.float32)
    assert accuracy.errors(jax.nn.sigmoid, "sigmoid", x)["derivative"][0] >= 0.99 / EPS32
    x = np.array([-20.0], np.float32)
    assert accuracy.errors(_elu_cancelling, "elu", x)["derivative"][0] >= 0.99 / EPS32
    assert accuracy.errors(jaxact.sigmoid, "sigmoid", x)["derivative"][0] <= 4
    # jax's own derivative of sigma' near 0 is a difference of nearly equal terms.
    x = np.array([1e-8], np.float32)
    result = accuracy.errors(jax.nn.sigmoid, "sigmoid", x, order=2)
    assert result["second_derivative"][0] >= 0.5 / EPS32
    assert accuracy.errors(jaxact.sigmoid, "sigmoid", x, order=2)["second_derivative"][0] <= 4


# --- kinks, signed zeros and derivative zeros ---------------------------------------------


def _one_sided(derivative, kink, params):
    with mpmath.workdps(accuracy.DPS):
        step = mpmath.mpf(10) ** -30
        return [float(derivative(mpmath.mpf(kink) + s, **params)) for s in (-step, step)]


@pytest.mark.parametrize(
    "label", [label for label, (name, _) in CASES.items() if accuracy.breakpoints(name)]
)
def test_kinks_follow_jax_nn(label):
    """At a kink (and at -0 for a kink at 0) the references take jax.nn's derivatives,
    which lie between the one-sided ones; jaxact gives exactly the references."""
    name, params = CASES[label]
    reference = accuracy.REFERENCES[name]
    x = np.array(sorted(set(accuracy.breakpoints(name))), np.float64)
    x = np.concatenate([x, -x[x == 0]])  # -0 beside 0
    nn = accuracy.jax_nn_function(name, params)
    with jax.enable_x64(True):
        ours = accuracy.evaluate(_fn(name), x, params, order=2)
        theirs = accuracy.evaluate(nn, x, params, order=2) if nn else ours
    rounded = {k: accuracy._round_param(v, np.float64) for k, v in params.items()}
    for order in (1, 2):
        truth = accuracy.reference(name, x, params)[2 * order]
        np.testing.assert_array_equal(ours[order], truth, err_msg=f"order {order}")
        for xi, t, nn_value in zip(x, truth, theirs[order], strict=True):
            low, high = sorted(_one_sided(reference[order], xi, rounded))
            assert low <= t <= high, (order, xi)
            if (name, abs(float(xi)), order) in accuracy.KINK_EXCEPTIONS:
                assert low <= nn_value <= high and nn_value != t
            else:
                assert nn_value == t, (order, xi, nn_value, t)


@pytest.mark.parametrize(
    "label", [label for label, (name, _) in CASES.items() if name in accuracy.DERIVATIVE_ZEROS]
)
def test_grid_holds_signed_zeros_and_derivative_zeros(label):
    name, params = CASES[label]
    x = accuracy.case_grid(name, np.float32, params)
    zeros = x[x == 0]
    assert np.signbit(zeros).any() and not np.signbit(zeros).all()
    for order, root in accuracy.derivative_zeros(name, tuple(sorted(params.items()))):
        nearest = np.float32(root)
        assert {float(np.nextafter(nearest, np.float32(-np.inf))), float(nearest)} <= set(
            x.tolist()
        )
        ref = accuracy.reference(name, np.array([root]), params, dtype=np.float64)
        assert abs(ref[2 * order][0]) < 1e-14 * max(1.0, abs(ref[2 * order - 2][0]))


def test_tail_derivatives_and_softplus_limits():
    np.testing.assert_allclose(jax.grad(jaxact.sigmoid)(20.0), 2.0611536e-9, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(jaxact.tanh)(10.0), 8.2446144e-9, rtol=1e-6)
    assert jaxact.softplus(1000.0) == 1000.0
    assert jaxact.softplus(-1000.0) == 0.0
    assert jax.grad(jaxact.softplus)(1000.0) == 1.0


def test_textbook_derivative_formulas_float64():
    """The textbook formulas: tanh' = 1 - tanh^2 (not (1 - tanh)^2), sigmoid' = s (1 - s)."""
    with jax.enable_x64(True):
        x = jnp.linspace(-3.0, 3.0, 61, dtype=jnp.float64)
        t, s = jaxact.tanh(x), jaxact.sigmoid(x)
        np.testing.assert_allclose(jax.vmap(jax.grad(jaxact.tanh))(x), 1 - t**2, rtol=1e-13)
        np.testing.assert_allclose(jax.vmap(jax.grad(jaxact.sigmoid))(x), s * (1 - s), rtol=1e-13)
        assert not np.allclose(jax.vmap(jax.grad(jaxact.tanh))(x), (1 - t) ** 2)


def _close(constant, exact):
    return abs(constant - exact) <= 2e-16 * abs(exact)


def _taylor_at_root(slope, guess, degree=18):
    with mpmath.workdps(60):
        start = mpmath.mpf(guess)
        root = mpmath.findroot(slope, (start, start + mpmath.mpf(10) ** -6))  # secant
        return root, mpmath.taylor(slope, root, degree)[1:]


def _chebyshev_fit(fn, root, half_width, degree):
    """The polynomial interpolating fn(root + d) / d at the Chebyshev nodes of |d| <= half_width."""
    with mpmath.workdps(50):
        root = mpmath.mpf(root)
        nodes = [
            half_width * mpmath.mpf(float(np.cos((2 * k + 1) * np.pi / (2 * degree + 2))))
            for k in range(degree + 1)
        ]
        matrix = mpmath.matrix([[d**j for j in range(degree + 1)] for d in nodes])
        values = mpmath.matrix([fn(root + d) / d for d in nodes])
        return [float(c) for c in mpmath.lu_solve(matrix, values)]


@pytest.mark.parametrize(
    "fit, fn, root, half_width",
    [
        ("_GELU_FIT32", lambda x: accuracy._gelu_slope(x, False), "_GELU_ROOT", "_NEAR_ROOT"),
        (
            "_GELU_TANH_FIT32",
            lambda x: accuracy._gelu_slope(x, True),
            "_GELU_TANH_ROOT",
            "_NEAR_ROOT",
        ),
        ("_SILU_BRACKET_SERIES", lambda z: 1 + z + mpmath.exp(z), "_SILU_ROOT", "_SILU_WINDOW"),
    ],
)
def test_float32_fits_near_roots(fit, fn, root, half_width):
    """float32's polynomials near a derivative's zero: refitted, and within 0.25 eps of the
    quotient they stand for on the whole window (the series' float64 terms: the Taylor ones)."""
    coefficients = getattr(smooth, fit)
    if fit == "_SILU_BRACKET_SERIES":
        coefficients, taylor = coefficients
        with mpmath.workdps(50):
            e0 = mpmath.exp(mpmath.mpf(smooth._SILU_ROOT))
            expected = [1 + e0] + [e0 / mpmath.factorial(k + 1) for k in range(1, len(taylor))]
        np.testing.assert_allclose(taylor, [float(c) for c in expected], 1e-15)
    root, half_width = getattr(smooth, root), getattr(smooth, half_width)
    refitted = _chebyshev_fit(fn, root, half_width, len(coefficients) - 1)
    np.testing.assert_allclose(coefficients, refitted, rtol=1e-12, atol=1e-15)
    worst = 0.0
    with mpmath.workdps(50):
        for d in np.linspace(-half_width, half_width, 100):  # even count: d = 0 is not on it
            d = mpmath.mpf(float(d))
            fitted = sum(c * d**j for j, c in enumerate(coefficients))
            exact = fn(mpmath.mpf(root) + d) / d
            worst = max(worst, float(abs(fitted / exact - 1)))
    assert worst <= 0.25 * EPS32, f"{worst / EPS32:.3f} eps"


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

        z2 = mpmath.findroot(lambda z: 2 - z * mpmath.tanh(z / 2), mpmath.mpf(2.4))
        assert abs(mpmath.mpf(smooth._SILU_CURVATURE_ROOT) - z2) < mpmath.mpf(10) ** -50
        assert _close(smooth._SILU_EXP_NEG_CURVATURE_ROOT, float(mpmath.exp(-z2)))
        for prefix, curvature, guess in [
            ("_MISH_CURVATURE_LEFT", accuracy._mish_curvature, -2.2564),
            ("_MISH_CURVATURE_RIGHT", accuracy._mish_curvature, 1.4906),
            ("_GELU_TANH_CURVATURE", lambda x: accuracy._gelu_curvature(x, True), 1.4185),
        ]:
            root, coefficients = _taylor_at_root(curvature, guess, 22)
            assert abs(mpmath.mpf(getattr(smooth, prefix + "_ROOT")) - root) < mpmath.mpf(10) ** -50
            expected = [float(c) for c in coefficients]
            np.testing.assert_allclose(getattr(smooth, prefix + "_TAYLOR"), expected, 1e-15)


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


# Compiled together with their derivative, where XLA may fuse products into multiply-adds
# differently (docs/accuracy.md): the cases with double-word arithmetic, and their bounds.
TOGETHER = {
    "gelu(approximate=True)": 4.0,
    "gelu(approximate=False)": 4.0,
    "sigmoid(gain=3)": 4.0,
    "silu(beta=1.7)": 4.0,
}


@pytest.mark.parametrize("label", list(TOGETHER))
def test_value_and_gradient_in_one_program(label):
    name, params = CASES[label]
    x = accuracy.case_grid(name, np.float32, params)
    hi, lo, slope_hi, slope_lo, *_ = accuracy.reference(name, x, params)
    f = lambda v: _fn(name)(v, **params)
    y, dy = jax.jit(jax.vmap(jax.value_and_grad(f)))(jnp.asarray(x))
    assert accuracy._error(np.asarray(y), hi, lo, np.float32).max() <= TOGETHER[label]
    assert (
        accuracy._error(np.asarray(dy), slope_hi, slope_lo, np.float32).max() <= 2 * TOGETHER[label]
    )


# --- jaxact beside jax.nn: the gallery's accuracy page ----------------------------------------


@pytest.mark.parametrize("name", jaxact.names())
def test_jax_nn_function_is_the_registry_counterpart(name):
    counterpart = jaxact.info(name).jax_nn
    fn = accuracy.jax_nn_function(name)
    assert fn is (None if counterpart is None else getattr(jax.nn, counterpart))
    if fn is not None:  # a parameter jax.nn's function lacks: no counterpart for that case
        accepted = inspect.signature(fn).parameters
        lacking = [p for p in jaxact.info(name).params if p not in accepted]
        if lacking:
            assert accuracy.jax_nn_function(name, {lacking[0]: 1.0}) is None


def test_accuracy_numbers():
    """jaxact within a few eps, jax.nn's known misses; the summary is the worst of the errors."""
    x = np.array([-30.0, -1.0, 0.5, 3.0, 20.0, 50.0], dtype=np.float32)
    data = accuracy.accuracy_data(["sigmoid", "tanh", "softsign"], x)
    assert list(data["functions"]) == ["sigmoid", "tanh", "soft_sign"]
    np.testing.assert_array_equal(data["x"], x)
    for name, impls in data["functions"].items():
        for impl in ("jaxact", "jax.nn"):
            for kind in accuracy.ERROR_KINDS:
                errs = impls[impl][kind]
                assert errs.shape == x.shape
                worst = data["summary"][name][impl][kind]
                assert worst["max"] == pytest.approx(float(np.max(errs)))
                assert worst["at"] in x
        for kind in accuracy.ERROR_KINDS:
            assert data["summary"][name]["jaxact"][kind]["max"] < 4, (name, kind)
    # jax.nn's sigmoid' is sigma (1 - sigma), which is 0 at x = 20 (truth 2e-9): error 1 = 2^23 eps.
    sigmoid_nn = data["functions"]["sigmoid"]["jax.nn"]["derivative"]
    assert sigmoid_nn[x == 20.0][0] >= 2.0**23 * 0.99
    assert data["summary"]["tanh"]["jax.nn"]["derivative"]["max"] > 1e6


def test_accuracy_grid_drops_the_kinks():
    x = accuracy.accuracy_grid(1e4, n=41)
    assert 0.0 in x
    data = accuracy.accuracy_data(["selu"], x)
    assert 0.0 not in data["x"]
    assert len(data["x"]) == len(x) - 1


def test_a_function_without_counterpart_is_refused():
    with pytest.raises(ValueError, match=r"sparsemax has no jax\.nn counterpart"):
        accuracy.accuracy_data(["sparsemax"], np.zeros(3, np.float32))
