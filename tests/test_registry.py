"""The registry: lookup by name and alias, parameter binding and checking, and the facts it states.

Every fact is checked numerically against the function it describes, both ways
where that makes sense (a function marked not monotonic must decrease somewhere).
"""

import copy
import functools
import math
import pickle
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact
from jaxact import registry

NAMES = jaxact.names()
ELEMENTWISE = tuple(n for n in NAMES if jaxact.info(n).elementwise)
ROWWISE = tuple(n for n in NAMES if not jaxact.info(n).elementwise)

# A fine grid around the origin (step 1e-3, hits -1.5, the kinks, ...) and a wide, sparse one.
FINE = np.round(np.linspace(-10.0, 10.0, 20001), 3)
WIDE = np.concatenate([-np.geomspace(1e3, 10.0, 40), FINE, np.geomspace(10.0, 1e3, 40)])


def _fn(name, **params):
    if name == "logsumexp":
        params = {"axis": -1, **params}
    fn = jaxact.info(name).fn
    return functools.partial(fn, **params) if params else fn


@functools.cache
def wide_values(name: str) -> np.ndarray:
    """f on WIDE in float64 (one compiled call per activation)."""
    with jax.enable_x64(True):
        return np.asarray(jax.jit(_fn(name))(jnp.asarray(WIDE)))


@functools.cache
def derivative(name: str, points: tuple[float, ...]) -> np.ndarray:
    with jax.enable_x64(True):
        grad = jax.jit(jax.vmap(jax.grad(_fn(name, **_true_derivative(name)))))
        return np.asarray(grad(jnp.asarray(points, jnp.float64)))


def _true_derivative(name):
    return {"surrogate": "none"} if name == "step" else {}


def rows(seed: int = 0, shape=(64, 6), scale: float = 20.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape) * scale


# --- lookup --------------------------------------------------------------------------------


def test_get_binds_parameters():
    x = jnp.linspace(-3.0, 3.0, 7)
    f = jaxact.get("leaky_relu", negative_slope=0.2)
    np.testing.assert_array_equal(f(x), jaxact.leaky_relu(x, negative_slope=0.2))
    g = jaxact.get("softmax", temperature=2.0)
    np.testing.assert_allclose(g(x), jaxact.softmax(x / 2), rtol=1e-6)
    assert jaxact.get("relu") is jaxact.relu  # nothing to bind: the function itself
    assert jaxact.get("elu", alpha=2.0).keywords == {"alpha": 2.0}


@pytest.mark.parametrize(
    "alias, canonical",
    [("swish", "silu"), ("hard_swish", "hard_silu"), ("h_swish", "hard_silu"),
     ("hardswish", "hard_silu"), ("softsign", "soft_sign"), ("linear", "identity"),
     ("logistic", "sigmoid"), ("logsigmoid", "log_sigmoid"), ("leakyrelu", "leaky_relu"),
     ("hardtanh", "hard_tanh"), ("hardsigmoid", "hard_sigmoid"), ("heaviside", "step"),
     ("binary_step", "step"), ("tanhshrink", "tanh_shrink"), ("softshrink", "soft_shrink"),
     ("hardshrink", "hard_shrink"), ("Swish", "silu"), ("Leaky-ReLU", "leaky_relu"),
     (" relu ", "relu")],
)  # fmt: skip
def test_aliases_resolve(alias, canonical):
    assert jaxact.resolve(alias) == canonical
    assert jaxact.info(alias).name == canonical
    assert jaxact.get(alias) is jaxact.info(canonical).fn


def test_names_are_canonical_and_exported():
    names = jaxact.names()
    assert list(names) == sorted(set(names))
    assert not set(names) & set(jaxact.aliases())
    assert {"swish", "hard_swish", "h_swish", "softsign", "linear"} <= set(jaxact.aliases())
    for name in names:
        entry = jaxact.info(name)
        assert entry.name == name == entry.fn.__name__
        assert getattr(jaxact, name) is entry.fn
    for alias, canonical in jaxact.aliases().items():
        assert canonical in names
        if hasattr(jaxact, alias):  # module-level aliases are the same function
            assert getattr(jaxact, alias) is jaxact.info(canonical).fn


def test_module_aliases_are_registered():
    for alias in ("swish", "hard_swish", "softsign", "linear"):
        assert getattr(jaxact, alias) is jaxact.get(alias)


@pytest.mark.parametrize(
    "name, suggestion",
    [("relu7", "relu6"), ("sofmax", "softmax"), ("leaky_rleu", "leaky_relu"), ("swissh", "swish"),
     ("gelu_", "gelu")],
)  # fmt: skip
def test_unknown_name_names_the_closest(name, suggestion):
    with pytest.raises(ValueError, match=repr(suggestion)) as error:
        jaxact.get(name)
    assert "jaxact.names()" in str(error.value)


def test_name_must_be_a_string():
    with pytest.raises(TypeError):
        jaxact.get(3)


@pytest.mark.parametrize(
    "name, params, suggestion",
    [("leaky_relu", {"negative_slop": 0.1}, "negative_slope"),
     ("softmax", {"temprature": 2.0}, "temperature"), ("elu", {"alpah": 2.0}, "alpha"),
     ("silu", {"betta": 2.0}, "beta"), ("hard_tanh", {"max": 2.0}, "max_val")],
)  # fmt: skip
def test_unknown_parameter_names_the_closest(name, params, suggestion):
    with pytest.raises(ValueError, match=repr(suggestion)):
        jaxact.get(name, **params)


def test_parameter_for_a_function_without_any():
    with pytest.raises(ValueError, match="takes none"):
        jaxact.get("relu", alpha=1.0)


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf"), jnp.nan,
     jnp.array([0.1, jnp.inf]), np.array([np.nan])],
)  # fmt: skip
def test_non_finite_parameter_raises(value):
    with pytest.raises(ValueError, match="finite"):
        jaxact.get("elu", alpha=value)


def test_traced_and_non_numeric_parameters_pass_the_check():
    y = jax.jit(lambda a: jaxact.get("elu", alpha=a)(-1.0))(2.0)
    np.testing.assert_allclose(y, 2 * np.expm1(-1.0), rtol=1e-6)
    jaxact.get("step", surrogate="straight_through")
    jaxact.get("rrelu", key=jax.random.key(0))
    jaxact.get("gelu", approximate=False)
    jaxact.get("softplus", threshold=None)


@pytest.mark.parametrize(
    "name, params, message",
    [("softmax", {"temperature": 0.0}, "temperature must be .*> 0"),
     ("log_softmax", {"temperature": -1.0}, "temperature must be .*> 0"),
     ("softmin", {"temperature": math.nan}, "temperature must be a finite"),
     ("softmax", {"temperature": math.inf}, "temperature must be a finite"),
     ("hard_sigmoid", {"slope": 0.0}, "slope must be .*other than 0"),
     ("step", {"surrogate": "straight"}, "surrogate .*'straight_through'"),
     ("step", {"sharpness": 0.0}, "sharpness must be .*> 0"),
     ("leaky_relu", {"negative_slope": "abc"}, "negative_slope must be a real number"),
     ("leaky_relu", {"negative_slope": None}, "negative_slope must be a finite real number"),
     ("elu", {"alpha": True}, "alpha must be a real number"),
     ("elu", {"alpha": 1j}, "alpha must be a real number"),
     ("celu", {"alpha": 0.0}, "alpha must be .*other than 0"),
     ("softplus", {"beta": -1.0}, "beta must be .*> 0"),
     ("softplus", {"threshold": "20"}, "threshold must be a real number"),
     ("squareplus", {"b": -1.0}, "b must be .*>= 0"),
     ("hard_shrink", {"threshold": -0.5}, "threshold must be .*>= 0"),
     ("soft_shrink", {"threshold": np.array([0.5, -1.0])}, "threshold must be .*>= 0"),
     ("hard_tanh", {"min_val": 2.0}, "min_val must be <= max_val"),
     ("rrelu", {"lower": 0.5, "upper": 0.25}, "lower must be <= upper"),
     ("gelu", {"approximate": "tanh"}, "approximate must be True or False"),
     ("logsumexp", {"keepdims": 1}, "keepdims must be True or False"),
     ("glu", {"axis": 0.5}, "axis must be an int")],
)  # fmt: skip
def test_invalid_hyperparameters_name_the_parameter_and_range(name, params, message):
    with pytest.raises(ValueError, match=f"{name}: .*{message}"):
        jaxact.get(name, **params)


@pytest.mark.parametrize("name", NAMES)
def test_ranges_name_real_parameters_and_defaults_lie_in_them(name):
    entry = jaxact.info(name)
    assert set(entry.ranges) <= set(entry.params)
    assert registry.check_params(name, {}) == entry.params  # the defaults themselves pass


def test_values_in_range_pass_and_traced_ones_are_not_checked():
    for name, params in [("softmax", {"temperature": 1e-3}), ("hard_sigmoid", {"slope": -0.2}),
                         ("squareplus", {"b": 0}), ("hard_tanh", {"min_val": 1.0}),
                         ("prelu", {"negative_slope": np.array([0.1, 0.2])}),
                         ("softmax", {"axis": (0, 1)}), ("softmax", {"axis": None})]:  # fmt: skip
        jaxact.get(name, **params)
    # Under jit the value is unknown until run: no error, the formula's own answer.
    x = jnp.array([0.0, 1.0])
    bound = jax.jit(lambda t: jaxact.get("softmax", temperature=t)(x))(-1.0)
    direct = jax.jit(lambda t: jaxact.softmax(x, temperature=t))(-1.0)
    np.testing.assert_array_equal(bound, direct)


@pytest.mark.parametrize("name", NAMES)
def test_every_function_pickles_and_deep_copies(name):
    fn = jaxact.info(name).fn
    assert pickle.loads(pickle.dumps(fn)) is fn
    assert copy.deepcopy(fn) is fn


def test_get_results_pickle_compare_and_hash_by_value():
    bound = jaxact.get("elu", alpha=2.0)
    same = [jaxact.get("elu", alpha=2), jaxact.get("ELU", alpha=np.float64(2.0)),
            pickle.loads(pickle.dumps(bound)), copy.deepcopy(bound)]  # fmt: skip
    for other in same:
        assert other == bound and hash(other) == hash(bound)
    assert bound != jaxact.get("elu", alpha=3.0) and bound != jaxact.get("celu", alpha=2.0)
    assert len({bound, *same}) == 1
    x = jnp.linspace(-2.0, 2.0, 5)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(bound))(x), jaxact.elu(x, 2.0))
    # Arrays compare by value and shape.
    vector = jaxact.get("prelu", negative_slope=np.array([0.1, 0.2]))
    assert vector == jaxact.get("prelu", negative_slope=np.array([0.1, 0.2]))
    assert hash(vector) == hash(jaxact.get("prelu", negative_slope=np.array([0.1, 0.2])))
    assert vector != jaxact.get("prelu", negative_slope=np.array([0.1, 0.3]))
    assert jaxact.get("prelu", negative_slope=np.array([0.1])) != jaxact.get(
        "prelu", negative_slope=0.1
    )
    # A key equals only itself.
    key = jax.random.key(0)
    assert jaxact.get("rrelu", key=key) == jaxact.get("rrelu", key=key)
    assert jaxact.get("rrelu", key=key) != jaxact.get("rrelu", key=jax.random.key(0))
    # As a static argument of jit: equal bindings share one compiled program.
    traces = []

    @functools.partial(jax.jit, static_argnums=1)
    def apply(v, f):
        traces.append(f)
        return f(v)

    apply(x, jaxact.get("elu", alpha=2.0))
    apply(x, jaxact.get("elu", alpha=2.0))
    assert len(traces) == 1


def test_params_are_the_keyword_defaults():
    assert jaxact.info("leaky_relu").params == {"negative_slope": 1e-2}
    assert jaxact.info("step").params == {
        "threshold": 0.0, "surrogate": "sigmoid", "sharpness": 1.0
    }  # fmt: skip
    assert jaxact.info("relu").params == {}


def test_breakpoints_follow_the_parameters():
    assert jaxact.info("relu").breakpoints() == (0.0,)
    assert jaxact.info("hard_tanh").breakpoints(min_val=-2.0) == (-2.0, 1.0)
    assert jaxact.info("hard_sigmoid").breakpoints() == (-3.0, 3.0)
    assert jaxact.info("hard_sigmoid").breakpoints(slope=0.2) == (-2.5, 2.5)
    assert jaxact.info("hard_sigmoid").breakpoints(slope=0.0) == ()
    assert jaxact.info("soft_shrink").breakpoints(threshold=1.0) == (-1.0, 1.0)
    assert jaxact.info("step").breakpoints(threshold=0.5) == (0.5,)
    assert jaxact.info("softmax").breakpoints() == ()


# --- the facts are true --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_jax_nn_name_is_the_same_function(name):
    entry = jaxact.info(name)
    if entry.jax_nn is None:
        assert not hasattr(jax.nn, name)
        return
    ours, theirs = _fn(name), getattr(jax.nn, entry.jax_nn)
    if name == "logsumexp":
        theirs = functools.partial(theirs, axis=-1)
    with jax.enable_x64(True):  # where both are accurate (jax.nn is not in every tail)
        x = jnp.asarray(rows(shape=(4, 6), scale=3.0) if not entry.elementwise else FINE[::400])
        np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_monotonic(name):
    y = wide_values(name)
    y = y[np.isfinite(y)]  # exponential overflows on the wide grid
    steps = np.diff(y)
    if jaxact.info(name).monotonic:
        assert np.all(steps >= -1e-15 * np.abs(y[1:])), steps[steps < 0]
    else:
        assert np.any(steps < 0)


@pytest.mark.parametrize("name", ROWWISE)
def test_monotonic_in_each_argument(name):
    f = jax.jit(_fn(name))
    x = rows(shape=(16, 6), scale=3.0)
    decreases = []
    with jax.enable_x64(True):
        base = np.asarray(f(jnp.asarray(x)))
        for i in range(x.shape[-1]):
            bumped = x.copy()
            bumped[:, i] += 0.5
            decreases.append(np.any(np.asarray(f(jnp.asarray(bumped))) < base))
    # Monotonic: raising any input never lowers an output; not: some raise lowers one.
    assert any(decreases) != jaxact.info(name).monotonic, decreases


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_odd_means_f_of_minus_x_is_minus_f_of_x(name):
    y, y_flipped = wide_values(name), wide_values(name)[::-1]
    odd = np.allclose(y_flipped, -y, rtol=1e-12, atol=1e-300)
    assert odd == jaxact.info(name).odd


@pytest.mark.parametrize("name", NAMES)
def test_output_range_contains_the_outputs(name):
    low, high = jaxact.info(name).output_range
    if name in ELEMENTWISE:
        y = wide_values(name)
    else:
        with jax.enable_x64(True):
            y = np.asarray(jax.jit(_fn(name))(jnp.asarray(rows(scale=30.0))))
    assert low <= y.min() and y.max() <= high
    if name in ELEMENTWISE:  # the finite bounds are tight: the grid comes within 1e-3 of them
        if math.isfinite(low):
            assert y.min() - low < 1e-3
        if math.isfinite(high):
            assert high - y.max() < 1e-3


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_smooth_means_continuous_derivative_across_breakpoints(name):
    entry = jaxact.info(name)
    breakpoints = entry.breakpoints()
    eps = 1e-7
    left = derivative(name, tuple(k - eps for k in breakpoints))
    right = derivative(name, tuple(k + eps for k in breakpoints))
    jumps = np.abs(left - right)
    if entry.smooth:
        assert np.all(jumps < 1e-5), (breakpoints, left, right)
    elif breakpoints:
        # Not smooth: at some breakpoint the derivative jumps, or the function itself does.
        with jax.enable_x64(True):
            f = jax.jit(_fn(name))
            gaps = np.abs(
                np.asarray(f(jnp.asarray(breakpoints) + eps))
                - np.asarray(f(jnp.asarray(breakpoints) - eps))
            )
        assert np.any(jumps > 1e-3) or np.any(gaps > 1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_elementwise_means_a_diagonal_jacobian(name):
    f = _fn(name, **_true_derivative(name))
    x = jnp.asarray(
        rows(shape=(6,), scale=0.3), jnp.float32
    )  # several entries in sparsemax's support
    jacobian = np.asarray(jax.jit(jax.jacfwd(f))(x)).reshape(-1, x.size)
    diagonal = jacobian.shape == (x.size, x.size) and np.all(jacobian == np.diag(np.diag(jacobian)))
    assert diagonal == (name in ELEMENTWISE), jacobian


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if jaxact.info(n).self_gated])
def test_self_gated_is_x_times_a_gate(name):
    x = WIDE[WIDE != 0]
    gate = wide_values(name)[WIDE != 0] / x
    assert wide_values(name)[WIDE == 0] == 0
    assert np.all((gate >= 0) & (gate <= 1 + 1e-12))


# --- the README's table is the registry ------------------------------------------------------


def _readme_registry_rows() -> dict[str, list[str]]:
    """The README's registry table: name -> its cells (escaped pipes kept inside cells)."""
    root = Path(__file__).resolve().parents[1]
    text = "\n".join(p.read_text() for p in [root / "README.md", *sorted(root.glob("docs/*.md"))])
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `") and line.endswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if len(cells) == 9:
                rows[cells[0].strip("`")] = cells
    return rows


def test_readme_registry_table_matches_the_registry():
    rows = _readme_registry_rows()
    assert sorted(rows) == sorted(NAMES)
    for name, (_, aliases, formula, _, *facts) in rows.items():
        entry = jaxact.info(name)
        assert formula == entry.formula, name
        assert {a.strip() for a in aliases.split(",") if a.strip()} == set(entry.aliases), name
        flags = (entry.monotonic, entry.smooth, entry.odd, entry.self_gated)
        assert facts == [*("yes" if f else "" for f in flags), "yes" if entry.jax_nn else ""], name
