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
