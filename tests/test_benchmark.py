"""The benchmark CLI end to end on tiny sizes: output files and their shape, never the speed."""

import csv

import pytest

from experiments import benchmark


def test_quick_benchmark_writes_csv_markdown_and_plot(tmp_path):
    code = benchmark.main(
        [
            "--quick",
            "--sizes", "1000",
            "--activations", "relu,softplus",
            "--dtypes", "float32",
            "--repeats", "2",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    with open(tmp_path / "benchmark.csv") as f:
        rows = list(csv.DictReader(f))
    fields = {"benchmark", "case", "dtype", "size", "contender", "median_s", "min_s", "max_s"}
    assert fields <= set(rows[0])
    benchmarks = {r["benchmark"] for r in rows}
    assert benchmarks == {
        "forward", "gradient", "vmap_rows", "vmap_hyperparameters", "per_example_gradients",
        "ensemble_training",
    }  # fmt: skip
    forward = [r for r in rows if r["benchmark"] == "forward"]
    assert {(r["case"], r["contender"]) for r in forward} == {
        (name, contender)
        for name in ("relu", "softplus")
        for contender in ("jaxact", "jax.nn", "copy")
    }
    for r in rows:
        assert 0 < float(r["min_s"]) <= float(r["median_s"]) <= float(r["max_s"])
        assert int(r["repeats"]) == 2
    report = (tmp_path / "benchmark.md").read_text()
    assert "| relu |" in report and "| softplus |" in report
    assert "### Targets" in report and "geometric mean" in report
    assert (tmp_path / "activation_ratios.png").stat().st_size > 5_000


def test_bad_activation_names_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--activations", "sigmod"])
    assert exit_info.value.code == 2
    assert "sigmoid" in capsys.readouterr().err


def test_activation_without_jax_nn_counterpart_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--activations", "sparsemax"])
    assert exit_info.value.code == 2
    assert "no jax.nn counterpart" in capsys.readouterr().err


def test_main_job_prints_the_side_by_side_table(tmp_path, capsys):
    """The main job against PyTorch eager on a tiny shape: the table's rows and column."""
    from experiments import main_job_benchmark

    code = benchmark.main(["--main-job", "--quick", "--shapes", "3x8", "--out", str(tmp_path)])
    assert code == 0
    report = (tmp_path / "main_job.md").read_text()
    assert report in capsys.readouterr().out
    lines = report.splitlines()
    assert lines[0].startswith("| work: 1 activations (relu) x 2 seeds x 3 SGD steps")
    assert lines[0].endswith("| depth 3, width 8 |")
    torch_row = next(line for line in lines if line.startswith("| PyTorch"))
    cells = {line.split(" | ")[0]: line.split(" | ")[-1] for line in lines[2:7]}
    assert len(cells) == 5
    if main_job_benchmark.torch_available():
        assert torch_row.endswith(" s |") and "x) |" in lines[3]  # the speed-up is given
    else:
        assert "not installed" in torch_row and torch_row.endswith("— |")


def test_main_job_shapes_are_checked(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--main-job", "--shapes", "32by128"])
    assert exit_info.value.code == 2
    assert "DEPTHxWIDTH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--dtypes", "float8"], "--dtypes"), (["--repeats", "0"], "--repeats")],
)
def test_bad_dtypes_and_repeats_are_one_line_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
