"""Piecewise-linear activations: values, kinks, parameters, rrelu's randomness, step's surrogates.

Accuracy against mpmath is in test_accuracy.py; these tests pin the formulas, the
derivatives at the exact kinks, the types and the hyperparameter checks.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact

X = jnp.array([-4.0, -3.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0, 6.0, 7.0])


def grads(f, x):
    return jax.vmap(jax.grad(f))(jnp.asarray(x, jnp.float32))


# --- the ReLU family -----------------------------------------------------------------------


def test_relu_is_zero_for_negative_inputs():
    x = jnp.array([-3.0, -1.0, -0.0, 0.0, 2.0])
    np.testing.assert_array_equal(jaxact.relu(x), [0.0, 0.0, 0.0, 0.0, 2.0])


def test_relu_derivative_at_zero_is_zero_like_jax_nn():
    x = jnp.array([-1.0, 0.0, 1e-30, 1.0])
    np.testing.assert_array_equal(grads(jaxact.relu, x), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(grads(jaxact.relu, x), grads(jax.nn.relu, x))


def test_relu_keeps_integer_dtype():
    y = jaxact.relu(jnp.array([-2, 3], jnp.int32))
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, [0, 3])


def test_relu6_values_and_kink_derivatives_like_jax_nn():
    np.testing.assert_array_equal(jaxact.relu6(X), jnp.clip(X, 0, 6))
    kinks = jnp.array([-1.0, 0.0, 3.0, 6.0, 7.0])
    np.testing.assert_array_equal(grads(jaxact.relu6, kinks), [0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads(jaxact.relu6, kinks), grads(jax.nn.relu6, kinks))


def test_relu6_promotes_integers_even_under_strict_promotion():
    y = jaxact.relu6(jnp.array([-2, 3, 9], jnp.int32))
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, [0.0, 3.0, 6.0])


def test_leaky_relu_cases():
    # x for x >= 0, 0.01 x otherwise.
    x = jnp.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_allclose(jaxact.leaky_relu(x), [-0.02, -0.005, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(jaxact.leaky_relu(x, 0.2), [-0.4, -0.1, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(grads(jaxact.leaky_relu, [-1.0, 0.0, 1.0]), [0.01, 1.0, 1.0])
    np.testing.assert_array_equal(
        grads(jaxact.leaky_relu, [-1.0, 0.0, 1.0]), grads(jax.nn.leaky_relu, [-1.0, 0.0, 1.0])
    )


def test_prelu_per_channel_slope_and_its_gradient():
    x = jnp.array([[-1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    slope = jnp.array([0.1, 0.2, 0.3])
    y = jaxact.prelu(x, negative_slope=slope)
    np.testing.assert_allclose(y, jnp.where(x >= 0, x, slope * x), rtol=1e-6)
    np.testing.assert_allclose(y[:, 0], [-0.1, -0.4], rtol=1e-6)
    # d/d slope_c = the sum of the negative inputs of channel c.
    g = jax.grad(lambda s: jnp.sum(jaxact.prelu(x, negative_slope=s)))(slope)
    np.testing.assert_allclose(g, [-5.0, -2.0, -6.0], rtol=1e-6)
    np.testing.assert_allclose(jaxact.prelu(jnp.array(-2.0)), -0.5)  # default slope 0.25


def test_rrelu_with_key_draws_slopes_in_bounds():
    x = -jnp.ones(4000)
    lower, upper = 0.1, 0.3
    slopes = np.asarray(jaxact.rrelu(x, lower=lower, upper=upper, key=jax.random.key(0))) / -1.0
    assert np.all((slopes >= lower) & (slopes <= upper))
    assert np.unique(slopes).size > 3000  # one draw per element
    assert abs(slopes.mean() - 0.2) < 0.01 and slopes.std() > 0.05
    again = jaxact.rrelu(x, lower=lower, upper=upper, key=jax.random.key(0))
    other = jaxact.rrelu(x, lower=lower, upper=upper, key=jax.random.key(1))
    np.testing.assert_array_equal(again, -slopes)
    assert not np.array_equal(other, again)
    positive = jnp.linspace(0.0, 5.0, 11)
    np.testing.assert_array_equal(jaxact.rrelu(positive, key=jax.random.key(2)), positive)


def test_rrelu_without_key_uses_the_mean_slope():
    x = jnp.array([-24.0, -1.0, 2.0])
    mean = (1 / 8 + 1 / 3) / 2
    np.testing.assert_allclose(jaxact.rrelu(x), [-24 * mean, -mean, 2.0], rtol=1e-6)
    np.testing.assert_allclose(jaxact.rrelu(x, lower=0.2, upper=0.4), [-7.2, -0.3, 2.0], rtol=1e-6)


def test_rrelu_under_jit_with_a_traced_key():
    f = jax.jit(lambda x, key: jaxact.rrelu(x, key=key))
    y = f(-jnp.ones(8), jax.random.key(3))
    assert np.all((np.asarray(y) <= -1 / 8) & (np.asarray(y) >= -1 / 3))


# --- hard approximations ---------------------------------------------------------------------


def test_hard_tanh_clips_and_keeps_integers():
    np.testing.assert_array_equal(jaxact.hard_tanh(X), jnp.clip(X, -1, 1))
    np.testing.assert_array_equal(
        jaxact.hard_tanh(X, min_val=-2.0, max_val=3.0), jnp.clip(X, -2, 3)
    )
    y = jaxact.hard_tanh(jnp.array([-5, 0, 5]))
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, [-1, 0, 1])


def test_hard_sigmoid_default_is_jax_nn_relu6_form():
    expected = jnp.clip(X + 3, 0, 6) / 6
    np.testing.assert_allclose(jaxact.hard_sigmoid(X), expected, rtol=1e-6)
    np.testing.assert_allclose(jaxact.hard_sigmoid(X), jax.nn.hard_sigmoid(X), rtol=1e-6)


def test_hard_sigmoid_keras2_form_via_slope():
    # Keras 2: clip(0.2 x + 0.5, 0, 1).
    x = jnp.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    expected = [0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]
    np.testing.assert_allclose(jaxact.hard_sigmoid(x, slope=0.2), expected, rtol=1e-6, atol=1e-7)


def test_hard_sigmoid_does_not_cancel_near_the_lower_kink():
    # s x + c cancels near x = -3 (a 1e-3 relative error in float32); s (x + c/s) does not.
    x = jnp.array([-2.9999, -2.999, -2.99, -2.5], jnp.float32)
    exact = (np.asarray(x, np.float64) + 3) / 6
    np.testing.assert_allclose(jaxact.hard_sigmoid(x), exact, rtol=3e-7)
    np.testing.assert_allclose(jaxact.hard_silu(x), np.asarray(x, np.float64) * exact, rtol=3e-7)


def test_hard_sigmoid_derivative():
    x = [-4.0, -3.0, 0.0, 3.0, 4.0]
    np.testing.assert_allclose(grads(jaxact.hard_sigmoid, x), [0.0, 0.0, 1 / 6, 0.0, 0.0])
    np.testing.assert_allclose(grads(jax.nn.hard_sigmoid, x), [0.0, 0.0, 1 / 6, 0.0, 0.0])


def test_hard_silu_is_x_relu6_over_6():
    np.testing.assert_allclose(jaxact.hard_silu(X), X * jnp.clip(X + 3, 0, 6) / 6, rtol=1e-6)
    assert float(jaxact.hard_silu(-1.5)) == -0.375  # its minimum
    assert jaxact.hard_swish is jaxact.hard_silu


# --- thresholding and shrinkage ------------------------------------------------------------


def test_threshold_values():
    x = jnp.array([-1.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(
        jaxact.threshold(x, threshold=1.0, value=-5.0), [-5.0, -5.0, -5.0, 2.0]
    )
    np.testing.assert_array_equal(jaxact.threshold(x), jaxact.relu(x))


def test_hard_shrink_values():
    x = jnp.array([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(jaxact.hard_shrink(x), [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.75])
    np.testing.assert_array_equal(
        jaxact.hard_shrink(x, threshold=0.2), [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]
    )


def test_soft_shrink_is_the_proximal_map_of_the_l1_norm():
    x = jnp.array([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(jaxact.soft_shrink(x), [-0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25])
    # argmin_p (p - x)^2 / 2 + lam |p|, by brute force on a grid.
    lam, grid = 0.3, np.linspace(-2, 2, 40001)
    for value in np.asarray(x):
        best = grid[np.argmin((grid - value) ** 2 / 2 + lam * np.abs(grid))]
        assert abs(float(jaxact.soft_shrink(value, threshold=lam)) - best) < 1e-4


# --- the step and its surrogate gradients --------------------------------------------------


def test_step_is_one_from_the_threshold_on():
    # step(x, a) = 1 for x >= a, else 0.
    x = jnp.array([-1.0, 0.0, 0.49, 0.5, 2.0])
    np.testing.assert_array_equal(jaxact.step(x), [0.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(jaxact.step(x, 0.5), [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        jaxact.step(x, threshold=0.5, sharpness=10.0), jaxact.step(x, 0.5)
    )


@pytest.mark.parametrize("sharpness", [1.0, 4.0])
def test_step_sigmoid_surrogate(sharpness):
    x = jnp.array([-2.0, -0.5, 0.0, 0.3, 1.0])
    g = grads(lambda x: jaxact.step(x, 0.3, sharpness=sharpness), x)
    s = jax.nn.sigmoid(sharpness * (x - 0.3))
    np.testing.assert_allclose(g, sharpness * s * (1 - s), rtol=1e-5)
    # At the threshold the surrogate peaks at k sigma'(0) = k / 4.
    at_threshold = jax.grad(lambda x: jaxact.step(x, sharpness=sharpness))(0.0)
    assert float(at_threshold) == sharpness / 4


@pytest.mark.parametrize("sharpness", [1.0, 2.0])
def test_step_straight_through_surrogate(sharpness):
    x = jnp.array([-2.0, -1.0, -0.4, 0.0, 0.4, 0.5, 1.0, 2.0])
    g = grads(lambda x: jaxact.step(x, surrogate="straight_through", sharpness=sharpness), x)
    np.testing.assert_array_equal(g, np.where(np.abs(np.asarray(x)) <= 1 / sharpness, 1.0, 0.0))


def test_step_none_surrogate_is_the_true_derivative():
    x = jnp.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(grads(lambda x: jaxact.step(x, surrogate="none"), x), 0.0)


def test_step_threshold_gradient_and_transformations():
    # The step depends on x - threshold only.
    g = jax.grad(lambda t: jaxact.step(0.2, t))(0.0)
    np.testing.assert_allclose(g, -float(jax.grad(jaxact.step)(0.2)), rtol=1e-6)
    f = jax.jit(jax.vmap(jax.grad(lambda x, k: jaxact.step(x, sharpness=k)), in_axes=(None, 0)))
    np.testing.assert_allclose(f(0.0, jnp.array([1.0, 2.0, 8.0])), [0.25, 0.5, 2.0], rtol=1e-6)
    assert np.isfinite(float(jax.hessian(jaxact.step)(0.5)))


def test_step_bad_surrogate_names_the_closest():
    with pytest.raises(ValueError, match="'sigmoid'"):
        jaxact.step(jnp.zeros(2), surrogate="sigmod")
    with pytest.raises(ValueError, match="'straight_through'"):
        jaxact.step(jnp.zeros(2), surrogate="straight-through")


def test_identity_and_linear():
    assert jaxact.linear is jaxact.identity
    x = jnp.array([-1, 2], jnp.int8)
    assert jaxact.identity(x).dtype == jnp.int8
    np.testing.assert_array_equal(jaxact.identity(x), x)
    assert float(jax.grad(jaxact.identity)(3.0)) == 1.0


# --- derivatives at the exact kinks ------------------------------------------------------------

# name, parameters, kink, which derivative the kink takes: jax.nn's where jax.nn has the
# function ("jax.nn"), else the one-sided derivative from the "left" or the "right".
KINKS = [
    ("relu", {}, 0.0, "jax.nn"),
    ("relu6", {}, 0.0, "jax.nn"),
    ("relu6", {}, 6.0, "jax.nn"),
    ("leaky_relu", {}, 0.0, "jax.nn"),
    ("hard_tanh", {}, -1.0, "jax.nn"),
    ("hard_tanh", {}, 1.0, "jax.nn"),
    ("hard_sigmoid", {}, -3.0, "jax.nn"),
    ("hard_sigmoid", {}, 3.0, "jax.nn"),
    ("hard_silu", {}, -3.0, "jax.nn"),
    ("hard_silu", {}, 3.0, "jax.nn"),
    ("prelu", {}, 0.0, "right"),
    ("rrelu", {}, 0.0, "right"),
    ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}, -2.0, "right"),
    ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}, 0.5, "left"),
    ("hard_sigmoid", {"slope": 0.25}, -2.0, "left"),
    ("hard_sigmoid", {"slope": 0.25}, 2.0, "right"),
    ("threshold", {}, 0.0, "left"),
    ("threshold", {"threshold": 1.0, "value": -5.0}, 1.0, "left"),
    ("hard_shrink", {}, -0.5, "right"),
    ("hard_shrink", {}, 0.5, "left"),
    ("soft_shrink", {}, -0.5, "right"),
    ("soft_shrink", {}, 0.5, "left"),
]


def _derivatives(name, params, x):
    f = lambda x: jaxact.info(name).fn(x, **params)
    d1 = jax.vmap(jax.grad(f))
    d2 = jax.vmap(jax.grad(jax.grad(f)))
    return np.asarray(d1(x)), np.asarray(d2(x))


@pytest.mark.parametrize("name, params, kink, side", KINKS)
def test_derivative_at_the_exact_kink(name, params, kink, side):
    h = 1e-3
    x = jnp.array([kink, kink - h, kink + h], jnp.float32)
    (at, left, right), (at2, left2, right2) = _derivatives(name, params, x)
    assert left != right  # a kink indeed
    if side == "jax.nn":
        theirs = jax.vmap(jax.grad(getattr(jax.nn, name)))(x)
        theirs2 = jax.vmap(jax.grad(jax.grad(getattr(jax.nn, name))))(x)
        assert at == theirs[0] and at2 == theirs2[0]
    else:
        assert at == {"left": left, "right": right}[side]
    assert min(left, right) <= at <= max(left, right)
    assert min(left2, right2) <= at2 <= max(left2, right2)


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "hard_tanh", "hard_silu"])
def test_derivative_at_signed_zeros_like_jax_nn(name):
    x = jnp.array([0.0, -0.0, 1e-45, -1e-45], jnp.float32)
    ours, theirs = (jax.vmap(jax.grad(f))(x) for f in (jaxact.info(name).fn, getattr(jax.nn, name)))
    np.testing.assert_array_equal(ours, theirs)
    # Values equal up to how subnormals are flushed (XLA on CPU treats them as zeros).
    tiny = float(np.finfo(np.float32).tiny)
    np.testing.assert_allclose(jaxact.info(name).fn(x), getattr(jax.nn, name)(x), atol=tiny)


def test_hard_sigmoid_at_nan_like_jax_nn():
    y, g = jaxact.hard_sigmoid(jnp.nan), jax.grad(jaxact.hard_sigmoid)(jnp.nan)
    assert np.isnan(y) and np.isnan(jax.nn.hard_sigmoid(jnp.nan))
    assert float(g) == float(jax.grad(jax.nn.hard_sigmoid)(jnp.nan))


# --- types -------------------------------------------------------------------------------------


def test_relu_and_hard_tanh_of_bools_are_integers_like_jax_nn():
    x = jnp.array([True, False])
    with jax.numpy_dtype_promotion("standard"):  # jax.nn needs it for bools
        expected = jax.nn.relu(x), jax.nn.hard_tanh(x)
    for ours, theirs in zip((jaxact.relu(x), jaxact.hard_tanh(x)), expected, strict=True):
        assert (ours.dtype, ours.weak_type) == (theirs.dtype, theirs.weak_type)
        np.testing.assert_array_equal(ours, theirs)


def test_hard_tanh_of_integers_with_fractional_bounds_is_a_float():
    x = jnp.array([-2, 0, 2], jnp.int32)
    y = jaxact.hard_tanh(x, min_val=-0.5, max_val=0.5)
    assert jnp.issubdtype(y.dtype, jnp.floating)
    np.testing.assert_array_equal(y, np.clip([-2, 0, 2], -0.5, 0.5))
    whole = jaxact.hard_tanh(x, min_val=-1.0, max_val=3.0)  # whole bounds keep integers
    assert whole.dtype == jnp.int32
    np.testing.assert_array_equal(whole, np.clip([-2, 0, 2], -1, 3))


@pytest.mark.parametrize(
    "name",
    ["relu", "relu6", "leaky_relu", "prelu", "rrelu", "hard_tanh", "hard_sigmoid", "hard_silu",
     "threshold", "hard_shrink", "soft_shrink", "step"],
)  # fmt: skip
def test_complex_inputs_raise_type_error_saying_why(name):
    with pytest.raises(TypeError, match=f"{name} does not take complex inputs.*no order"):
        jaxact.info(name).fn(jnp.array([1 + 1j, -1j]))


# --- hyperparameter checks at call time ------------------------------------------------------

BAD = [
    ("hard_sigmoid", {"slope": 0.0}, "slope must be a finite number other than 0"),
    ("hard_sigmoid", {"offset": float("nan")}, "offset must be a finite real number"),
    ("leaky_relu", {"negative_slope": "abc"}, "negative_slope must be a real number, got 'abc'"),
    ("leaky_relu", {"negative_slope": True}, "negative_slope must be a real number"),
    ("prelu", {"negative_slope": np.array([0.1, np.nan])}, "negative_slope must be a finite"),
    ("rrelu", {"lower": 0.5, "upper": 0.25}, "lower must be <= upper"),
    ("hard_tanh", {"min_val": 1.0, "max_val": -1.0}, "min_val must be <= max_val"),
    ("hard_tanh", {"max_val": float("nan")}, "max_val must be a real number, not NaN"),
    ("threshold", {"threshold": float("nan")}, "threshold must be a real number, not NaN"),
    ("hard_shrink", {"threshold": -0.5}, "threshold must be a finite number >= 0"),
    ("soft_shrink", {"threshold": float("inf")}, "threshold must be a finite number >= 0"),
    ("step", {"sharpness": 0.0}, "sharpness must be a finite number > 0"),
    ("step", {"sharpness": -1.0}, "sharpness must be a finite number > 0"),
    ("step", {"surrogate": 3}, "unknown surrogate 3"),
]


@pytest.mark.parametrize("name, params, message", BAD)
def test_bad_hyperparameters_raise_value_error_at_call_time(name, params, message):
    with pytest.raises(ValueError, match=f"^{name}: {re.escape(message)}"):
        jaxact.info(name).fn(jnp.ones(2), **params)


def test_traced_hyperparameters_are_not_checked():
    # Under jit the value is unknown when the function is traced: no error, and the
    # formula's answer (a flat line of slope 0 has no 1/slope: NaN).
    y = jax.jit(lambda s: jaxact.hard_sigmoid(jnp.ones(2), slope=s))(0.0)
    assert np.isnan(y).all()
    y = jax.jit(lambda k: jaxact.step(jnp.ones(2), sharpness=k))(-1.0)
    np.testing.assert_array_equal(y, 1.0)  # the value does not depend on the sharpness
    y = jax.jit(lambda a: jaxact.leaky_relu(-jnp.ones(2), a))(0.5)
    np.testing.assert_array_equal(y, -0.5)
