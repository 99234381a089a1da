"""Piecewise-linear activations: values, kinks, parameters, rrelu's randomness, step's surrogates.

Accuracy against mpmath is in test_accuracy.py; these tests pin the formulas
(including the ones the seed articles get wrong) and the behaviour at the kinks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact

X = jnp.array([-4.0, -3.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0, 6.0, 7.0])


def grads(f, x):
    return jax.vmap(jax.grad(f))(jnp.asarray(x, jnp.float32))


# --- the ReLU family -----------------------------------------------------------------------


def test_relu_is_zero_for_negative_inputs_not_minus_x():
    # Seed 004 prints relu(x) = -x for x < 0: that is abs(x), not relu.
    x = jnp.array([-3.0, -1.0, -0.0, 0.0, 2.0])
    np.testing.assert_array_equal(jaxact.relu(x), [0.0, 0.0, 0.0, 0.0, 2.0])
    assert not np.array_equal(jaxact.relu(x), jnp.abs(x))


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
    # Seed 003 lost the line break: x for x > 0, 0.01 x otherwise.
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
    # Keras 2: clip(0.2 x + 0.5, 0, 1). Seed 004's "0.2x + 0.5(e^x - 1)" is not it.
    x = jnp.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    expected = [0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]
    np.testing.assert_allclose(jaxact.hard_sigmoid(x, slope=0.2), expected, rtol=1e-6, atol=1e-7)
    assert abs(float(jaxact.hard_sigmoid(1.0, slope=0.2)) - (0.2 + 0.5 * np.expm1(1.0))) > 0.3


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
    # step(x, a) = 1 for x >= a, else 0 (seed 000).
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
    assert float(jax.grad(jaxact.step)(0.0)) == 0.25


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
