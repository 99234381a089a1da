"""One sweep over every registry function: dtypes, shapes, transformations, jax.nn compatibility.

Numerical accuracy lives in test_accuracy.py; here every activation only has to
behave like a JAX function: keep its dtype, stay finite, agree with itself under
jit, vmap, grad, jacfwd, jacrev, hessian and scan, and drop in for ``jax.nn``.
"""

import contextlib
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxact

NAMES = jaxact.names()
ELEMENTWISE = tuple(n for n in NAMES if jaxact.info(n).elementwise)
ROWWISE = tuple(n for n in NAMES if not jaxact.info(n).elementwise)
JAX_NN = tuple(n for n in NAMES if jaxact.info(n).jax_nn)
DTYPES = ("float32", "float64", "bfloat16", "float16")
# Agreement between two evaluations of the same function (jit vs eager, vmap vs loop, ...).
TOLERANCE = {"float64": 1e-12, "float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


def precision(dtype: str):
    """float64 needs x64 switched on; the other dtypes run in the default mode."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def inputs(dtype, shape=(3, 8)) -> jax.Array:
    """Moderate inputs that are exactly representable in every dtype, rows not sorted."""
    values = np.linspace(-4.0, 4.0, int(np.prod(shape)))
    values = np.round(values * 8) / 8  # multiples of 1/8: exact in bfloat16 and float16
    return jnp.asarray(np.random.default_rng(0).permutation(values).reshape(shape), dtype)


def away_from_kinks(name: str, points: np.ndarray, margin: float = 0.1, **params) -> np.ndarray:
    """points, each moved off any breakpoint of name (with these parameters) by at least margin."""
    moved = np.array(points, np.float64)
    for kink in jaxact.info(name).breakpoints(**params):
        near = np.abs(moved - kink) < margin
        moved[near] = kink + margin * np.where(moved[near] >= kink, 1.5, -1.5)
    return moved


def close(actual, expected, dtype, scale: float = 1.0):
    tol = TOLERANCE[str(dtype)] * scale
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=tol, atol=tol
    )


def finite(*arrays):
    for a in arrays:
        assert np.all(np.isfinite(np.asarray(a, np.float64))), a


def out_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if name == "logsumexp":
        return shape[:-1]
    if name == "glu":
        return (*shape[:-1], shape[-1] // 2)
    return shape


# --- values, shapes and derivatives in every dtype -------------------------------------------

ELEMENTWISE_SHAPES = ((), (2, 0, 3), (3, 1, 5))
ROW_SHAPES = ((2,), (0, 4), (2, 0), (3, 1, 6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_dtype_shapes_finite_jit_vmap_grad(name, dtype, activation):
    f = activation(name)
    shapes = ELEMENTWISE_SHAPES if name in ELEMENTWISE else ROW_SHAPES
    # Half types run the float32 code and round once: their odd shapes add nothing to it.
    shapes = shapes if dtype in ("float32", "float64") else ()
    with precision(dtype):
        x = inputs(dtype)  # 3 rows of 8
        odd = [inputs(dtype, shape) for shape in shapes]
        y = f(x)  # eager

        @jax.jit  # one compilation for everything else
        def transformed(x, odd):
            if name in ELEMENTWISE:  # vmap over single elements
                mapped = looped = jax.vmap(f)(x.ravel()).reshape(y.shape)
            else:  # vmap over rows, against a loop over rows
                mapped, looped = jax.vmap(f)(x), jnp.stack([f(row) for row in x])
            grad = jax.grad(lambda x: jnp.sum(f(x)))(x)
            return f(x), mapped, looped, grad, [f(z) for z in odd]

        jitted, mapped, looped, grad, odd_out = transformed(x, odd)
        assert y.dtype == x.dtype and grad.dtype == x.dtype
        assert y.shape == out_shape(name, x.shape)
        finite(y, grad)
        close(jitted, y, dtype)
        close(mapped, y, dtype)
        close(looped, y, dtype)
        for z, out in zip(odd, odd_out, strict=True):
            assert (out.shape, out.dtype) == (out_shape(name, z.shape), x.dtype), z.shape
            if z.size:
                finite(out)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_python_scalar_input(name):
    y = jaxact.info(name).fn(0.75)
    assert y.shape == () and y.dtype == jnp.float32
    close(y, jaxact.info(name).fn(jnp.full((3,), 0.75))[0], "float32")


def scanned(f, xs):
    """The activation applied over a sequence by lax.scan, with a running sum as the carry."""

    def step(total, x_t):
        y = f(x_t)
        return total + jnp.sum(y), y

    return jax.lax.scan(step, jnp.zeros((), xs.dtype), xs)


@pytest.mark.parametrize("name", NAMES)
def test_grad_jacobians_hessian_and_scan_float32(name, activation):
    f = activation(name)
    total = lambda x: jnp.sum(f(x))
    row = inputs(jnp.float32, (8,))
    xs = inputs(jnp.float32, (3, 8))

    @jax.jit  # one compilation for all of them
    def derivatives(row, xs):
        return (
            jax.grad(total)(row),
            jax.jacfwd(f)(row),
            jax.jacrev(f)(row),
            jax.hessian(total)(row),
            scanned(f, xs),
            jax.grad(lambda xs: scanned(f, xs)[0])(xs),
            jax.vmap(f)(xs),
            jax.vmap(jax.grad(total))(xs),
        )

    grad, forward, reverse, hessian, (sum_, ys), scan_grad, mapped, grads = derivatives(row, xs)
    finite(grad, forward, reverse, hessian, sum_, ys, scan_grad)
    close(forward, reverse, "float32")
    close(grad, jnp.sum(forward, axis=tuple(range(forward.ndim - 1))), "float32", 4.0)
    close(hessian, hessian.T, "float32", 4.0)
    close(ys, mapped, "float32")
    close(sum_, jnp.sum(mapped), "float32", 4.0)
    close(scan_grad, grads, "float32", 4.0)


@pytest.mark.parametrize("name", NAMES)
def test_check_grads_float64_away_from_kinks(name, activation):
    # step's sigmoid surrogate is not its derivative by design; its true derivative is 0.
    f = activation(name, surrogate="none") if name == "step" else activation(name)
    points = np.array([-2.3, -0.6, -0.15, 0.35, 1.45, 2.6])
    with jax.enable_x64(True):
        x = jnp.asarray(away_from_kinks(name, points), jnp.float64)
        # Second order in reverse mode (vjp of vjp: the rule transposed, twice), first order
        # forward; forward-over-reverse is the hessian test above.
        check_grads(jax.jit(f), (x,), order=2, modes=["rev"])
        check_grads(jax.jit(f), (x,), order=1, modes=["fwd"])


# --- integer inputs --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # jax.nn.softmax on ints
@pytest.mark.parametrize("name", NAMES)
def test_integer_inputs_like_jax_nn(name, activation):
    f = activation(name)
    x = jnp.arange(-3, 5, dtype=jnp.int32).reshape(2, 4)
    ours = f(x)
    as_float = f(x.astype(jnp.float32))
    entry = jaxact.info(name)
    reference = None
    if entry.jax_nn:
        nn_fn = getattr(jax.nn, entry.jax_nn)
        if name == "logsumexp":
            nn_fn = functools.partial(nn_fn, axis=-1)
        try:
            reference = nn_fn(x)
        except (TypeError, ValueError):  # jax.nn refuses ints here (strict promotion or dtype)
            reference = None
    if reference is not None:
        assert ours.dtype == reference.dtype
        np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=1e-5, atol=1e-6)
    else:
        # Where jax.nn has no integer answer ours promotes to the default float.
        assert ours.dtype == jnp.float32
    finite(ours)
    np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(as_float, np.float64))


# --- drop-in compatibility with jax.nn -----------------------------------------------------


def _positional(signature: inspect.Signature):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in signature.parameters.values() if p.kind in kinds]


@pytest.mark.parametrize("name", JAX_NN)
def test_signature_accepts_jax_nn_arguments(name):
    ours = inspect.signature(jaxact.info(name).fn)
    theirs = inspect.signature(getattr(jax.nn, jaxact.info(name).jax_nn))
    ours_positional, theirs_positional = _positional(ours), _positional(theirs)
    assert [p.name for p in ours_positional] == [p.name for p in theirs_positional]
    assert [p.default for p in ours_positional] == [p.default for p in theirs_positional]
    for p in ours_positional:  # jax.nn's keyword use must work too
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    new = [p for p in ours.parameters.values() if p.name not in theirs.parameters]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in new), new


@pytest.mark.parametrize("name", JAX_NN)
def test_values_and_gradients_match_jax_nn(name, activation):
    ours = activation(name)
    theirs = getattr(jax.nn, jaxact.info(name).jax_nn)
    if name == "logsumexp":
        theirs = functools.partial(theirs, axis=-1)
    x = jnp.asarray(away_from_kinks(name, np.linspace(-5.0, 5.0, 48)).reshape(4, 12), jnp.float32)

    @jax.jit  # one compilation for both functions and both derivatives
    def values_and_gradients(x):
        y = ours(x)
        weights = jnp.cos(jnp.arange(y.size, dtype=jnp.float32)).reshape(y.shape)
        loss = lambda f: lambda x: jnp.sum(weights * f(x))
        return y, theirs(x), jax.grad(loss(ours))(x), jax.grad(loss(theirs))(x)

    y, y_nn, grad, grad_nn = values_and_gradients(x)
    np.testing.assert_allclose(y, y_nn, rtol=1e-5, atol=1e-6)
    # atol: jax.nn's derivatives underflow to 0 sooner in the tails (gelu at -5).
    np.testing.assert_allclose(grad, grad_nn, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "alias, jax_name",
    [("swish", "swish"), ("hard_swish", "hard_swish"), ("softsign", "soft_sign"),
     ("linear", "identity")],
)  # fmt: skip
def test_module_aliases_match_jax_nn(alias, jax_name):
    x = jnp.linspace(-4.0, 4.0, 17)
    np.testing.assert_allclose(getattr(jaxact, alias)(x), getattr(jax.nn, jax_name)(x), rtol=1e-6)


# --- traced hyperparameters ----------------------------------------------------------------

TRACED = [
    # name, parameter, values to vmap over
    ("leaky_relu", "negative_slope", (0.01, 0.2, 0.5)),
    ("prelu", "negative_slope", (0.1, 0.25)),
    ("softmax", "temperature", (0.5, 1.0, 3.0)),
    ("log_softmax", "temperature", (0.5, 2.0)),
    ("softmin", "temperature", (0.5, 2.0)),
    ("silu", "beta", (0.5, 1.0, 2.0)),
    ("elu", "alpha", (0.5, 1.0, 2.0)),
    ("celu", "alpha", (0.5, 2.0)),
    ("sigmoid", "gain", (0.5, 1.0, 4.0)),
    ("softplus", "beta", (0.5, 1.0, 3.0)),
    ("squareplus", "b", (1.0, 4.0)),
    ("hard_sigmoid", "slope", (0.2, 0.25)),
    ("hard_sigmoid", "offset", (0.4, 0.5)),
    ("hard_tanh", "max_val", (0.5, 2.0)),
    ("soft_shrink", "threshold", (0.25, 0.5)),
]


@pytest.mark.parametrize("name, param, values", TRACED)
def test_hyperparameter_vmap_and_grad(name, param, values, activation):
    f = activation(name)
    x = np.asarray(inputs(jnp.float32, (2, 8)) / 2)
    for value in values:
        x = away_from_kinks(name, x, margin=0.05, **{param: value})
    x = jnp.asarray(x, jnp.float32)
    with_param = jax.jit(lambda p: f(x, **{param: p}))
    batched = jax.jit(jax.vmap(with_param))(jnp.asarray(values, jnp.float32))
    for value, y in zip(values, batched, strict=True):
        close(y, with_param(jnp.float32(value)), "float32", 2.0)

    with jax.enable_x64(True):
        x = x.astype(jnp.float64)
        weights = jnp.cos(jnp.arange(x.size, dtype=jnp.float64)).reshape(x.shape)
        loss = jax.jit(lambda p: jnp.sum(weights * f(x, **{param: p})))
        p0, h = jnp.float64(values[-1]), 1e-6
        fd = (loss(p0 + h) - loss(p0 - h)) / (2 * h)
        np.testing.assert_allclose(jax.jit(jax.grad(loss))(p0), fd, rtol=1e-6, atol=1e-8)
