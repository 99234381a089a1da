"""The gallery's figures: sizes, and each page written once, in place."""

import numpy as np
import pytest

from experiments import gallery_data, gallery_plots
from experiments.accuracy import ERROR_KINDS

DPI = 40


def test_accuracy_page_size(tmp_path, png_size):
    """One row per function, drawn from numbers shaped as ``accuracy_data`` returns them."""
    x = np.linspace(-10.0, 10.0, 9, dtype=np.float32)
    errors = {"jaxact": np.abs(x) / 10, "jax.nn": np.where(x > 5, np.nan, 2.0**23)}
    names = ("sigmoid", "tanh")
    data = {
        "x": x,
        "functions": {
            n: {i: dict.fromkeys(ERROR_KINDS, e) for i, e in errors.items()} for n in names
        },
        "summary": {
            n: {i: {k: {"max": 1.0, "at": 0.0} for k in ERROR_KINDS} for i in errors} for n in names
        },
    }
    path = gallery_plots.plot_accuracy_page(data, tmp_path / "accuracy.png", dpi=DPI)
    assert png_size(path) == (11 * DPI, round((2.0 * len(names) + 1.0) * DPI))


def test_softmax_page_is_written_once_in_place(tmp_path, png_size):
    path = gallery_plots.plot_softmax_page(tmp_path / "softmax.png", dpi=DPI)
    assert png_size(path) == (11 * DPI, round(4.2 * DPI))
    assert [p.name for p in tmp_path.iterdir()] == ["softmax.png"]


@pytest.fixture(scope="module")
def tails():
    """The tails page's numbers, on fewer points."""
    return gallery_data.tail_data(n=41)


def test_tails_data_jax_nn_is_zero_where_jaxact_is_accurate(tails):
    """In each tail jax.nn's derivative is exactly 0 while the truth is a normal float32 and
    jaxact's is within 8 eps of it; everywhere on the page jaxact is within 8 eps."""
    smallest_normal = float(np.finfo(np.float32).smallest_normal)
    assert set(tails) == set(gallery_data.TAIL_RANGES)
    for name, d in tails.items():
        assert d["error_jaxact"].max() <= 8, name
        lost = (d["jax.nn"] == 0) & (np.abs(d["truth"]) >= smallest_normal)
        assert lost.sum() >= 5, name
        assert np.all(d["jaxact"][lost] != 0), name
        nearest = d["x"][lost][np.argmin(np.abs(d["x"][lost]))]
        assert gallery_plots.first_zero(d["x"], d["jax.nn"], d["truth"]) == nearest


def test_tails_page_size(tails, tmp_path, png_size):
    path = gallery_plots.plot_tails_page(tails, tmp_path / "tails.png", dpi=DPI)
    assert png_size(path) == (9 * DPI, round(3.8 * DPI))
    assert [p.name for p in tmp_path.iterdir()] == ["tails.png"]
