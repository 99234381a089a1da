"""The trainability phase diagram: its theory inputs, and a tiny grid end to end.

The grid (one depth, two sigma_w^2, a narrow network) is one compiled program, shared
by every test through a module-scoped fixture; the resume test reads it back without
training.
"""

import math

import pytest

from experiments import recording, trainability
from jaxact import theory

SIGMA_B = math.sqrt(0.05)
# Independent values (mpmath quadrature, not jaxact) for tanh, sigma_b^2 = 0.05.
XI_C = {1.0: 3.63, 1.25: 6.80, 1.5: 15.79, 2.0: 25.21, 2.5: 11.80, 3.0: 9.05, 4.0: 6.98}
C_STAR = {2.0: 0.7441, 2.5: 0.4468, 3.0: 0.2993, 4.0: 0.1651}

# Depth 10: sigma_w^2 = 0.3 is ~ 12 xi_c deep (ordered, the inputs' correlation has gone
# to 1), sigma_w^2 = 1.76 is critical.
TINY = ["--depths", "10", "--sigma-w2", "0.3,1.76", "--width", "16", "--steps", "150",
        "--seeds", "2", "--lr-scale", "0.2"]  # fmt: skip


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("trainability")
    assert trainability.main([*TINY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("sigma_w2", sorted(XI_C))
def test_correlation_depth_matches_independent_values(sigma_w2):
    xi = trainability.correlation_depth("tanh", {}, sigma_w2, 0.05)
    assert xi == pytest.approx(XI_C[sigma_w2], abs=0.006)


def test_correlation_depth_diverges_at_the_critical_point():
    # sigma_w^2 = 1.76 lies 1e-3 below the edge: xi_c is thousands of layers.
    assert trainability.correlation_depth("tanh", {}, 1.76, 0.05) > 1000


def test_critical_point_and_correlation_fixed_points():
    gain = getattr(theory, "critical_gain", None) or theory.gain
    sigma_w = gain("tanh", sigma_b=SIGMA_B)
    assert sigma_w**2 == pytest.approx(1.7610, abs=5e-5)
    assert theory.fixed_point("tanh", sigma_w=sigma_w, sigma_b=SIGMA_B) == pytest.approx(
        0.5700, abs=5e-5
    )
    for sigma_w2, c_star in C_STAR.items():
        c = theory.correlation_fixed_point("tanh", sigma_w=math.sqrt(sigma_w2), sigma_b=SIGMA_B)
        assert c == pytest.approx(c_star, abs=5e-5), sigma_w2


def test_table_has_the_columns_and_one_row_per_cell_and_seed(grid_dir):
    rows = recording.read_csv(grid_dir / "trainability.csv")
    required = {"activation", "sigma_w2", "sigma_b2", "depth", "seed", "train_accuracy",
                "test_accuracy", "train_loss", "diverged", "xi_c"}  # fmt: skip
    assert required <= set(rows[0])
    assert sorted((float(r["sigma_w2"]), int(r["seed"])) for r in rows) == [
        (0.3, 0), (0.3, 1), (1.76, 0), (1.76, 1)
    ]  # fmt: skip
    assert all(0 <= float(r["train_accuracy"]) <= 1 and r["diverged"] == "0" for r in rows)
    assert (grid_dir / "phase_diagram.png").stat().st_size > 0
    assert "Fitted k" in (grid_dir / "summary.md").read_text()


def test_critical_network_trains_and_deep_ordered_one_does_not(grid_dir):
    cells = trainability.cells(recording.read_csv(grid_dir / "trainability.csv"))
    critical, ordered = cells[(1.76, 10)], cells[(0.3, 10)]
    assert ordered["xi_c"] < 10 / 6
    assert critical["train_accuracy"] >= 0.9
    assert ordered["train_accuracy"] <= 0.3


def test_rerun_resumes_without_training(grid_dir, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a finished depth was trained again")

    monkeypatch.setattr(trainability, "train_depth", fail)
    assert trainability.main([*TINY, "--out", str(grid_dir), "--no-plot"]) == 0
    assert "1 of 1 depths already done" in capsys.readouterr().out


def test_fit_k_separates_trained_from_untrained_cells():
    def cell(accuracy, xi):
        return {"train_accuracy": accuracy, "xi_c": xi}

    grid = {(1.0, d): cell(1.0 if d <= 40 else 0.1, 5.0) for d in (10, 20, 40, 60, 80)}
    k, lo, hi, errors = trainability.fit_k(grid)
    assert (lo, hi, errors) == (8.0, 12.0, 0)
    assert k == pytest.approx(math.sqrt(96))
    grid[(1.0, 80)] = cell(0.95, 5.0)  # one trained cell beyond the cut
    assert trainability.fit_k(grid)[3] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--activation", "tanh:alpha=1"], "alpha"),
        (["--activation", "elu:alpha=1,alpha=2"], "twice"),
        (["--activation", "tanhh"], "tanh"),
    ],
)
def test_bad_activation_is_a_one_line_error(argv, message, tmp_path, capsys):
    assert trainability.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_numbers_and_out_fail_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        trainability.main(["--depths", "10,x", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        trainability.main(["--sigma-w2", "0,1", "--out", str(tmp_path)])
    file = tmp_path / "file"
    file.write_text("")
    capsys.readouterr()  # the usage lines of the two refusals above
    assert trainability.main(["--out", str(file)]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and err.count("\n") == 1
