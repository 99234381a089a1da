"""The datasets and the input normalisation."""

import numpy as np
import pytest

from experiments import data as data_lib


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits")


def test_default_is_per_feature_standardisation(digits):
    # The training split's features have mean 0 and std 1 (constant border pixels stay 0).
    mean, std = digits.x_train.mean(axis=0), digits.x_train.std(axis=0)
    assert np.abs(mean).max() < 1e-5
    varying = std > 0
    assert np.allclose(std[varying], 1.0, atol=1e-5)
    assert np.all(digits.x_train[:, ~varying] == 0)
    assert digits.input_norm == "none"
    ignored = data_lib.load("digits", input_norm="none", q0=5.0)  # q0 only matters for "unit"
    assert np.array_equal(ignored.x_train, digits.x_train)


def test_per_example_lengths_vary_without_unit_norm(digits):
    q = np.mean(digits.x_train.astype(np.float64) ** 2, axis=1)
    assert q.max() / q.min() > 10  # why the option exists


@pytest.mark.parametrize("q0", [1.0, 0.953, 3])
@pytest.mark.parametrize("name", data_lib.NAMES)
def test_unit_norm_gives_every_example_the_same_squared_length(name, q0):
    plain = data_lib.load(name)
    unit = data_lib.load(name, input_norm="unit", q0=q0)
    assert unit.input_norm == "unit"
    for x, x_plain in ((unit.x_train, plain.x_train), (unit.x_test, plain.x_test)):
        assert x.dtype == np.float32 and x.shape == x_plain.shape
        assert np.allclose(np.mean(x.astype(np.float64) ** 2, axis=1), q0, rtol=1e-6)
        # Each example only rescaled: same direction, positive factor.
        cos = np.sum(x * x_plain, axis=1) / (
            np.linalg.norm(x, axis=1) * np.linalg.norm(x_plain, axis=1)
        )
        assert np.allclose(cos, 1.0, atol=1e-5)
    assert np.array_equal(unit.y_train, plain.y_train)
    assert np.array_equal(unit.y_test, plain.y_test)


def test_unit_length_leaves_zero_rows_and_keeps_the_dtype():
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]], dtype=np.float32)
    out = data_lib.unit_length(x, q0=3.0)
    assert out.dtype == np.float32
    assert np.array_equal(out[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], [1.0, -2.0, 2.0], rtol=1e-6)  # already mean square 3


@pytest.mark.parametrize("q0", [0.0, -1.0, float("nan"), float("inf"), "one", True])
def test_bad_q0_is_a_clear_error(q0):
    with pytest.raises(ValueError, match="q0"):
        data_lib.load("spirals", input_norm="unit", q0=q0)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ValueError, match="did you mean 'unit'"):
        data_lib.load("digits", input_norm="unti")
    with pytest.raises(ValueError, match="did you mean 'digits'"):
        data_lib.load("digit")
