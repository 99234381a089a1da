"""Softmax and relatives, sparsemax, GLU: values, masks, empty rows, parameters, jax.nn parity.

Accuracy against mpmath is in test_accuracy.py; here the examples, the
degenerate rows and the properties every normaliser must have.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxact

INF = jnp.inf


def no_nan(*arrays):
    for a in arrays:
        assert not np.any(np.isnan(np.asarray(a))), a


# --- softmax ---------------------------------------------------------------------------------


def test_softmax_large_logits_example():
    y = jaxact.softmax(jnp.array([1010.0, 1020.0, 1000.0, 990.0, 1050.0]))
    np.testing.assert_allclose(y, [4.248e-18, 9.358e-14, 1.929e-22, 8.757e-27, 1.0], rtol=1e-3)


def _article_softmax(x):
    """A NumPy softmax over columns (transpose, subtract the column max)."""
    x = x.T
    x = x - np.max(x, axis=0)
    x = np.exp(x) / np.sum(np.exp(x), axis=0)
    return x.T


def test_softmax_equals_the_max_subtracted_version():
    x = np.arange(1.0, 7.0)
    expected = np.exp(x - 6) / np.sum(np.exp(x - 6))
    np.testing.assert_allclose(jaxact.softmax(jnp.asarray(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(jaxact.softmax(jnp.asarray(x)), _article_softmax(x), rtol=1e-6)
    batch = np.arange(12.0).reshape(2, 6) / 3
    np.testing.assert_allclose(
        jaxact.softmax(jnp.asarray(batch)), _article_softmax(batch), rtol=1e-6
    )
    # Any axis: subtracting the max is only the overflow guard.
    np.testing.assert_allclose(
        jaxact.softmax(jnp.asarray(batch), axis=0), _article_softmax(batch.T).T, rtol=1e-6
    )


def test_softmax_axis_tuple_and_none():
    x = jnp.arange(24.0).reshape(2, 3, 4) / 7
    y = jaxact.softmax(x, axis=(1, 2))
    np.testing.assert_allclose(y.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y, jax.nn.softmax(x, axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(jaxact.softmax(x, axis=None).sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.25, 2.0, 10.0])
def test_temperature(temperature):
    x = jnp.array([[1.0, 2.0, 3.0, -1.0], [0.5, 0.0, -0.5, 4.0]])
    np.testing.assert_allclose(
        jaxact.softmax(x, temperature=temperature), jax.nn.softmax(x / temperature), rtol=1e-6
    )
    np.testing.assert_allclose(
        jaxact.log_softmax(x, temperature=temperature),
        jax.nn.log_softmax(x / temperature),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        jaxact.softmin(x, temperature=temperature), jax.nn.softmax(-x / temperature), rtol=1e-6
    )


def test_temperature_flattens_and_sharpens():
    x = jnp.array([1.0, 2.0, 3.0])
    entropy = lambda p: -float(jnp.sum(p * jnp.log(p)))
    hot, plain, cold = (jaxact.softmax(x, temperature=t) for t in (5.0, 1.0, 0.2))
    assert entropy(hot) > entropy(plain) > entropy(cold)
    np.testing.assert_allclose(jaxact.softmax(x, temperature=1e3), 1 / 3, rtol=1e-2)


def test_softmin_is_softmax_of_minus_x():
    x = jnp.array([0.0, 1.0, -2.0, 3.0])
    np.testing.assert_allclose(jaxact.softmin(x), jax.nn.softmax(-x), rtol=1e-6)


def test_log_softmax_is_log_of_softmax():
    x = jnp.array([[1.0, 2.0, 3.0], [-50.0, 0.0, 50.0]])
    np.testing.assert_allclose(jaxact.log_softmax(x), jax.nn.log_softmax(x), rtol=1e-6)
    np.testing.assert_allclose(jnp.exp(jaxact.log_softmax(x)), jaxact.softmax(x), rtol=1e-6)


# --- empty and masked rows ---------------------------------------------------------------------


def _finite_part(y):
    return jnp.where(jnp.isfinite(y), y, 0.0)


def test_all_minus_inf_row_gives_zeros_without_nan():
    x = jnp.array([[-INF, -INF, -INF], [0.0, 1.0, -INF]])
    p = jaxact.softmax(x)
    np.testing.assert_array_equal(p[0], 0.0)
    np.testing.assert_allclose(p[1], jax.nn.softmax(x[1]), rtol=1e-6)
    np.testing.assert_array_equal(jaxact.log_softmax(x)[0], -INF)
    np.testing.assert_array_equal(jaxact.logsumexp(x, axis=-1)[0], -INF)
    weights = jnp.array([1.0, -2.0, 0.5])
    for g in (
        jax.grad(lambda x: jnp.sum(weights * jaxact.softmax(x)))(x),
        jax.grad(lambda x: jnp.sum(_finite_part(jaxact.log_softmax(x))))(x),
        jax.grad(lambda x: jnp.sum(_finite_part(jaxact.logsumexp(x, axis=-1))))(x),
        jax.jacrev(jaxact.softmax)(x[0]),
        jax.jacfwd(jaxact.softmax)(x[0]),
    ):
        no_nan(g)
    np.testing.assert_array_equal(jax.jacfwd(jaxact.softmax)(x[0]), 0.0)


def test_fully_masked_row_gives_zeros_without_nan():
    x = jnp.array([[3.0, 1.0, 2.0], [0.5, 1.5, -1.0]])
    where = jnp.array([[False, False, False], [True, False, True]])
    p = jaxact.softmax(x, where=where)
    np.testing.assert_array_equal(p[0], 0.0)
    np.testing.assert_allclose(p[1], jax.nn.softmax(x[1], where=where[1]), rtol=1e-6)
    log_p = jaxact.log_softmax(x, where=where)
    np.testing.assert_array_equal(log_p[0], -INF)
    np.testing.assert_array_equal(log_p[1, 1], -INF)
    np.testing.assert_allclose(log_p[1], jax.nn.log_softmax(x[1], where=where[1]), rtol=1e-6)
    lse = jaxact.logsumexp(x, axis=-1, where=where)
    np.testing.assert_array_equal(lse[0], -INF)
    for f in (
        lambda x: jnp.sum(jnp.cos(x) * jaxact.softmax(x, where=where)),
        lambda x: jnp.sum(_finite_part(jaxact.log_softmax(x, where=where))),
        lambda x: jnp.sum(_finite_part(jaxact.logsumexp(x, axis=-1, where=where))),
    ):
        g = jax.grad(f)(x)
        no_nan(g)
        np.testing.assert_array_equal(g[0], 0.0)
        np.testing.assert_array_equal(g[1, 1], 0.0)
        no_nan(jax.jit(jax.grad(f))(x), jax.jit(jax.hessian(f))(x))


def test_masked_softmax_under_jit_and_vmap_with_traced_mask():
    x = jnp.array([[3.0, 1.0, 2.0], [0.5, 1.5, -1.0]])
    where = jnp.array([[True, False, True], [False, False, False]])
    f = jax.jit(jax.vmap(lambda x, w: jaxact.softmax(x, where=w)))
    np.testing.assert_allclose(f(x, where), jaxact.softmax(x, where=where), rtol=1e-6)
    g = jax.jit(jax.vmap(jax.grad(lambda x, w: jaxact.logsumexp(x, where=w))))(x, where)
    no_nan(g)
    np.testing.assert_allclose(g[0], jax.nn.softmax(x[0], where=where[0]), rtol=1e-6)


def test_plus_inf_rows_are_consistent():
    # softmax puts uniform mass on the +inf entries; log_softmax is its log; logsumexp is +inf.
    x = jnp.array([INF, 0.0, INF, -1.0])
    np.testing.assert_array_equal(jaxact.softmax(x), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(jaxact.log_softmax(x), [np.log(0.5), -INF, np.log(0.5), -INF])
    assert float(jaxact.logsumexp(x)) == np.inf == float(jax.nn.logsumexp(x))
    np.testing.assert_allclose(jax.grad(jaxact.logsumexp)(x), jaxact.softmax(x))


# --- logsumexp against jax.nn ------------------------------------------------------------------

A = jnp.array([[1.0, 2.0, 3.0, -1.0], [0.5, -4.0, 2.0, 0.0], [10.0, 10.0, -3.0, 1.0]])
# No zero weight: there jax.nn's derivative in b is 0, where exp(a_i) / sum_j b_j exp(a_j) is right.
B = jnp.array([[1.0, 0.5, 2.0, 0.3], [1.0, 1.0, 1.0, 3.0], [0.25, 2.0, 1.0, 1.0]])
WHERE = jnp.array([[True, False, True, True], [False, False, False, False], [True] * 4])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"axis": (0, 1)}, {"axis": -1, "b": B},
     {"axis": 0, "b": B, "keepdims": True}, {"axis": 1, "where": WHERE},
     {"axis": 1, "b": B, "where": WHERE, "keepdims": True}, {"axis": [0, 1], "b": B}],
)  # fmt: skip
def test_logsumexp_matches_jax_nn(kwargs):
    ours, theirs = jaxact.logsumexp(A, **kwargs), jax.nn.logsumexp(A, **kwargs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    loss = lambda f: lambda a: jnp.sum(_finite_part(f(a, **kwargs)))
    np.testing.assert_allclose(
        jax.jit(jax.grad(loss(jaxact.logsumexp)))(A),
        jax.jit(jax.grad(loss(jax.nn.logsumexp)))(A),
        rtol=1e-5,
        atol=1e-7,
    )
    if "b" in kwargs:
        weights = lambda f: jax.jit(
            jax.grad(lambda b: jnp.sum(_finite_part(f(A, **{**kwargs, "b": b}))))
        )
        np.testing.assert_allclose(
            weights(jaxact.logsumexp)(B), weights(jax.nn.logsumexp)(B), rtol=1e-5
        )


def test_logsumexp_return_sign_defers_to_jax_nn():
    b = jnp.array([1.0, -3.0])
    a = jnp.array([0.0, 0.0])
    for ours, theirs in zip(
        jaxact.logsumexp(a, b=b, return_sign=True),
        jax.nn.logsumexp(a, b=b, return_sign=True),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs)


def test_logsumexp_keeps_half_precision():
    y = jaxact.logsumexp(jnp.array([1000.0, 1000.0], jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(y), 1000.693, rtol=1e-2)


# --- sparsemax -------------------------------------------------------------------------------


def _brute_force_projection(z):
    """The Euclidean projection onto the simplex, by trying every support."""
    best, best_distance = None, np.inf
    n = z.size
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            p = np.zeros(n)
            idx = list(support)
            p[idx] = z[idx] - (z[idx].sum() - 1) / size
            if np.all(p >= 0):
                distance = np.sum((p - z) ** 2)
                if distance < best_distance:
                    best, best_distance = p, distance
    return best


def test_sparsemax_matches_brute_force_projection_and_is_sparse():
    rows = np.random.default_rng(0).normal(size=(20, 5)) * 1.5
    with jax.enable_x64(True):
        p = np.asarray(jaxact.sparsemax(jnp.asarray(rows)))
    for row, projected in zip(rows, p, strict=True):
        np.testing.assert_allclose(projected, _brute_force_projection(row), atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(p >= 0)
    assert np.mean(p == 0) > 0.3  # exact zeros, unlike softmax
    np.testing.assert_array_equal(jaxact.sparsemax(jnp.array([0.0, 0.5, 2.0])), [0.0, 0.0, 1.0])


def test_sparsemax_axis():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    np.testing.assert_allclose(jaxact.sparsemax(x, axis=0), jaxact.sparsemax(x.T).T, rtol=1e-6)


def test_sparsemax_jacobian_matches_finite_differences():
    rows = np.random.default_rng(2).normal(size=(5, 6))
    h = 1e-6
    with jax.enable_x64(True):
        f = jax.jit(jaxact.sparsemax)
        for row in rows:
            z = jnp.asarray(row)
            numeric = np.stack(
                [(f(z.at[j].add(h)) - f(z.at[j].add(-h))) / (2 * h) for j in range(z.size)], axis=1
            )
            np.testing.assert_allclose(jax.jacfwd(jaxact.sparsemax)(z), numeric, atol=1e-7)
            np.testing.assert_allclose(jax.jacrev(jaxact.sparsemax)(z), numeric, atol=1e-7)


# --- glu -------------------------------------------------------------------------------------


def test_glu_values_and_axis():
    x = jnp.array([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0]])
    np.testing.assert_allclose(jaxact.glu(x), x[:, :2] * jax.nn.sigmoid(x[:, 2:]), rtol=1e-6)
    np.testing.assert_allclose(jaxact.glu(x, axis=0), x[:1] * jax.nn.sigmoid(x[1:]), rtol=1e-6)
    np.testing.assert_allclose(jaxact.glu(x), jax.nn.glu(x), rtol=1e-6)


@pytest.mark.parametrize("shape, axis", [((3,), -1), ((2, 5), 1), ((3, 4), 0), ((), -1)])
def test_glu_odd_size_axis_raises(shape, axis):
    with pytest.raises(ValueError, match="even"):
        jaxact.glu(jnp.zeros(shape), axis=axis)


# --- properties ------------------------------------------------------------------------------

ROWS = hnp.arrays(
    np.float32, (3, 5), elements=st.floats(-80, 80, width=32, allow_nan=False, allow_infinity=False)
)


@settings(max_examples=30, deadline=None)
@given(x=ROWS, shift=st.floats(-50, 50, width=32))
def test_softmax_sums_to_one_and_is_shift_invariant(x, shift):
    p = jaxact.softmax(jnp.asarray(x))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(p) >= 0)
    shifted = jaxact.softmax(jnp.asarray(x) + jnp.float32(shift))
    np.testing.assert_allclose(shifted, p, atol=2e-5)
    lse = jaxact.logsumexp(jnp.asarray(x), axis=-1)
    np.testing.assert_allclose(
        jaxact.log_softmax(jnp.asarray(x)), jnp.asarray(x) - lse[:, None], rtol=1e-5, atol=2e-5
    )


@settings(max_examples=30, deadline=None)
@given(x=ROWS)
@example(x=np.full((3, 5), 65.0, np.float32))  # tau = 64.8 would cancel without the shift
def test_sparsemax_is_a_distribution(x):
    p = np.asarray(jaxact.sparsemax(jnp.asarray(x)))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(p >= 0)
    # Order preserving: a larger input never gets less mass.
    for row, probabilities in zip(x, p, strict=True):
        order = np.argsort(row, kind="stable")
        assert np.all(np.diff(probabilities[order]) >= -1e-6)


# --- NaN, temperatures, limits -----------------------------------------------------------------

NAN = jnp.nan


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "logsumexp", "sparsemax"])
def test_nan_in_a_row_makes_the_row_nan(name):
    f = getattr(jaxact, name)
    x = jnp.array([[NAN, 0.0, 1.0], [0.5, -1.0, 2.0]])
    y = f(x, axis=-1)
    assert np.isnan(y[0]).all() and not np.isnan(y[1]).any()
    g = jax.grad(lambda x: jnp.sum(jnp.cos(jnp.arange(3.0)) * f(x, axis=-1)[..., None]))(x)
    assert np.isnan(g[0]).all() and not np.isnan(g[1]).any()
    if name in ("softmax", "log_softmax", "logsumexp"):  # jax.nn agrees on the NaN row
        assert np.isnan(getattr(jax.nn, name)(x, axis=-1)[0]).all()


def test_a_masked_nan_is_left_out():
    x = jnp.array([NAN, 0.0, 1.0])
    where = jnp.array([False, True, True])
    for name in ("softmax", "log_softmax", "logsumexp"):
        ours, theirs = getattr(jaxact, name)(x, where=where), getattr(jax.nn, name)(x, where=where)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
        assert not np.isnan(np.atleast_1d(ours)[where[: np.size(ours)]]).any()


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("temperature", [0.0, -1.0, NAN, jnp.inf, "hot", jnp.array([1.0, 0.0])])
def test_bad_temperature_raises_value_error(name, temperature):
    with pytest.raises(ValueError, match=f"{name}: temperature must be"):
        getattr(jaxact, name)(jnp.ones(2), temperature=temperature)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_traced_bad_temperature_gives_nan(name):
    f = jax.jit(lambda t: getattr(jaxact, name)(jnp.array([1.0, 2.0]), temperature=t))
    for t in (0.0, -1.0, NAN):
        assert np.isnan(f(t)).all()
    np.testing.assert_allclose(
        f(2.0), getattr(jaxact, name)(jnp.array([1.0, 2.0]), temperature=2.0)
    )


def test_sparsemax_limits_are_softmax_limits():
    x = jnp.array([[INF, 0.0, INF, -1.0], [-INF, -INF, -INF, -INF], [-INF, 0.5, -INF, 0.0]])

    @jax.jit
    def limits(x):
        forward, reverse = jax.vmap(jax.jacfwd(jaxact.sparsemax))(x), jax.jacrev(jaxact.sparsemax)
        hessian = jax.hessian(lambda row: jaxact.sparsemax(row)[1])(x[1])
        return jaxact.sparsemax(x), jaxact.softmax(x), forward, jax.vmap(reverse)(x), hessian

    p, softmax, forward, reverse, hessian = limits(x)
    np.testing.assert_array_equal(p[:2], softmax[:2])  # [.5, 0, .5, 0] and zeros
    np.testing.assert_allclose(p[2], [0.0, 0.75, 0.0, 0.25], rtol=1e-6)
    np.testing.assert_array_equal(forward[1], 0.0)  # a row of -inf: derivative 0
    np.testing.assert_array_equal(reverse[1], 0.0)
    no_nan(forward, reverse, hessian)


def test_sparsemax_axis_none_and_tuples():
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 4)), jnp.float32)

    @jax.jit
    def both_ways(x):
        f = jaxact.sparsemax
        return (
            (f(x, axis=None), f(x.reshape(-1)).reshape(x.shape)),
            (f(x, axis=(1, 2)), f(x.reshape(2, 12)).reshape(x.shape)),
            (f(x, axis=0), jnp.moveaxis(f(jnp.moveaxis(x, 0, -1)), -1, 0)),
        )

    for ours, expected in both_ways(x):
        np.testing.assert_allclose(ours, expected, rtol=1e-6)
    np.testing.assert_allclose(both_ways(x)[0][0].sum(), 1.0, rtol=1e-6)


def test_sparsemax_refuses_complex_inputs():
    with pytest.raises(TypeError, match="sparsemax does not take complex inputs"):
        jaxact.sparsemax(jnp.array([1 + 1j, 0j]))


def _residual_bytes(f, x):
    _, vjp = jax.vjp(f, x)
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(vjp))


def test_log_softmax_keeps_no_more_for_the_backward_pass_than_jax_nn():
    x = jnp.zeros((8, 1000), jnp.float32)
    where = jnp.arange(1000) % 3 > 0
    for mask in (None, where):
        ours = _residual_bytes(functools.partial(jaxact.log_softmax, where=mask), x)
        theirs = _residual_bytes(functools.partial(jax.nn.log_softmax, where=mask), x)
        assert ours <= theirs, mask
    # one float per entry, and a flag per row
    assert _residual_bytes(jaxact.log_softmax, x) <= x.size * 4 + 8 * 4 + 8
