"""The gradient-flow experiment end to end on tiny sweeps.

One CLI sweep (sigmoid and tanh, depth 6, width 256) is shared by the tests of
the tables, plots, mean-field agreement and resume, so that each activation is
compiled once; the divergence test reuses the same program (learning rate and
init scale are arguments of the compiled program, not part of it).
"""

import json
import math
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from experiments import data as data_lib
from experiments import gradient_flow, recording, records, stats, train

SWEEP = [
    "--activations", "sigmoid,tanh", "--init", "xavier", "--depth", "6", "--width", "256",
    "--steps", "8", "--log-every", "1", "--eval-every", "4", "--seeds", "3", "--batch-size", "64",
    "--optimizer", "sgd", "--lr", "0.05",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert gradient_flow.main([*SWEEP, "--out", str(out)], progress=False) == 0
    return out


def test_sweep_writes_tables_plots_config_and_summary(sweep_dir):
    rows = recording.read_csv(sweep_dir / "gradient_norms.csv")
    required = {
        "activation",
        "init",
        "seed",
        "step",
        "layer",
        "weight_grad_norm",
        "preact_grad_norm",
    }
    assert required <= set(rows[0])
    keys = {(r["activation"], r["seed"], r["step"], r["layer"]) for r in rows}
    # Every training step: 2 activations x 3 seeds x steps 0..7 x (6 hidden layers + read-out)
    assert len(keys) == len(rows) == 2 * 3 * 8 * 7
    assert all(float(r["preact_grad_norm"]) > 0 for r in rows)
    metrics = recording.read_csv(sweep_dir / "metrics.csv")
    assert {"loss", "accuracy", "diverged"} <= {k.split("_")[-1] for k in metrics[0]}
    # Evaluations after 0, 4 and 8 updates.
    assert len(metrics) == 2 * 3 * 3 and all(r["diverged"] == "0" for r in metrics)
    assert {r["step"] for r in metrics} == {"0", "4", "8"}
    for table in records.TABLES:
        header = (sweep_dir / table.file).read_text().partition("\n")[0]
        assert header.split(",") == list(table.columns)
    config = json.loads((sweep_dir / "config.json").read_text())
    assert config["versions"]["jax"] and config["devices"] and len(config["configs"]) == 2
    for name in ("preact_grad_by_layer", "heatmaps", "loss_curves", "meanfield_slopes"):
        assert (sweep_dir / f"{name}.png").stat().st_size > 5_000
    summary = (sweep_dir / "summary.md").read_text()
    assert "| sigmoid/xavier |" in summary and "| tanh/xavier |" in summary
    # The mean-field column is the product of meanfield.csv's per-layer predictions.
    rows = {r["config"]: r for r in gradient_flow.summarise(sweep_dir)}
    predicted = [
        float(r["predicted_log_ratio"])
        for r in recording.read_csv(sweep_dir / "meanfield.csv")
        if r["config"] == "sigmoid/xavier"
    ]
    assert rows["sigmoid/xavier"]["ratio_meanfield"] == pytest.approx(math.exp(sum(predicted[:5])))
    assert rows["sigmoid/xavier"]["ratio_meanfield"] == pytest.approx(
        rows["sigmoid/xavier"]["ratio_init"], rel=0.25
    )
    assert not list(sweep_dir.rglob("*.tmp*"))  # atomic writes leave no temporaries


def test_summary_gives_n_and_95_percent_intervals_over_seeds(sweep_dir):
    # Per seed, |dL/dh| of the first hidden layer over the last at step 0, from the table.
    norms = {}
    for r in recording.read_csv(sweep_dir / "gradient_norms.csv"):
        if r["config"] == "tanh/xavier" and r["step"] == "0" and r["layer"] in ("0", "5"):
            norms[(int(r["seed"]), r["layer"])] = float(r["preact_grad_norm"])
    logs = np.log([norms[(s, "0")] / norms[(s, "5")] for s in range(3)])
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)  # Student t, 2 dof, 95%
    row = {r["config"]: r for r in gradient_flow.summarise(sweep_dir)}["tanh/xavier"]
    iv = row["ratio_init_interval"]
    assert (iv.n, iv.left_out, row["seeds"]) == (3, 0, 3)
    assert row["ratio_init"] == pytest.approx(math.exp(logs.mean()), rel=1e-6)
    assert (iv.low, iv.high) == pytest.approx(
        (math.exp(logs.mean() - half), math.exp(logs.mean() + half)), rel=1e-6
    )
    accuracy = [
        float(r["test_accuracy"])
        for r in recording.read_csv(sweep_dir / "metrics.csv")
        if r["config"] == "tanh/xavier" and r["step"] == "8"
    ]
    assert row["test_accuracy"] == pytest.approx(np.mean(accuracy), rel=1e-6)
    summary = (sweep_dir / "summary.md").read_text()
    assert "n = 3 seeds" in summary
    cell = stats.format_interval(iv, ".3g").replace(" (n=3)", "")
    assert f"| tanh/xavier | {cell} |" in summary
    table = {r["config"]: r for r in recording.read_csv(sweep_dir / "summary.csv")}
    assert set(table["tanh/xavier"]) == set(gradient_flow.SUMMARY_COLUMNS)
    assert float(table["tanh/xavier"]["ratio_init_high"]) == pytest.approx(iv.high, rel=1e-6)
    # A cell with a diverged seed left out says so.
    left = stats.Interval(2, 0.5, 0.4, 0.6, left_out=1)
    assert gradient_flow._cell(left, ".1f", 3) == "0.5 [0.4, 0.6] (n=2, 1 left out)"
    # An accuracy's interval stays within [0, 1] (one failed seed of four widens it past 1).
    wide = stats.interval([0.93, 0.96, 0.95, 0.58])
    assert wide.high > 1 and gradient_flow._within(wide, 0.0, 1.0).high == 1.0


def test_sigmoid_gradient_vanishes_faster_than_tanh(sweep_dir):
    ratio = {r["config"]: float(r["ratio_init"]) for r in gradient_flow.summarise(Path(sweep_dir))}
    assert ratio["sigmoid/xavier"] < 1e-3 < ratio["tanh/xavier"] < 1


def test_step0_preactivation_gradients_follow_mean_field(sweep_dir):
    norms = defaultdict(list)
    for r in recording.read_csv(sweep_dir / "gradient_norms.csv"):
        if r["step"] == "0":
            norms[(r["config"], int(r["layer"]))].append(float(r["preact_grad_norm"]))
    predictions = recording.read_csv(sweep_dir / "meanfield.csv")
    assert {p["config"] for p in predictions} == {"sigmoid/xavier", "tanh/xavier"}
    for p in predictions:
        layer = int(p["layer"])
        here, above = norms[(p["config"], layer)], norms[(p["config"], layer + 1)]
        measured = math.exp(np.mean(np.log(here) - np.log(above)))  # geometric mean over seeds
        predicted = math.exp(float(p["predicted_log_ratio"]))
        assert measured == pytest.approx(predicted, rel=0.10), (p["config"], layer)


def test_rerun_resumes_and_recomputes_only_the_interrupted_configuration(sweep_dir, monkeypatch):
    before = (sweep_dir / "gradient_norms.csv").read_text()
    calls = []
    real = train.train_groups

    def counting(groups, seeds):
        calls.extend(c.label for group in groups for c in group)
        return real(groups, seeds)

    monkeypatch.setattr(train, "train_groups", counting)
    assert gradient_flow.main([*SWEEP, "--out", str(sweep_dir)], progress=False) == 0
    assert calls == []  # everything finished is reused
    # An interruption during tanh: its run has tables perhaps, but no done.json marker.
    (tanh_dir,) = (sweep_dir / "runs").glob("tanh*")
    (tanh_dir / "done.json").unlink()
    assert gradient_flow.main([*SWEEP, "--out", str(sweep_dir)], progress=False) == 0
    assert calls == ["tanh/xavier"]
    assert (sweep_dir / "gradient_norms.csv").read_text() == before  # same seed, same numbers


# The sweep fixture's tanh configuration: its compiled program is reused (`--dist loadscope`
# keeps a module's tests on one worker).
TANH = train.Config.create(
    activation="tanh", init="xavier", depth=6, width=256, steps=8, log_every=1, eval_every=4,
    lr=0.05, batch_size=64,
)  # fmt: skip


def test_divergence_is_recorded_and_the_sweep_goes_on():
    stable = TANH
    exploding = stable.replace(lr=1e30, init_scale=1e4)
    # Three seeds, one configuration per call, as in the sweep fixture: the same program.
    out = train.to_numpy(train.train_seeds(exploding, [0, 1, 2]))
    ok = train.to_numpy(train.train_seeds(stable, [0, 1, 2]))
    assert out["diverged"][:, 0].tolist() == [False] * 3  # step 0 is before any update
    assert out["diverged"][:, -1].all()
    assert np.isnan(out["train_loss"][out["diverged"]]).all()
    # The exact training step is kept, between the evaluations after 0 and 4 updates.
    assert (out["diverged_step"][:, 0] == -1).all()
    first = out["diverged_step"][:, -1]
    assert ((first >= 1) & (first <= 4)).all() and (
        out["diverged_step"][:, 1:] == first[:, None]
    ).all()
    # The per-step gradient records: finite up to the step that diverged, NaN after it.
    norms = out["weight_grad_norm"]
    for seed, step in enumerate(first):
        assert np.isfinite(norms[seed, :step]).all() and np.isnan(norms[seed, step:]).all()
    assert not ok["diverged"].any() and np.isfinite(ok["train_loss"]).all()


def test_vmapped_seeds_match_single_seed_runs():
    config = TANH
    # Three seeds, as the sweep fixture: its batched tanh program is reused.
    batched = train.to_numpy(train.train_seeds(config, [0, 1, 2]))
    single = train.to_numpy(train.train_one(config, 2))
    np.testing.assert_allclose(single["train_loss"], batched["train_loss"][2], rtol=1e-4)
    np.testing.assert_allclose(
        single["preact_grad_norm"], batched["preact_grad_norm"][2], rtol=1e-3
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--activations", "sigmod"], "sigmoid"),
        (["--activations", "leaky_relu:slope=0.2"], "negative_slope"),
        (["--activations", "softmax"], "not elementwise"),
        (["--init", "kaiming"], "unknown init"),
        (["--activations", "sigmoid", "--init", "critical"], "no critical initialisation"),
        (["--depth", "0"], "depth"),
        (["--norm", "group"], "unknown norm"),
        (["--clip", "one"], "--clip"),
        (["--activations", "leaky_relu:negative_slope=abc"], "must be a real number"),
        (["--activations", "elu:alpha=1:alpha=2"], "must be a real number"),
        (["--activations", "elu:alpha=1,alpha=2"], "given twice"),
        (["--input-norm", "unti"], "invalid choice"),
        (["--input-norm", "unit", "--q0", "-1"], "q0"),
    ],
)
def test_bad_flags_fail_before_any_compute(flags, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(train, "train_groups", lambda *a: pytest.fail("trained"))
    with pytest.raises(SystemExit) as e:
        gradient_flow.main([*flags, "--out", str(tmp_path)], progress=False)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_input_norm_reaches_the_training_data_the_key_and_the_mean_field(monkeypatch):
    flags = [*SWEEP, "--activations", "tanh", "--input-norm", "unit", "--q0", "2"]
    (config,) = gradient_flow.resolve(gradient_flow.build_parser().parse_args(flags)).configs
    assert (config.input_norm, config.q0) == ("unit", 2.0)
    plain = config.replace(input_norm="none")
    assert config.key([0]) != plain.key([0]) != plain.replace(q0=3.0).key([0])
    # The arrays the compiled program is called with: every example at mean square q0.
    _, (_, _, data, _) = train._call(config.program(), [config], [0, 1, 2])
    for x in (data["x_train"], data["x_test"]):
        np.testing.assert_allclose(np.mean(np.square(np.asarray(x)), axis=1), 2.0, rtol=1e-5)
    raw = np.asarray(train._call(plain.program(), [plain], [0, 1, 2])[1][2]["x_train"])
    assert np.ptp(np.mean(raw**2, axis=1)) > 1.0  # digits' lengths differ from example to example
    seen = []

    def profile(*args, q_input, **kwargs):
        seen.append(q_input)
        return []

    monkeypatch.setattr(gradient_flow.model_lib, "mean_field_profile", profile)
    gradient_flow.meanfield_rows(config)
    gradient_flow.meanfield_rows(plain)
    expected = np.mean(np.square(data_lib.load("digits").x_train.astype(np.float64)))
    assert seen == [pytest.approx(2.0, rel=1e-9), pytest.approx(expected, rel=1e-9)]


def test_activation_parameters_are_parsed():
    name, params = gradient_flow.parse_activation("leaky_relu:negative_slope=0.2")
    assert (name, params) == ("leaky_relu", (("negative_slope", 0.2),))
    assert gradient_flow._split_activations("tanh,elu:alpha=2,gelu:approximate=false") == [
        "tanh", "elu:alpha=2", "gelu:approximate=false",
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_write_the_same_tables_as_one_process(tmp_path, sweep_dir):
    """The tanh part of the sweep as 2 processes (jax.distributed, coordinator on 127.0.0.1,
    CPU collectives, one CPU device each) and as 1 process with 2 CPU devices: each device
    runs the same program on its share of the seeds (3, padded to 4), so the tables are
    identical byte for byte; and equal to the 1-device fixture to float32 rounding."""
    flags = [*SWEEP, "--activations", "tanh", "--no-plots"]
    command = [sys.executable, "-m", "experiments.gradient_flow", *flags]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    address = f"127.0.0.1:{_free_port()}"
    workers = [
        subprocess.Popen(
            [
                *command,
                "--out",
                str(tmp_path / "two"),
                "--distributed",
                "--coordinator",
                address,
                "--num-processes",
                "2",
                "--process-id",
                str(i),
                "--cpu-devices",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    one = subprocess.run(
        [*command, "--out", str(tmp_path / "one"), "--cpu-devices", "2"], cwd=ROOT,
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    names = [t.file for t in records.TABLES] + ["meanfield.csv", "summary.md"]
    for name in names:
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()
    assert not (tmp_path / "two" / "runs").exists() or all(
        (d / "done.json").exists() for d in (tmp_path / "two" / "runs").iterdir()
    )
    # Against the 1-device run of the fixture (other batch sizes per device: rounding only).
    two = recording.read_columns(tmp_path / "two" / records.GRADIENTS.file)
    local = recording.read_columns(sweep_dir / records.GRADIENTS.file)
    tanh = local["activation"] == "tanh"
    for key in ("weight_grad_norm", "preact_grad_norm"):
        np.testing.assert_allclose(
            two[key].astype(float), local[key][tanh].astype(float), rtol=1e-5
        )


def test_out_that_is_a_file_fails_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "train_groups", lambda *a: pytest.fail("trained"))
    (tmp_path / "taken").write_text("")
    with pytest.raises(SystemExit) as e:
        gradient_flow.main(["--out", str(tmp_path / "taken")], progress=False)
    assert e.value.code == 2 and "is a file" in capsys.readouterr().err


def test_seed_offset_and_activation_list(capsys):
    args = gradient_flow.build_parser().parse_args(["--seeds", "2", "--seed-offset", "5"])
    assert gradient_flow.resolve(args).seeds == [5, 6]
    assert gradient_flow.main(["--list-activations"]) == 0
    names = capsys.readouterr().out.split()
    assert "tanh" in names and "softmax" not in names
    assert "(default: 3)" in gradient_flow.build_parser().format_help()  # --seeds


def test_the_same_configuration_under_two_labels_is_trained_once(tmp_path, monkeypatch):
    # relu's critical gain at sigma_b = 0 is sqrt 2 (its quadrature is tested in
    # test_theory.py; here the value, to spare the compilations): relu/critical is relu/he.
    from jaxact import theory

    def relu_gain(activation, *, sigma_b=0.0, **params):
        assert (activation, sigma_b) == ("relu", 0.0)
        return math.sqrt(2.0)

    monkeypatch.setattr(theory, "critical_gain", relu_gain)
    monkeypatch.setattr(gradient_flow, "meanfield_rows", lambda config: [])
    argv = ["--activations", "relu", "--init", "xavier,he,critical", "--norm", "none,batch",
            "--depth", "6", "--width", "256", "--steps", "8", "--seeds", "2"]  # fmt: skip
    sweep = gradient_flow.resolve(gradient_flow.build_parser().parse_args(argv))
    trained, saved = [], {}

    def fake_train_groups(groups, seeds):
        for group in groups:
            trained.extend(c.label for c in group)
            yield list(group), [{"records of": c.label} for c in group]

    def fake_save_run(directory, key, config, write, meanfield_rows, seconds):
        saved[directory.name] = write.__defaults__[1]  # the records given to write_tables

    monkeypatch.setattr(train, "train_groups", fake_train_groups)
    monkeypatch.setattr(gradient_flow.recording, "save_run", fake_save_run)
    directories = gradient_flow.run_sweep(sweep, tmp_path, progress=False)
    assert sorted(trained) == sorted(["relu/xavier", "relu/xavier/batchnorm", "relu/he",
                                      "relu/he/batchnorm"])  # fmt: skip
    assert len(directories) == len(saved) == 6  # every label has its results
    name = {c.label: d.name for c, d in zip(sweep.configs, directories, strict=True)}
    for norm in ("", "/batchnorm"):
        assert saved[name["relu/critical" + norm]] == {"records of": "relu/he" + norm}
        assert saved[name["relu/he" + norm]] == {"records of": "relu/he" + norm}
    assert saved[name["relu/xavier"]] == {"records of": "relu/xavier"}
    summary = gradient_flow.summary_markdown(sweep, [])
    assert "- relu/critical is relu/he (equal scales): trained once" in summary
    assert "- relu/critical/batchnorm is relu/he/batchnorm (equal scales)" in summary
    assert "relu/xavier (equal" not in summary and "is relu/xavier" not in summary
