"""The width sweep: the gradient ratio of random networks against the mean-field prediction."""

import csv
import math

import numpy as np
import pytest

from experiments import stats
from experiments import width_sweep as ws


def _gelu_tanh(x):
    """jax.nn.gelu's default (tanh) form and its derivative, in NumPy."""
    k = math.sqrt(2 / math.pi)
    inner = k * (x + 0.044715 * x**3)
    t = np.tanh(inner)
    slope = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2)
    return 0.5 * x * (1 + t), slope


def _reference_ratio(depth, q_input, sigma_w2=2.0):
    """prod_l sqrt(chi(q^l)) by Gauss-Hermite quadrature, without jaxact."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(160)
    weights = weights / math.sqrt(2 * math.pi)
    q, log_ratio = sigma_w2 * q_input, 0.0
    for _ in range(depth - 1):
        phi, slope = _gelu_tanh(math.sqrt(q) * nodes)
        log_ratio += 0.5 * math.log(sigma_w2 * np.sum(weights * slope**2))
        q = sigma_w2 * np.sum(weights * phi**2)
    return math.exp(log_ratio)


@pytest.mark.parametrize("q_input", [1.0, 0.953125])
def test_prediction_matches_an_independent_quadrature(q_input):
    predicted = ws.meanfield_ratio(
        "gelu", "he", depth=ws.DEPTH, width=64, input_dim=64, q_input=q_input
    )
    assert predicted == pytest.approx(_reference_ratio(ws.DEPTH, q_input), rel=1e-4)


def test_prediction_of_relu_he_is_one():
    predicted = ws.meanfield_ratio("relu", "he", depth=ws.DEPTH, width=64, input_dim=64, q_input=3)
    assert predicted == pytest.approx(1.0, abs=1e-5)


def test_depth_is_the_vanishing_presets():
    from experiments import gradient_flow

    assert gradient_flow.PRESETS["vanishing"]["depth"] == ws.DEPTH


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """gelu/He at depth 32, widths 64 and 256, through the command line."""
    out = tmp_path_factory.mktemp("width_sweep")
    argv = ["--out", str(out), "--configs", "gelu/he", "--widths", "64,256", "--seeds", "128,32"]
    assert ws.main(argv) == 0
    with open(out / "width_sweep.csv") as f:
        rows = list(csv.DictReader(f))
    return out, rows


def test_quick_run_writes_its_table_summary_and_figure(quick, png_size):
    out, rows = quick
    assert tuple(rows[0]) == ws.FIELDS
    assert [int(r["width"]) for r in rows].count(64) == 128
    assert [int(r["width"]) for r in rows].count(256) == 32
    assert {r["input_norm"] for r in rows} == {"unit"}
    assert np.allclose([float(r["q_input"]) for r in rows], 1.0, rtol=1e-6)
    summary = (out / "summary.md").read_text()
    assert "(n=128)" in summary and "(n=32)" in summary
    width, height = png_size(out / "width_sweep.png")
    assert 300 < width < 1200 and 200 < height < 800


def test_measured_ratio_approaches_the_prediction_as_width_grows(quick):
    _, rows = quick
    predicted = float(rows[0]["ratio_meanfield"])
    assert predicted == pytest.approx(_reference_ratio(ws.DEPTH, 1.0), rel=1e-4)
    by_width = {
        w: stats.interval([float(r["ratio"]) for r in rows if int(r["width"]) == w], log=True)
        for w in (64, 256)
    }
    narrow, wide = by_width[64], by_width[256]
    # Finite width leaves the gradient less vanishing than the theory says (at both widths the
    # whole interval lies above the prediction), and the gap closes: the wide networks' mean
    # lies below the narrow ones' interval.
    assert predicted < wide.low and predicted < narrow.low
    assert wide.centre < narrow.low


def test_a_seeds_value_depends_on_the_seed_only(monkeypatch):
    # The same seeds in another order and in chunks of 2 (one seed of padding): the same values.
    data = ws.data_lib.load("digits", input_norm="unit")
    whole = ws.measure("relu", "he", width=16, seeds=[0, 1, 2], data=data, depth=4)
    assert whole.shape == (3, 4)
    assert len({float(v) for v in whole[:, 0]}) == 3
    per_seed = 2 * 4 * 4 * 16 * (16 + data.input_dim + data.num_classes)
    monkeypatch.setattr(ws, "MEMORY_BUDGET", 2 * per_seed)
    chunked = ws.measure("relu", "he", width=16, seeds=[2, 0, 1], data=data, depth=4)
    np.testing.assert_allclose(chunked, whole[[2, 0, 1]], rtol=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--configs", "gleu/he"], "did you mean"),
        (["--configs", "gelu/hee"], "did you mean 'he'"),
        (["--configs", "gelu"], "ACTIVATION/INIT"),
        (["--widths", "64,256", "--seeds", "8,8,8"], "3 seed counts for 2 widths"),
        (["--q0", "-1"], "q0"),
        (["--configs", "gelu/critical"], "gelu"),
    ],
)
def test_careless_arguments_fail_at_once_with_one_line(tmp_path, capsys, argv, message):
    assert ws.main(["--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file_fails_at_once(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert ws.main(["--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
