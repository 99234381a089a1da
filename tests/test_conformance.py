"""jaxact against jax.nn, for every function both have: result types, special points, transforms.

jaxact's promise is the same answer as jax.nn where jax.nn is right, and the right
answer where it is not:

- result types: the dtype and weak type of every input kind (Python scalars, weakly
  typed arrays, bool, integers, half types, float32/64, complex64), with x64 off and
  on, from ``jax.eval_shape`` (nothing compiles);
- special points (exact kinks, +-0, +-subnormals, +-largest finite, +-inf, NaN):
  value, first and second derivative through ``grad``, ``grad(grad)``, ``hessian``,
  ``jvp``, ``vmap`` and ``jit``, in float32 and float64. Where jaxact and jax.nn
  differ, jaxact must be right (mpmath, or at +-inf the limit) and jax.nn wrong;
- rows of the normalisers holding NaN, +inf or only -inf.

Every intentional difference is listed in :data:`DIFFERENCES`, tested here, and
documented in docs/differences.md (checked below).
"""

import functools
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact
from experiments import accuracy
from jaxact import _dtypes

JAX_NN = tuple(n for n in jaxact.names() if jaxact.info(n).jax_nn)
ELEMENTWISE = tuple(n for n in JAX_NN if jaxact.info(n).elementwise)
ROWWISE = tuple(n for n in JAX_NN if not jaxact.info(n).elementwise)
OTHERS = tuple(n for n in jaxact.names() if not jaxact.info(n).jax_nn)
DOCS = pathlib.Path(__file__).parent.parent / "docs" / "differences.md"

# id -> what differs; docs/differences.md has a row for each, and each is tested here.
DIFFERENCES = {
    "complex-ordered": "complex inputs to functions that order their input raise TypeError",
    "refused-inputs": "inputs jax.nn refuses are accepted, with jnp.tanh's result type",
    "unsigned-bounds": "hard_tanh of unsigned integers clamps at 0 (jax.nn wraps -1 to 255)",
    "parameter-dtype": "hyperparameters take the input's dtype instead of promoting it",
    "strict-promotion": "every input kind works under strict dtype promotion",
    "empty-rows": "all -inf or fully masked rows: zeros / -inf with derivative 0, not NaN",
    "plus-inf-rows": "rows holding +inf: uniform mass on the +inf entries, not NaN",
    "zero-weight-derivative": "logsumexp's derivative in a zero weight b_i is exp(a_i)/sum",
    "accuracy": "values and derivatives right where jax.nn's underflow, overflow or cancel",
    "celu-curvature-at-0": "celu''(0) is the left branch 1/alpha (jax.nn: 1/(4 alpha))",
}


def jax_nn(name: str):
    fn = getattr(jax.nn, jaxact.info(name).jax_nn)
    return functools.partial(fn, axis=-1) if name == "logsumexp" else fn


def ours(name: str):
    fn = jaxact.info(name).fn
    return functools.partial(fn, axis=-1) if name == "logsumexp" else fn


# --- result types ------------------------------------------------------------------------

KINDS = (
    "python float", "python int", "python bool", "weak float", "weak int", "bool", "int8",
    "int32", "uint8", "float16", "bfloat16", "float32", "float64", "complex64",
)  # fmt: skip


def abstract_input(kind: str, rowwise: bool):
    """The input of a kind as eval_shape takes it (Python scalars only for elementwise)."""
    if kind.startswith("python"):
        return (
            None if rowwise else {"python float": 0.5, "python int": 2, "python bool": True}[kind]
        )
    if kind.startswith("weak"):
        dtype = jnp.result_type(float if kind == "weak float" else int)
        return jax.ShapeDtypeStruct((4,), dtype, weak_type=True)
    return jax.ShapeDtypeStruct((4,), jnp.dtype(kind))  # float64 is float32 with x64 off


def result_type(fn, x):
    """(dtype name, weak) of fn(x) under standard promotion, or the exception's type name."""
    try:
        with jax.numpy_dtype_promotion("standard"):
            out = jax.eval_shape(fn, x)
    except (TypeError, ValueError) as error:
        return type(error).__name__
    return jnp.dtype(out.dtype).name, bool(out.weak_type)


ORDERED = {n for n, c in _dtypes.CONVENTIONS.items() if isinstance(c.complex_formula, str)}


def type_differences(names, x64: bool):
    """Every (name, kind, jaxact, jax.nn) whose result type differs, apart from the documented
    refusals (complex to an ordered function) and acceptances (jax.nn refuses the input)."""
    found = []
    with jax.enable_x64(x64):
        for name in names:
            rowwise = not jaxact.info(name).elementwise
            for kind in KINDS:
                x = abstract_input(kind, rowwise)
                if x is None:
                    continue
                theirs, mine = result_type(jax_nn(name), x), result_type(ours(name), x)
                if kind == "complex64" and name in ORDERED:
                    expected = "TypeError"  # complex-ordered
                elif isinstance(theirs, str):  # refused-inputs: jnp.tanh's type
                    expected = result_type(jnp.tanh, x)
                else:
                    expected = theirs
                if mine != expected:
                    found.append((name, kind, mine, theirs))
    return found


@pytest.mark.parametrize("x64", [False, True], ids=["x32", "x64"])
def test_result_types_equal_jax_nn(x64):
    # Under the tests' strict promotion too (the eval_shape above switches to standard only
    # for jax.nn, which needs it for half of these inputs; jaxact gets the same under strict).
    assert type_differences(JAX_NN, x64) == []
    with jax.enable_x64(x64):
        for name in JAX_NN:
            for kind in ("int8", "bool", "python int", "weak float", "bfloat16"):
                x = abstract_input(kind, not jaxact.info(name).elementwise)
                if x is not None:
                    strict = jax.eval_shape(ours(name), x)
                    assert (strict.dtype, strict.weak_type) == _as_pair(result_type(ours(name), x))


def _as_pair(found):
    return (jnp.dtype(found[0]), found[1])


@pytest.mark.parametrize("x64", [False, True], ids=["x32", "x64"])
def test_functions_jax_nn_lacks_follow_their_relative(x64):
    with jax.enable_x64(x64):
        for name in OTHERS:
            like = _dtypes.convention(name).like
            rowwise = not jaxact.info(name).elementwise
            for kind in KINDS:
                x = abstract_input(kind, rowwise)
                if x is None:
                    continue
                mine = result_type(jaxact.info(name).fn, x)
                if kind == "complex64":
                    assert (mine == "TypeError") == (name in ORDERED), name
                    continue
                expected = result_type(like, x)
                if isinstance(expected, str):
                    expected = result_type(jnp.tanh, x)
                assert mine == expected, (name, kind)


def test_weak_type_survives_like_a_python_scalar():
    half = jnp.ones(3, jnp.bfloat16)
    for name in ("tanh", "sigmoid", "relu6", "softplus", "leaky_relu"):
        assert (jaxact.info(name).fn(0.5) * half).dtype == jnp.bfloat16, name
        assert (jax.nn.tanh(0.5) * half).dtype == jnp.bfloat16


def test_complex_inputs_compute_jax_nns_formula():
    z = jnp.array([1 + 1j, -0.5 + 2j, 0j, 3 - 0.25j], jnp.complex64)
    for name in JAX_NN:
        if name in ORDERED:
            with pytest.raises(TypeError, match="complex"):
                ours(name)(z)
            continue
        mine = ours(name)(z)
        with jax.numpy_dtype_promotion("standard"):  # jax.nn's formulas need it for complex
            theirs = jax_nn(name)(z)
        assert mine.dtype == theirs.dtype == jnp.complex64, name
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(jaxact.tanh(jnp.complex64(1 + 1j)), np.tanh(1 + 1j), rtol=1e-6)
    with pytest.raises(TypeError, match="real inputs only"):
        jaxact.gelu(z, approximate=False)
    # The hyperparameters enter the complex formula too.
    np.testing.assert_allclose(
        jaxact.sigmoid(z, gain=2.0), jax.nn.sigmoid(2 * z), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        jaxact.softmax(z, temperature=2.0), jax.nn.softmax(z / 2), rtol=1e-6, atol=1e-7
    )
    # Differentiable as jax.nn's (holomorphic functions).
    g = jax.grad(lambda z: jaxact.tanh(z), holomorphic=True)(jnp.complex64(0.5 + 0.5j))
    np.testing.assert_allclose(g, 1 / np.cosh(0.5 + 0.5j) ** 2, rtol=1e-5)


def test_refused_inputs_are_accepted():
    # jax.nn.sigmoid refuses integers; jaxact gives jnp.tanh's type (float32).
    with pytest.raises(TypeError):
        jax.nn.sigmoid(jnp.arange(3))
    y = jaxact.sigmoid(jnp.arange(3))
    assert y.dtype == jnp.tanh(jnp.arange(3)).dtype
    np.testing.assert_allclose(y, jax.nn.sigmoid(jnp.arange(3.0)), rtol=1e-6)


def test_unsigned_bounds():
    x = jnp.array([0, 1, 5, 255], jnp.uint8)
    assert jax.nn.hard_tanh(x)[0] == 255  # -1 wrapped
    y = jaxact.hard_tanh(x)
    assert y.dtype == jnp.uint8
    np.testing.assert_array_equal(y, np.clip(np.asarray(x, np.int64), -1, 1))


def test_parameter_dtype():
    x = jnp.array([-2.0, 1.0], jnp.float32)
    with jax.enable_x64(True):
        slope = jnp.float64(0.2)
        assert jaxact.leaky_relu(x, slope).dtype == jnp.float32
        with jax.numpy_dtype_promotion("standard"):
            assert jax.nn.leaky_relu(x, slope).dtype == jnp.float64


def test_strict_promotion():
    x = jnp.arange(-2, 8, dtype=jnp.int32)
    with pytest.raises(jax.dtypes.TypePromotionError):
        jax.nn.relu6(x)  # the tests run under strict promotion
    with jax.numpy_dtype_promotion("standard"):
        expected = jax.nn.relu6(x)
    y = jaxact.relu6(x)
    assert (y.dtype, y.weak_type) == (expected.dtype, expected.weak_type)
    np.testing.assert_array_equal(y, expected)


# --- special points ------------------------------------------------------------------------


def special_points(name: str, dtype) -> np.ndarray:
    """Exact kinks, +-0, +-smallest subnormal and normal, +-1, +-largest finite, +-inf, NaN."""
    info = np.finfo(dtype)
    tiny = float(info.smallest_subnormal)
    base = [0.0, -0.0, tiny, -tiny, float(info.tiny), -float(info.tiny), 1.0, -1.0, 2.5, -2.5]
    base += [float(info.max), -float(info.max), math.inf, -math.inf, math.nan]
    return np.array([*jaxact.info(name).breakpoints(), *base], dtype)


@functools.cache
def _transforms(name: str, implementation: str, dtype: str):
    """One jitted program: f, vmap(f), grad, grad(grad), hessian and jvp at every point."""
    f = ours(name) if implementation == "jaxact" else jax_nn(name)
    d1 = jax.grad(f)
    d2 = jax.grad(d1)

    @jax.jit
    def run(x):
        return {
            "value": f(x),
            "vmap": jax.vmap(f)(x),
            "grad": jax.vmap(d1)(x),
            "grad(grad)": jax.vmap(d2)(x),
            "hessian": jax.vmap(jax.hessian(f))(x),
            "jvp": jax.jvp(f, (x,), (jnp.ones_like(x),))[1],
        }

    return run


def _truth(name: str, x: np.ndarray) -> np.ndarray:
    """(3, n): the true value, f' and f'' (mpmath); at +-inf the limit, at NaN NaN."""
    x = x.astype(np.float64)
    far = np.where(np.isinf(x), np.sign(x) * 1e300, np.where(np.isnan(x), 0.0, x))
    ref = accuracy.reference(name, far.astype(np.float64), dtype=np.float64)
    truth = np.stack(ref[::2])
    limit = np.isinf(x)
    # +-1e300 stands for +-inf: a limit beyond any float is +-inf (relu(inf) = inf), one
    # below any float is 0 (squareplus(-inf)).
    far_values = truth[:, limit]
    far_values = np.where(np.abs(far_values) > 1e250, np.copysign(np.inf, far_values), far_values)
    truth[:, limit] = np.where(np.abs(far_values) < 1e-250, 0.0, far_values)
    truth[:, np.isnan(x)] = np.nan
    return truth


def _right(y: np.ndarray, truth: np.ndarray, dtype) -> np.ndarray:
    """Within 64 eps of the truth (absolute below the smallest normal), or the same inf/NaN."""
    y = y.astype(np.float64)
    info = np.finfo(dtype)
    with np.errstate(invalid="ignore"):
        close = np.abs(y - truth) <= 64 * float(info.eps) * np.maximum(np.abs(truth), info.tiny)
    same = (y == truth) | (np.isnan(y) & np.isnan(truth))
    return close | same


def _same(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
    return _right(a.astype(np.float64), b.astype(np.float64), dtype)


ORDERS = ("value", "grad", "grad(grad)")


def special_point_report(name: str, dtype) -> dict:
    """jaxact and jax.nn at the special points, and where each is right."""
    x = special_points(name, dtype)
    mine = jax.tree.map(np.asarray, _transforms(name, "jaxact", np.dtype(dtype).name)(x))
    theirs = jax.tree.map(np.asarray, _transforms(name, "jax.nn", np.dtype(dtype).name)(x))
    truth = _truth(name, x)
    return {"x": x, "mine": mine, "theirs": theirs, "truth": truth}


def _check_special_points(name: str, dtype):
    report = special_point_report(name, dtype)
    x, mine, theirs, truth = report["x"], report["mine"], report["theirs"], report["truth"]
    # Kinks, +-0 and the subnormals, which XLA on CPU treats as zeros (denormals are zero).
    zero = np.abs(x) < np.finfo(dtype).tiny
    kinks = np.isin(x, jaxact.info(name).breakpoints()) | zero
    for key, order in (("value", 0), ("grad", 1), ("grad(grad)", 2)):
        ours_, nn = mine[key], theirs[key]
        agree = _same(ours_, nn, dtype)
        if order < 2:  # at kinks and +-0 the value and the derivative are jax.nn's
            assert agree[kinks].all(), (
                key,
                x[kinks & ~agree],
                ours_[kinks & ~agree],
                nn[kinks & ~agree],
            )
        else:  # "celu-curvature-at-0": a documented choice at the kink, jaxact's own branch
            documented = zero & (name == "celu")
            agree = agree | documented
        # "accuracy": where they differ, jaxact is right and jax.nn is not.
        # At NaN the value is NaN; the derivative there is NaN or jax.nn's (piecewise functions
        # pick a branch: relu'(nan) = 0 in both); the second derivative is not specified.
        if order == 1:
            agree = agree | (np.isnan(x) & np.isnan(ours_))
        if order == 2:
            agree = agree | np.isnan(x)
        differ = ~agree
        right = _right(ours_, truth[order], dtype)
        wrong_theirs = ~_right(nn, truth[order], dtype)
        bad = differ & ~(right & wrong_theirs)
        assert not bad.any(), (
            f"{key} at x={x[bad]}: jaxact {ours_[bad]}, jax.nn {nn[bad]}, true {truth[order][bad]}"
        )
    # The transforms agree with each other: vmap with the batch, hessian and jvp with grad.
    for key, reference in (("vmap", "value"), ("jvp", "grad"), ("hessian", "grad(grad)")):
        assert _same(mine[key], mine[reference], dtype).all(), (name, key)
    assert np.isnan(mine["value"][np.isnan(x)]).all()  # NaN in, NaN out


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_special_points_float32(name):
    _check_special_points(name, np.float32)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_special_points_float64(name):
    with jax.enable_x64(True):
        _check_special_points(name, np.float64)


# --- rows of the normalisers ---------------------------------------------------------------

NAN, INF = math.nan, math.inf
TINY = float(np.finfo(np.float32).smallest_subnormal)
BIG = float(np.finfo(np.float32).max)
ROWS = np.array(
    [
        [NAN, 0.0, 1.0, 2.0],  # NaN: all NaN in both
        [0.0, -0.0, TINY, -TINY],  # +-0 and subnormals: equal
        [BIG, BIG, -BIG, 0.0],  # the largest floats: equal
        [-INF, 0.0, 1.0, -INF],  # some -inf: equal
        [INF, 0.0, INF, -1.0],  # plus-inf-rows
        [-INF, -INF, -INF, -INF],  # empty-rows
    ],
    np.float32,
)
SAME_ROWS = slice(0, 4)


@functools.cache
def _row_transforms(name: str, implementation: str):
    f = ours(name) if implementation == "jaxact" else jax_nn(name)
    weights = jnp.cos(jnp.arange(4.0))

    def loss(x):
        y = f(x)
        return jnp.sum(weights[: jnp.size(y)] * jnp.where(jnp.isinf(y), 0.0, y))

    @jax.jit
    def run(x):
        return f(x), jax.vmap(jax.grad(loss))(x), jax.vmap(f)(x)

    return run


@pytest.mark.parametrize("name", ROWWISE)
def test_special_rows(name):
    y, g, mapped = _row_transforms(name, "jaxact")(ROWS)
    y_nn, g_nn, _ = _row_transforms(name, "jax.nn")(ROWS)
    np.testing.assert_array_equal(mapped, y)
    for a, b in ((y, y_nn), (g, g_nn)):
        a, b = np.asarray(a[SAME_ROWS], np.float64), np.asarray(b[SAME_ROWS], np.float64)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-30, err_msg=name)
    if name != "glu":  # NaN in a row: the row is NaN, value and gradient
        assert np.isnan(y[0]).all() and np.isnan(g[0]).all()
    # Documented limits, where jax.nn gives NaN (or, for logsumexp and glu, agrees).
    plus, empty = y[4], y[5]
    if name == "softmax":
        np.testing.assert_array_equal(plus, [0.5, 0.0, 0.5, 0.0])  # plus-inf-rows
        np.testing.assert_array_equal(empty, 0.0)  # empty-rows
        assert np.isnan(y_nn[4:]).all()
    if name == "log_softmax":
        np.testing.assert_allclose(plus, [np.log(0.5), -INF, np.log(0.5), -INF])
        np.testing.assert_array_equal(empty, -INF)
        assert np.isnan(y_nn[4]).all()
    if name in ("softmax", "log_softmax", "logsumexp"):
        assert not np.isnan(g[4:]).any()
        np.testing.assert_array_equal(g[5], 0.0)  # empty-rows: derivative 0
    if name == "logsumexp":
        np.testing.assert_array_equal(y[4:], y_nn[4:])  # inf and -inf, as jax.nn


def test_zero_weights_of_logsumexp():
    a, b = jnp.array([INF, 0.0]), jnp.array([0.0, 1.0])
    assert float(jaxact.logsumexp(a, b=b)) == float(jax.nn.logsumexp(a, b=b)) == 0.0
    np.testing.assert_array_equal(jax.grad(lambda a: jaxact.logsumexp(a, b=b))(a), [0.0, 1.0])
    # zero-weight-derivative: d/db_i log sum_j b_j e^{a_j} = e^{a_i} / sum_j b_j e^{a_j}.
    a = jnp.array([1.0, 0.0, 2.0])
    b = jnp.array([0.0, 1.0, 0.5])
    total = np.sum(np.asarray(b) * np.exp(np.asarray(a)))
    db = jax.grad(lambda b: jaxact.logsumexp(a, b=b))(b)
    np.testing.assert_allclose(db, np.exp(np.asarray(a)) / total, rtol=1e-6)
    assert float(jax.grad(lambda b: jax.nn.logsumexp(a, b=b))(b)[0]) == 0.0


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_second_derivatives_of_normalisers_equal_jax_nn(name):
    x = jnp.array([0.3, -1.2, 2.0, 0.0, -0.5], jnp.float32)
    total = lambda f: lambda x: jnp.sum(jnp.cos(jnp.arange(5.0))[: jnp.size(f(x))] * f(x))
    h, h_nn = (jax.jit(jax.hessian(total(f)))(x) for f in (ours(name), jax_nn(name)))
    np.testing.assert_allclose(h, h_nn, rtol=2e-5, atol=1e-6)


# --- the documentation ---------------------------------------------------------------------


def test_every_difference_is_documented():
    text = DOCS.read_text()
    for key in DIFFERENCES:
        assert f"`{key}`" in text, key
