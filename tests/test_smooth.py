"""Hyperparameters and special forms of the smooth activations (accuracy: test_accuracy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact

X = jnp.linspace(-8.0, 8.0, 33)


def test_sigmoid_gain_is_a_scaled_input():
    np.testing.assert_allclose(jaxact.sigmoid(X, gain=2.5), jaxact.sigmoid(2.5 * X), rtol=1e-6)
    # The logistic with gain a: sigmoid(a, x) = 1 / (1 + exp(-a x)).
    np.testing.assert_allclose(jaxact.sigmoid(X, gain=0.5), 1 / (1 + jnp.exp(-0.5 * X)), rtol=1e-6)


def test_softplus_beta_and_torch_threshold():
    beta = 3.0
    expected = jnp.log1p(jnp.exp(beta * X)) / beta
    np.testing.assert_allclose(jaxact.softplus(X, beta=beta), expected, rtol=1e-6, atol=1e-7)
    # As torch.nn.functional.softplus(x, beta, threshold): linear where beta * x > threshold.
    y = jaxact.softplus(X, beta=beta, threshold=6.0)
    linear = beta * X > 6.0
    np.testing.assert_array_equal(y[linear], X[linear])
    np.testing.assert_allclose(y[~linear], expected[~linear], rtol=1e-6, atol=1e-7)
    # A huge input with beta > 1 stays finite (beta * x would overflow).
    assert jaxact.softplus(jnp.float32(3e38), beta=4.0) == jnp.float32(3e38)


def test_swish_is_silu_and_its_beta_interpolates_to_relu():
    assert jaxact.swish is jaxact.silu
    np.testing.assert_allclose(jaxact.silu(X, beta=1.0), X * jax.nn.sigmoid(X), rtol=1e-6)
    np.testing.assert_allclose(jaxact.silu(X, beta=0.0), X / 2, rtol=1e-6)  # beta -> 0: x / 2
    np.testing.assert_allclose(jaxact.silu(X, beta=50.0), jaxact.relu(X), atol=1e-6)


def test_gelu_forms_agree_and_approximate_is_the_default():
    exact = jaxact.gelu(X, approximate=False)
    np.testing.assert_allclose(jaxact.gelu(X), jaxact.gelu(X, approximate=True))
    np.testing.assert_allclose(jaxact.gelu(X), exact, atol=1e-3)
    phi = 0.5 * jax.scipy.special.erfc(-X / jnp.sqrt(2.0))  # 1 + erf(x) would cancel for x < 0
    np.testing.assert_allclose(exact, X * phi, rtol=2e-6, atol=1e-7)


def test_elu_family_relations():
    np.testing.assert_allclose(jaxact.celu(X, alpha=1.0), jaxact.elu(X), rtol=1e-6)
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    np.testing.assert_allclose(jaxact.selu(X), scale * jaxact.elu(X, alpha), rtol=1e-6)
    # Derivative of the negative side is alpha * exp(x): 0 only where exp underflows.
    assert jax.grad(jaxact.elu)(-20.0) == pytest.approx(np.exp(-20.0), rel=1e-6)


def test_tanh_shrink_small_inputs_do_not_cancel():
    x = 1e-3  # x - tanh(x) = x^3/3 - 2x^5/15 + ...: direct subtraction would keep no digit
    assert float(jaxact.tanh_shrink(jnp.float32(x))) == pytest.approx(x**3 / 3, rel=1e-6)
    assert float(jax.grad(jaxact.tanh_shrink)(2.0)) == pytest.approx(np.tanh(2.0) ** 2, rel=1e-6)


def test_squareplus_b_and_its_limits():
    np.testing.assert_allclose(jaxact.squareplus(X, b=0.0), jaxact.relu(X), atol=1e-7)
    # b / (4|x|) in the negative tail, not inf or 0/0 (at -3e38 that is subnormal: 0 on CPU).
    assert float(jaxact.squareplus(jnp.float32(-1e30))) == pytest.approx(1e-30, rel=1e-6)
    assert 0 <= float(jaxact.squareplus(jnp.float32(-3e38))) < 1e-38
    assert jax.grad(jaxact.squareplus, argnums=1)(0.0, 4.0) == pytest.approx(1 / 8)


def test_sparse_family_is_a_softplus_sigmoid_pair():
    slope = jax.vmap(jax.grad(jaxact.sparse_plus))(X)
    np.testing.assert_allclose(slope, jaxact.sparse_sigmoid(X), atol=1e-7)
    assert jaxact.sparse_plus(jnp.float32(3e38)) == jnp.float32(3e38)
    assert np.isfinite(jax.grad(jaxact.sparse_plus)(jnp.float32(-3e38)))


def test_exponential_and_log_sigmoid():
    np.testing.assert_allclose(jaxact.exponential(X), jnp.exp(X), rtol=1e-6)
    np.testing.assert_allclose(jaxact.log_sigmoid(X), -jaxact.softplus(-X), rtol=1e-6)
    assert jax.grad(jaxact.log_sigmoid)(-100.0) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["elu", "celu", "selu"])
def test_elu_family_slope_at_zero_is_jax_nns(name):
    """The derivative at 0 and -0 is the left branch's (jax.nn's), not the 1/2-split of a tie."""
    x = jnp.array([0.0, -0.0])
    for params in [{}] if name == "selu" else [{}, {"alpha": 0.5}, {"alpha": 2.0}]:
        slope = lambda impl, p=params: jax.vmap(jax.grad(lambda v: getattr(impl, name)(v, **p)))
        np.testing.assert_array_equal(slope(jaxact)(x), slope(jax.nn)(x))


SECOND_ORDER = ["sigmoid", "tanh", "softplus", "log_sigmoid", "silu", "mish", "gelu", "elu"]
SECOND_ORDER += ["selu", "celu", "soft_sign", "squareplus", "sparse_plus", "tanh_shrink"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivative_is_the_same_through_every_transform(name):
    """grad(grad), hessian, jacfwd(jacrev), jacrev(jacfwd) and jvp of vjp agree (float64)."""
    fn = getattr(jaxact, name)
    first = lambda v: jax.vjp(fn, v)[1](jnp.ones_like(v))[0]

    def all_transforms(v):
        return jnp.stack(
            [
                jax.grad(jax.grad(fn))(v),
                jax.hessian(fn)(v),
                jax.jacfwd(jax.jacrev(fn))(v),
                jax.jacrev(jax.jacfwd(fn))(v),
                jax.jvp(first, (v,), (jnp.ones_like(v),))[1],
            ]
        )

    with jax.enable_x64(True):
        x = jnp.array([-30.0, -2.4, -0.75, -1e-8, 0.0, 1e-8, 1.4, 3.0, 1e4], jnp.float64)
        results = np.asarray(jax.jit(jax.vmap(all_transforms))(x))
    assert np.isfinite(results).all()
    np.testing.assert_allclose(results, np.broadcast_to(results[:, :1], results.shape), rtol=1e-14)


HYPERPARAMETERS = [("sigmoid", "gain"), ("softplus", "beta"), ("silu", "beta")]
HYPERPARAMETERS += [("squareplus", "b"), ("elu", "alpha"), ("celu", "alpha")]


@pytest.mark.parametrize("name, param", HYPERPARAMETERS)
def test_hessian_in_input_and_hyperparameter(name, param):
    """The 2x2 Hessian in (x, hyperparameter) against central differences of the gradient."""
    f = lambda x, p: getattr(jaxact, name)(x, **{param: p})
    with jax.enable_x64(True):
        x = jnp.array([-30.0, -2.7, -0.6, 0.3, 1.9, 25.0])
        p = jnp.full_like(x, 1.7)
        hessian = jax.jit(jax.vmap(jax.hessian(f, argnums=(0, 1))))(x, p)
        gradient = jax.jit(jax.vmap(jax.grad(f, argnums=(0, 1))))
        h = 1e-5  # the differences lose log10(|gradient| / h) digits: absolute error ~1e-11
        for i, (dx, dp) in enumerate([(h, 0.0), (0.0, h)]):
            up, down = gradient(x + dx, p + dp), gradient(x - dx, p - dp)
            for j in range(2):
                difference = (up[j] - down[j]) / (2 * h)
                np.testing.assert_allclose(hessian[j][i], difference, rtol=1e-6, atol=1e-10)


def test_softplus_threshold_kink_takes_the_softplus_side():
    """At beta x == threshold the derivative is sigma(threshold), between sigma(t) and 1."""
    beta, threshold = 2.0, 3.0
    f = lambda x: jaxact.softplus(x, beta=beta, threshold=threshold)
    at, above = jax.grad(f)(threshold / beta), jax.grad(f)(threshold / beta + 1e-3)
    assert at == pytest.approx(float(jax.nn.sigmoid(threshold)), rel=1e-6)
    assert at < above == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_halves_split_exactly_and_multiply_exactly(dtype):
    from fractions import Fraction

    from jaxact import _numerics

    rng = np.random.default_rng(0)
    values = rng.standard_normal(64) * 10.0 ** rng.integers(-15, 15, 64)  # squares finite
    with jax.enable_x64(dtype == np.float64):
        x = jnp.asarray(values, dtype)
        hi, lo = jax.jit(_numerics.halves)(x)
        assert hi.dtype == lo.dtype == dtype
        square, cross = jax.jit(lambda a, b: (a * a, a * b))(hi, lo)
        k_hi, k_lo = _numerics.halves_constant("1.595769121605730711759784239737527473903", dtype)
    fr = lambda v: Fraction(float(v))
    x, hi, lo, square, cross = (np.asarray(v) for v in (x, hi, lo, square, cross))
    for xi, h, low, s, c in zip(x, hi, lo, square, cross, strict=True):
        assert fr(h) + fr(low) == fr(xi)
        assert fr(s) == fr(h) ** 2 and fr(c) == fr(h) * fr(low)  # no rounding
        assert abs(low) <= abs(xi) * 2.0 ** -(11 if dtype == np.float32 else 25)
    assert fr(k_hi) * fr(hi[0]) == fr(k_hi * hi[0])
    exact = Fraction("1.595769121605730711759784239737527473903")
    assert abs(fr(k_hi) + fr(k_lo) - exact) <= exact * Fraction(2) ** -(
        34 if dtype == np.float32 else 76
    )


def test_gelu_tanh_argument_error_is_recovered_whatever_xla_fuses():
    """z + z_lo within 0.1 of an ulp of z = 2 sqrt(2/pi) (x + 0.044715 x^3) (in float64 with
    float32 inputs: exact to 2^-40); and, compiled beside its gradient, where XLA splits the
    work into several kernels that contract products differently, the value and gradient keep
    their accuracy in the lower tail (the gate there is e^z: an ulp of z is 60 eps)."""
    from fractions import Fraction

    from experiments import accuracy
    from jaxact import smooth

    x = np.linspace(-10.0, -1.0, 1201, dtype=np.float32)
    z, z_lo = jax.jit(smooth._gelu_tanh_argument)(jnp.asarray(x))
    k1, k3 = (float(Fraction(k)) for k in (smooth._GELU_TANH_K1, smooth._GELU_TANH_K3))
    xd = x.astype(np.float64)
    error = np.asarray(z, np.float64) + np.asarray(z_lo, np.float64) - (k1 * xd + k3 * xd**3)
    assert np.abs(error).max() < 0.1 * 2.0**-23 * np.abs(np.asarray(z)).max()
    y, dy = jax.jit(jax.vmap(jax.value_and_grad(jaxact.gelu)))(jnp.asarray(x))
    hi, lo, slope_hi, slope_lo, *_ = accuracy.reference("gelu", x, {"approximate": True})
    assert accuracy._error(np.asarray(y), hi, lo, np.float32).max() <= 4
    assert accuracy._error(np.asarray(dy), slope_hi, slope_lo, np.float32).max() <= 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_at_its_clamp_bound(dtype):
    """Value, first and second derivative at exactly +-bound (where the argument is clamped
    and the slope set to 0 below -bound) and 3 floats either side, against mpmath."""
    from experiments import accuracy
    from jaxact import smooth

    bound = dtype(smooth._gelu_tanh_bound(dtype))
    points = []
    for b in (bound, -bound):
        p = b
        for _ in range(3):
            p = np.nextafter(p, dtype(np.inf))
        for _ in range(7):
            points.append(p)
            p = np.nextafter(p, dtype(-np.inf))
    x = np.asarray(points, dtype)
    with jax.enable_x64(dtype == np.float64):
        f = jaxact.gelu
        values = [
            jax.jit(jax.vmap(g))(jnp.asarray(x)) for g in (f, jax.grad(f), jax.grad(jax.grad(f)))
        ]
    hi, lo, s_hi, s_lo, c_hi, c_lo = accuracy.reference("gelu", x, {"approximate": True})
    for got, (true_hi, true_lo) in zip(values, ((hi, lo), (s_hi, s_lo), (c_hi, c_lo)), strict=True):
        assert accuracy._error(np.asarray(got), true_hi, true_lo, dtype).max() <= 16


def _kernels(fn, *args):
    """How many fused kernels XLA compiles ``fn`` into."""
    text = jax.jit(fn).lower(*args).compile().as_text()
    return sum(" fusion(" in line for line in text.splitlines())


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's fusion decisions")
@pytest.mark.parametrize("name", ["sigmoid", "gelu"])
def test_value_and_gradient_keep_one_array_between_them(name):
    """The forward pass alone and the backward pass alone each compile to one kernel; both
    in one program (a training step) to three, which keep one array between them: sigma(-|z|),
    computed once. Kept as the exponential and the reciprocal apart, it was four kernels and
    3x (gelu) to 4.6x (sigmoid) jax.nn's time at 1e6 to 4.2e6 elements."""
    fn = getattr(jaxact, name)
    x = jnp.linspace(-8.0, 8.0, 4096, dtype=jnp.float32)
    forward = _kernels(fn, x)
    backward = _kernels(lambda v, c: jax.vjp(fn, v)[1](c)[0], x, x)
    both = _kernels(lambda v, c: (lambda y, pull: (y, pull(c)[0]))(*jax.vjp(fn, v)), x, x)
    assert (forward, backward, both) == (1, 1, 3)
