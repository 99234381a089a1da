"""jaxact.nnx: the same layers as jaxact.linen in flax.nnx, trained on digits, same numbers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

nnx = pytest.importorskip("flax.nnx")
linen = pytest.importorskip("flax.linen")

import jaxact  # noqa: E402
import jaxact.linen as L  # noqa: E402
import jaxact.nnx as X  # noqa: E402

# (nnx layer, the linen layer with the same config, trainable parameter names)
PAIRS = {
    "prelu": (
        lambda: X.PReLU(16, negative_slope_init=0.2),
        lambda **kw: L.PReLU(16, 0.2, **kw),
        ["negative_slope"],
    ),
    "swish": (lambda: X.Swish(1.5), lambda **kw: L.Swish(1.5, **kw), ["beta"]),
    "elu": (lambda: X.ELU(0.7), lambda **kw: L.ELU(0.7, **kw), ["alpha_raw"]),
    "celu": (
        lambda: X.CELU(1.5, num_channels=16),
        lambda **kw: L.CELU(1.5, num_channels=16, **kw),
        ["alpha_raw"],
    ),
    "softplus": (lambda: X.Softplus(2.0), lambda **kw: L.Softplus(2.0, **kw), ["beta_raw"]),
    "learnable": (
        lambda: X.Learnable("squareplus", params={"b": 2.0}, positive=("b",)),
        lambda **kw: L.Learnable("squareplus", params={"b": 2.0}, positive=("b",), **kw),
        ["b_raw"],
    ),
}


class MLP(nnx.Module):
    def __init__(self, activation, rngs):
        self.hidden = nnx.Linear(64, 16, rngs=rngs)
        self.activation = activation
        self.out = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.activation(self.hidden(x)))


class LinenMLP(linen.Module):
    make_activation: object

    @linen.compact
    def __call__(self, x):
        x = linen.Dense(16, name="hidden")(x)
        x = self.make_activation(name="activation")(x)
        return linen.Dense(10, name="out")(x)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_learnable_layer_trains_on_digits(kind, digits):
    make, _, names = PAIRS[kind]
    x, y = digits
    model = MLP(make(), nnx.Rngs(0))
    before = {n: np.asarray(getattr(model.activation, n)[...]) for n in names}
    optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        def loss_fn(model):
            logits = model(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    # optax.adam's bias correction mixes int32 and float: not allowed under strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        losses = [float(step(model, optimizer)) for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0]
    for n in names:
        assert not np.allclose(getattr(model.activation, n)[...], before[n]), n


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_linen_and_nnx_give_the_same_numbers(kind, digits):
    make_nnx, make_linen, names = PAIRS[kind]
    x, y = digits
    model = MLP(make_nnx(), nnx.Rngs(0))
    # Perturb the learnable parameters so that the comparison is not at the initial values.
    for n in names:
        param = getattr(model.activation, n)
        param[...] = param[...] + 0.1 * jnp.cos(jnp.arange(param[...].size)).reshape(
            param[...].shape
        )
    linen_model = LinenMLP(make_linen)
    params = {
        "hidden": {"kernel": model.hidden.kernel[...], "bias": model.hidden.bias[...]},
        "out": {"kernel": model.out.kernel[...], "bias": model.out.bias[...]},
        "activation": {n: getattr(model.activation, n)[...] for n in names},
    }
    reference = linen_model.init(jax.random.key(0), x[:1])["params"]
    assert jax.tree.structure(reference) == jax.tree.structure(params)

    def loss_linen(p):
        logits = linen_model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def loss_nnx(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

    assert jnp.allclose(linen_model.apply({"params": params}, x), model(x), rtol=1e-6, atol=1e-6)
    grads_linen = jax.grad(loss_linen)(params)
    grads_nnx = nnx.grad(loss_nnx)(model)
    for n in names:
        assert jnp.allclose(
            grads_linen["activation"][n], grads_nnx["activation"][n][...], rtol=1e-5, atol=1e-7
        )


def test_learnable_gradient_matches_finite_difference():
    layer = X.Learnable("silu", params="beta")
    x = jnp.linspace(-4.0, 4.0, 64)
    weights = jnp.cos(x) + 0.5

    def loss(beta):
        layer.beta[...] = beta
        return jnp.sum(weights * layer(x))

    eps = 1e-2
    numeric = (loss(jnp.float32(1.0 + eps)) - loss(jnp.float32(1.0 - eps))) / (2 * eps)
    layer.beta[...] = jnp.float32(1.0)
    analytic = nnx.grad(lambda m: jnp.sum(weights * m(x)))(layer)["beta"][...]
    assert float(analytic) == pytest.approx(float(numeric), rel=1e-2)


def test_activation_in_sequential_and_transforms():
    act = X.Activation("leaky_relu", negative_slope=0.2)
    x = jnp.linspace(-2, 2, 12).reshape(3, 4)
    expected = jaxact.leaky_relu(x, 0.2)
    assert jnp.array_equal(act(x), expected)
    assert jnp.array_equal(nnx.jit(lambda m, v: m(v))(act, x), expected)
    assert jnp.array_equal(nnx.vmap(lambda v: act(v))(x), expected)
    assert jnp.array_equal(nnx.remat(lambda m, v: m(v))(act, x), expected)
    model = nnx.Sequential(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), act, X.PReLU(4))
    assert nnx.jit(lambda m, v: m(v))(model, x).shape == (3, 4)

    @nnx.scan(in_axes=(nnx.Carry, None), out_axes=nnx.Carry, length=3)
    def repeat(carry, module):
        return module(carry)

    assert jnp.allclose(repeat(x, X.Activation("tanh")), jnp.tanh(jnp.tanh(jnp.tanh(x))))


def test_prelu_drops_in_for_flax_prelu():
    x = jnp.linspace(-3.0, 3.0, 12).reshape(3, 4)
    for kwargs in ({}, {"negative_slope_init": 0.2}):
        ours, theirs = X.PReLU(**kwargs), nnx.PReLU(**kwargs)
        assert ours.negative_slope[...].shape == theirs.negative_slope[...].shape
        np.testing.assert_array_equal(ours(x), theirs(x))
    assert float(X.PReLU()(jnp.float32(-2.0))) == pytest.approx(-0.02)  # 0-d: one shared slope
    with pytest.raises(ValueError, match=r"num_channels=3 .* shape"):
        X.PReLU(3)(jnp.float32(-2.0))


def test_one_hyperparameter_layers_are_classes():
    for cls, name in (
        (X.Swish, "Swish"),
        (X.ELU, "ELU"),
        (X.CELU, "CELU"),
        (X.Softplus, "Softplus"),
    ):
        assert cls.__name__ == name and issubclass(cls, X.Learnable)
        assert isinstance(cls(2.0), cls)


def test_jaxact_functions_as_nnx_activation_fn():
    cell = nnx.LSTMCell(5, 8, activation_fn=jaxact.tanh, gate_fn=jaxact.sigmoid, rngs=nnx.Rngs(0))
    reference = nnx.LSTMCell(5, 8, rngs=nnx.Rngs(0))
    x = jnp.ones((2, 5))
    carry = reference.initialize_carry(x.shape, rngs=nnx.Rngs(1))
    assert jnp.allclose(cell(carry, x)[1], reference(carry, x)[1], atol=1e-6)


def test_critical_init_in_nnx_linear():
    layer = nnx.Linear(
        500,
        300,
        kernel_init=jaxact.critical_init("relu"),
        bias_init=jaxact.critical_bias_init(0.0),
        rngs=nnx.Rngs(0),
    )
    assert float(jnp.var(layer.kernel[...])) * 500 == pytest.approx(2.0, rel=0.03)


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation"):
        X.Activation("sigmoidd")
    with pytest.raises(ValueError, match="gain"):
        X.Activation("sigmoid", gian=2.0)
    with pytest.raises(ValueError, match="finite"):
        X.Learnable("elu", params={"alpha": math.nan})
    with pytest.raises(ValueError, match="not a number"):
        X.Learnable("gelu", params=("approximate",))
    with pytest.raises(ValueError, match="num_channels"):
        X.PReLU(3)(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="num_channels must be a positive int"):
        X.PReLU(0.1)
