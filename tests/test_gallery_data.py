"""What the activation gallery draws: the two-element forms, the x grid, the kinks."""

import numpy as np
import pytest

import jaxact
from experiments import accuracy, gallery_data


def test_non_elementwise_are_drawn_in_two_element_form():
    x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    y, dy = gallery_data.evaluate("softmax", x)
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y, sig, rtol=1e-6)
    np.testing.assert_allclose(dy, sig * (1 - sig), rtol=1e-5)
    y, _ = gallery_data.evaluate("glu", x)
    np.testing.assert_allclose(y, x * sig, rtol=1e-6)
    y, dy = gallery_data.evaluate("logsumexp", x)
    np.testing.assert_allclose(y, np.logaddexp(x, 0), rtol=1e-6)
    np.testing.assert_allclose(dy, sig, rtol=1e-5)


def test_plot_grid_sets_kinks_apart():
    x = gallery_data.plot_grid(-3.0, 3.0, (0.0, 6.0), n=61)  # 6 is outside: ignored
    gaps = np.flatnonzero(np.isnan(x))
    assert len(gaps) == 2 and x[gaps[0] + 1] == 0.0  # the kink alone between two NaNs
    finite = x[~np.isnan(x)]
    assert finite.min() == -3.0 and finite.max() == 3.0
    _, dy = gallery_data.evaluate_on_grid("relu", x)
    assert dy[gaps[0] - 1] == 0.0 and dy[gaps[1] + 1] == 1.0  # one-sided slopes


@pytest.mark.parametrize("name", ["leaky_relu", "relu6", "elu", "sigmoid"])
def test_kinks_are_the_registry_breakpoints(name):
    assert gallery_data.kinks_of(name) == jaxact.info(name).breakpoints()


def test_family_members_are_registry_names():
    for family in gallery_data.FAMILIES:
        for curve in family.curves:
            assert jaxact.resolve(curve.name) == curve.name, (family.key, curve.name)
            jaxact.get(curve.name, **curve.params)  # the parameters are valid


@pytest.mark.parametrize("name", jaxact.names())
def test_titles_show_every_shape_parameter(name):
    """Only layout parameters (axis, where, key, ...) and unset ones are left out of a title."""
    shown = gallery_data.shown_params(name)
    for key, default in jaxact.info(name).params.items():
        layout = key in ("axis", "where", "key", "keepdims", "return_sign")
        assert (key in shown) == (default is not None and not layout), key


def test_accuracy_page_functions_have_a_counterpart():
    assert all(accuracy.jax_nn_function(name) is not None for name in gallery_data.ACCURACY_NAMES)
