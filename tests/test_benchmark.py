"""The benchmark CLI end to end on tiny sizes: output files and their shape, never the speed."""

import csv

import pytest

from experiments import benchmark


def _fake_step_rows(repeats):
    """Training-step rows with known medians: jaxact 1.1, jax.nn 1.0, control 0.99 ms."""
    medians = dict(zip(benchmark.STEP_CONTENDERS, (1.1e-3, 1.0e-3, 0.99e-3), strict=True))
    return [
        benchmark.Measurement("training_step", "fake case", "float32", 8, c, m, m, m, 0.1, repeats)
        for c, m in medians.items()
    ]


def test_quick_benchmark_writes_csv_markdown_and_plot(tmp_path, monkeypatch):
    # The training steps are measured for real in their own test below.
    monkeypatch.setattr(benchmark, "bench_training_steps", lambda r, quick: _fake_step_rows(r))
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
        "forward", "gradient", "value_and_gradient", "vmap_rows", "vmap_hyperparameters",
        "per_example_gradients",
        "ensemble_training", "training_step",
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
    assert "| fake case | 1.1 | 1 | 0.99 | 1.100 | 0.990 |" in report
    assert "| training step, fake case: jaxact <= 1.03x jax.nn | 1.100 (control 0.990) | NO |" in (
        report
    )


def test_training_steps_quick_rows_and_ratios(tmp_path):
    """Tiny shapes: one row per case and contender, and the ratios are the medians'."""
    code = benchmark.main(["--training-steps", "--quick", "--repeats", "2", "--out", str(tmp_path)])
    assert code == 0
    with open(tmp_path / "training_steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["benchmark"] for r in rows} == {"training_step"}
    cases = list(dict.fromkeys(r["case"] for r in rows))
    assert len(cases) == 2 and "transformer MLP block, gelu" in cases[0] and "tanh" in cases[1]
    medians = {(r["case"], r["contender"]): float(r["median_s"]) for r in rows}
    assert set(medians) == {(c, k) for c in cases for k in benchmark.STEP_CONTENDERS}
    assert all(
        m > 0 and int(r["repeats"]) == 2 for m, r in zip(medians.values(), rows, strict=True)
    )
    report = (tmp_path / "training_steps.md").read_text()
    for case in cases:
        ratio = medians[case, "jaxact"] / medians[case, "jax.nn"]
        control = medians[case, "jax.nn control"] / medians[case, "jax.nn"]
        assert f"| {ratio:.3f} | {control:.3f} |" in report
        assert f"training step, {case}: jaxact <= 1.03x jax.nn | {ratio:.3f}" in report
    assert not (tmp_path / "benchmark.csv").exists()  # only the training steps ran


def test_program_structure_quick_rows_and_guard_cost(tmp_path):
    """nn.scan against unrolled layers, with and without the divergence guard, on a tiny MLP."""
    argv = ["--program-structure", "--quick", "--shapes", "2x8", "--repeats", "1"]
    assert benchmark.main([*argv, "--out", str(tmp_path)]) == 0
    with open(tmp_path / "program_structure.csv") as f:
        rows = list(csv.DictReader(f))
    by = {r["contender"]: r for r in rows}
    assert set(by) == set(benchmark.STRUCTURE_CONTENDERS)
    assert all(r["case"] == "depth 2, width 8, batch 128" for r in rows)
    assert all(float(r["median_s"]) > 0 and float(r["compile_s"]) > 0 for r in rows)
    guard = float(by["scan + guard"]["median_s"]) / float(by["scan, no guard"]["median_s"]) - 1
    unrolled = float(by["unrolled + guard"]["median_s"]) / float(by["scan + guard"]["median_s"])
    report = (tmp_path / "program_structure.md").read_text()
    assert f"| {unrolled:.2f}x | {guard:+.1%} |" in report


def test_unrolled_mlp_computes_what_the_scanned_one_does():
    """The unrolled layers are the scanned model's, so the comparison is like for like."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments import model

    kwargs = {"depth": 3, "width": 8, "num_classes": 4, "activation": jnp.tanh,
              "kernel_init": jax.nn.initializers.lecun_normal()}  # fmt: skip
    scanned, unrolled = model.MLP(**kwargs), benchmark.UnrolledMLP(**kwargs)
    x = jax.random.normal(jax.random.key(0), (5, 6))
    params = scanned.init(jax.random.key(1), x, train=True)["params"]
    layers = {
        f"layer_{i + 1}": jax.tree.map(lambda a, i=i: a[i], params["layers"]) for i in range(2)
    }
    flat = {"layer_0": params["layer_0"], **layers, "readout": params["readout"]}
    np.testing.assert_allclose(
        unrolled.apply({"params": flat}, x, train=True),
        scanned.apply({"params": params}, x, train=True),
        rtol=1e-6,
    )


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
