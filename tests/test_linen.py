"""jaxact.linen: fixed and learnable activations as linen modules, trained on digits."""

import io
import math
import pickle
import re
from contextlib import redirect_stdout

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

nn = pytest.importorskip("flax.linen")

import jaxact  # noqa: E402
import jaxact.linen as L  # noqa: E402

LEARNABLE = {
    "prelu": (lambda: L.PReLU(num_channels=32, negative_slope_init=0.2), ["negative_slope"]),
    "prelu_shared": (lambda: L.PReLU(), ["negative_slope"]),
    "swish": (lambda: L.Swish(init_value=1.5), ["beta"]),
    "silu": (lambda: L.SiLU(), ["beta"]),
    "elu": (lambda: L.ELU(init_value=0.7), ["alpha_raw"]),
    "celu": (lambda: L.CELU(init_value=1.5, num_channels=32), ["alpha_raw"]),
    "softplus": (lambda: L.Softplus(init_value=2.0), ["beta_raw"]),
    "learnable": (
        lambda: L.Learnable("leaky_relu", params={"negative_slope": 0.1}),
        ["negative_slope"],
    ),
    "learnable_hard_tanh": (
        lambda: L.Learnable("hard_tanh", params=("min_val", "max_val")),
        ["min_val", "max_val"],
    ),
}


class MLP(nn.Module):
    make_activation: object

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(32)(x)
        x = self.make_activation()(x)
        return nn.Dense(10)(x)


def _train(model, x, y, steps=25):
    params = model.init(jax.random.key(0), x[:1])
    tx = optax.adam(3e-2)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            logits = model.apply(p, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    start = params
    # optax.adam's bias correction mixes int32 and float: not allowed under strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(steps):
            params, opt_state, loss = step(params, opt_state)
            losses.append(float(loss))
    return start, params, losses


@pytest.mark.parametrize("kind", sorted(LEARNABLE))
def test_learnable_layer_trains_on_digits(kind, digits):
    make, names = LEARNABLE[kind]
    x, y = digits
    start, params, losses = _train(MLP(make), x, y)
    assert losses[-1] < 0.5 * losses[0]
    layer = params["params"][next(k for k in params["params"] if "Dense" not in k)]
    before = start["params"][next(k for k in start["params"] if "Dense" not in k)]
    for name in names:
        assert not np.allclose(layer[name], before[name]), name


@pytest.mark.parametrize("kind", sorted(LEARNABLE))
def test_learnable_gradients_match_finite_differences(kind):
    make, names = LEARNABLE[kind]
    x = jnp.linspace(-3.0, 3.0, 32 * 3).reshape(3, 32)
    layer = make()
    params = layer.init(jax.random.key(0), x)
    weights = jnp.cos(jnp.arange(x.size, dtype=jnp.float32)).reshape(x.shape)
    loss = lambda p: jnp.sum(weights * layer.apply(p, x))
    grads = jax.grad(loss)(params)
    for name in names:
        value = params["params"][name]
        index = (0,) * value.ndim
        eps = 1e-2

        def at(v, name=name, index=index, value=value):
            new = jax.tree.map(lambda a: a, params)
            new["params"][name] = value.at[index].set(v)
            return float(loss(new))

        numeric = (at(value[index] + eps) - at(value[index] - eps)) / (2 * eps)
        analytic = float(grads["params"][name][index])
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=2e-3), name


def test_activation_module_config_and_transforms():
    act = L.Activation("leaky_relu", negative_slope=0.2)
    assert act.hyperparams == (("negative_slope", 0.2),)
    assert hash(act) == hash(L.Activation("leaky-relu", negative_slope=0.2).clone())
    assert pickle.loads(pickle.dumps(act)) == act
    x = jnp.linspace(-2, 2, 12).reshape(3, 4)
    expected = jaxact.leaky_relu(x, 0.2)
    assert jnp.array_equal(act.apply({}, x), expected)
    assert jnp.array_equal(jax.jit(act.apply)({}, x), expected)
    assert jnp.array_equal(jax.vmap(act.apply, in_axes=(None, 0))({}, x), expected)

    model = nn.Sequential([nn.Dense(4), act, nn.Dense(4), L.Activation("gelu")])
    params = model.init(jax.random.key(0), x)
    out = jax.jit(model.apply)(params, x)
    assert out.shape == (3, 4)

    class Block(nn.Module):
        @nn.compact
        def __call__(self, carry, _):
            carry = L.Activation("tanh")(nn.Dense(4)(carry))
            return carry, None

    scanned = nn.scan(
        nn.remat(Block), variable_axes={"params": 0}, split_rngs={"params": True}, length=3
    )()
    variables = scanned.init(jax.random.key(0), x, None)
    out, _ = jax.jit(scanned.apply)(variables, x, None)
    assert out.shape == x.shape


def test_lifted_transforms_take_the_class_with_keywords():
    x = jnp.linspace(-2.0, 2.0, 6)
    expected = jaxact.elu(x, 2.0)
    for transform in (nn.jit, nn.remat):
        layer = transform(L.Activation)("elu", alpha=2.0)
        assert layer.hyperparams == (("alpha", 2.0),)
        np.testing.assert_array_equal(layer.apply({}, x), expected)
    learnable = nn.jit(L.Learnable)("hard_tanh", "max_val", min_val=-0.5)
    assert learnable.fixed == (("min_val", -0.5),)
    variables = learnable.init(jax.random.key(0), x)
    np.testing.assert_array_equal(learnable.apply(variables, x), jnp.clip(x, -0.5, 1.0))


def test_array_hyperparameters_hash_and_compare_by_value():
    slopes = np.array([0.1, 0.2, 0.3], np.float32)
    act = L.Activation("prelu", negative_slope=jnp.asarray(slopes))
    same = L.Activation("prelu", hyperparams={"negative_slope": slopes})
    assert act == same and hash(act) == hash(same)
    assert act != L.Activation("prelu", negative_slope=slopes[::-1])
    x = -jnp.ones((2, 3))
    np.testing.assert_allclose(act.apply({}, x), -np.broadcast_to(slopes, (2, 3)), rtol=1e-6)
    layer = L.Learnable("elu", params={"alpha": 2.0}, positive=["alpha"])
    assert hash(layer) == hash(L.Learnable("elu", params=(("alpha", 2.0),), positive=("alpha",)))


def test_prelu_drops_in_for_flax_prelu():
    x = jnp.linspace(-3.0, 3.0, 12).reshape(3, 4)
    for kwargs in ({}, {"negative_slope_init": 0.2}):
        ours, theirs = L.PReLU(**kwargs), nn.PReLU(**kwargs)
        variables = theirs.init(jax.random.key(0), x)
        assert jax.tree.structure(ours.init(jax.random.key(0), x)) == jax.tree.structure(variables)
        np.testing.assert_array_equal(ours.apply(variables, x), theirs.apply(variables, x))
    scalar = jnp.float32(-2.0)  # a 0-d input: one shared slope
    out = L.PReLU().apply(L.PReLU().init(jax.random.key(0), scalar), scalar)
    assert out.shape == () and float(out) == pytest.approx(-0.02)
    with pytest.raises(ValueError, match=r"num_channels=3 .* shape \(\)"):
        L.PReLU(num_channels=3).init(jax.random.key(0), scalar)


def test_jaxact_functions_as_flax_activation_fn():
    cell = nn.LSTMCell(8, activation_fn=jaxact.tanh, gate_fn=jaxact.sigmoid)
    reference = nn.LSTMCell(8)
    x = jnp.ones((2, 5))
    carry = cell.initialize_carry(jax.random.key(1), x.shape)
    params = reference.init(jax.random.key(0), carry, x)
    got = cell.apply(params, carry, x)[1]
    want = reference.apply(params, carry, x)[1]
    assert jnp.allclose(got, want, atol=1e-6)


def test_critical_init_as_kernel_init():
    dense = nn.Dense(
        300,
        kernel_init=jaxact.critical_init("tanh", sigma_b=0.3),
        bias_init=jaxact.critical_bias_init(0.3),
    )
    params = dense.init(jax.random.key(0), jnp.ones((1, 500)))["params"]
    sigma_w = jaxact.critical_gain("tanh", sigma_b=0.3)
    assert float(jnp.var(params["kernel"])) * 500 == pytest.approx(sigma_w**2, rel=0.03)
    assert float(jnp.std(params["bias"])) == pytest.approx(0.3, rel=0.15)


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation"):
        L.Activation("relux")
    with pytest.raises(ValueError, match="negative_slope"):
        L.Activation("leaky_relu", negative_slop=0.2)
    with pytest.raises(ValueError, match="finite"):
        L.Activation("leaky_relu", negative_slope=math.inf)
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="not a number"):
        L.Learnable("step", params=("surrogate",)).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="positive"):
        L.Learnable("elu", params={"alpha": -1.0}, positive=("alpha",)).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="num_channels"):
        L.PReLU(num_channels=4).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="num_channels must be a positive int"):
        L.PReLU(0.1)  # Flax's first argument is the slope; here it is num_channels
    # Checked at construction, before any input is seen.
    with pytest.raises(ValueError, match="not a number"):
        L.Learnable("step", params=("surrogate",))
    with pytest.raises(ValueError, match="alpha must be"):
        L.ELU(init_value=math.nan)


def test_positive_constraint_holds_after_a_large_step():
    layer = L.ELU(init_value=0.1)
    params = layer.init(jax.random.key(0), jnp.ones(3))
    params["params"]["alpha_raw"] = params["params"]["alpha_raw"] - 100.0
    out = layer.apply(params, jnp.array([-1.0]))
    assert float(out[0]) <= 0 and bool(jnp.isfinite(out).all())


def test_readme_examples_run(repo_root):
    def blocks(page):
        text = (repo_root / page).read_text()
        return [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if ">>>" not in b]

    (quickstart,) = blocks("README.md")
    (flax_example,) = blocks("docs/flax_and_theory.md")
    namespace = {}
    exec(compile(quickstart, "README.md", "exec"), namespace)
    slope = namespace["jax"].grad(namespace["nn"].sigmoid)(20.0)
    assert float(slope) == pytest.approx(2.0611537e-9)  # the value the README quotes
    code = flax_example
    buffer = io.StringIO()
    with redirect_stdout(buffer), jax.numpy_dtype_promotion("standard"):  # as optax.adam needs
        exec(compile(code, "docs/flax_and_theory.md", "exec"), {})
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "1.761" and lines[1] == "True"
