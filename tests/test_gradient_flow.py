"""The gradient-flow experiment end to end on tiny sweeps.

One CLI sweep (sigmoid and tanh, depth 6, width 256) is shared by the tests of
the tables, plots, mean-field agreement and resume, so that each activation is
compiled once; the divergence test reuses the same program (learning rate and
init scale are arguments of the compiled program, not part of it).
"""

import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import gradient_flow, recording, train

SWEEP = [
    "--activations", "sigmoid,tanh", "--init", "xavier", "--depth", "6", "--width", "256",
    "--steps", "8", "--log-every", "4", "--seeds", "3", "--batch-size", "64",
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
    # 2 activations x 3 seeds x steps {0, 4, 8} x (6 hidden layers + read-out)
    assert len(keys) == len(rows) == 2 * 3 * 3 * 7
    assert all(float(r["preact_grad_norm"]) > 0 for r in rows)
    metrics = recording.read_csv(sweep_dir / "metrics.csv")
    assert {"loss", "accuracy", "diverged"} <= {k.split("_")[-1] for k in metrics[0]}
    assert len(metrics) == 2 * 3 * 3 and all(r["diverged"] == "0" for r in metrics)
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
    real = train.train_seeds
    monkeypatch.setattr(train, "train_seeds", lambda c, s: calls.append(c.label) or real(c, s))
    assert gradient_flow.main([*SWEEP, "--out", str(sweep_dir)], progress=False) == 0
    assert calls == []  # everything finished is reused
    # An interruption during tanh: its run has tables perhaps, but no done.json marker.
    (tanh_dir,) = (sweep_dir / "runs").glob("tanh*")
    (tanh_dir / "done.json").unlink()
    assert gradient_flow.main([*SWEEP, "--out", str(sweep_dir)], progress=False) == 0
    assert calls == ["tanh/xavier"]
    assert (sweep_dir / "gradient_norms.csv").read_text() == before  # same seed, same numbers


def test_divergence_is_recorded_and_the_sweep_goes_on():
    stable = train.Config(
        activation="tanh", init="xavier", depth=6, width=256, steps=8, log_every=4, lr=0.05
    )
    exploding = train.Config(**{**stable.to_dict(), "activation_params": (), "lr": 1e30,
                                "init_scale": 1e4})  # fmt: skip
    # Three seeds, as the sweep fixture: the same compiled program (`--dist loadscope` keeps
    # a module's tests on one worker).
    out = train.to_numpy(train.train_seeds(exploding, [0, 1, 2]))
    assert out["diverged"][:, 0].tolist() == [False] * 3  # step 0 is before any update
    assert out["diverged"][:, -1].all()
    assert np.isnan(out["train_loss"][out["diverged"]]).all()
    # The exact training step is kept, between the recorded steps 0 and 4.
    assert (out["diverged_step"][:, 0] == -1).all()
    first = out["diverged_step"][:, -1]
    assert ((first >= 1) & (first <= 4)).all() and (
        out["diverged_step"][:, 1:] == first[:, None]
    ).all()
    ok = train.to_numpy(train.train_seeds(stable, [0, 1, 2]))
    assert not ok["diverged"].any() and np.isfinite(ok["train_loss"]).all()


def test_vmapped_seeds_match_single_seed_runs():
    config = train.Config(activation="tanh", init="xavier", depth=6, width=256, steps=8,
                          log_every=4, lr=0.05)  # fmt: skip
    # Three seeds, as the sweep fixture: its batched tanh program is reused.
    batched = train.to_numpy(train.train_seeds(config, [0, 1, 2]))
    single = train.to_numpy(train.train_one(config, 2))
    np.testing.assert_allclose(single["train_loss"], batched["train_loss"][2], rtol=1e-4)
    np.testing.assert_allclose(
        single["preact_grad_norm"], batched["preact_grad_norm"][2], rtol=1e-3
    )


def test_norms_do_not_underflow():
    tiny = jnp.full((32, 64), 1e-25, jnp.float32)
    assert float(jnp.sqrt(jnp.sum(tiny**2))) == 0.0  # the naive way
    assert float(recording.safe_norm(tiny)) == pytest.approx(1e-25 * math.sqrt(32 * 64), rel=1e-6)
    assert float(recording.safe_norm(jnp.full((4,), 1e25, jnp.float32))) == pytest.approx(2e25)
    assert float(recording.safe_norm(jnp.zeros(3, jnp.float32))) == 0.0


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
    ],
)
def test_bad_flags_fail_before_any_compute(flags, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(train, "train_seeds", lambda *a: pytest.fail("trained"))
    with pytest.raises(SystemExit) as e:
        gradient_flow.main([*flags, "--out", str(tmp_path)], progress=False)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_activation_parameters_are_parsed():
    name, params = gradient_flow.parse_activation("leaky_relu:negative_slope=0.2")
    assert (name, params) == ("leaky_relu", (("negative_slope", 0.2),))
    assert gradient_flow._split_activations("tanh,elu:alpha=2,gelu:approximate=false") == [
        "tanh", "elu:alpha=2", "gelu:approximate=false",
    ]  # fmt: skip


def test_sharded_over_four_cpu_devices_matches_unsharded(tmp_path):
    script = """
import json, sys
import jax, numpy as np
from experiments import train
assert jax.device_count() == 4, jax.devices()
config = train.Config(activation="tanh", init="xavier", depth=6, width=256, steps=8, log_every=4)
out = train.to_numpy(train.train_seeds(config, [0, 1, 2]))  # padded to 4 seeds
program, sharding = train._batched_program(config.program_key(), 4)
assert sharding is not None
json.dump({k: v.tolist() for k, v in out.items()}, open(sys.argv[1], "w"))
"""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "sharded.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sharded = json.loads((tmp_path / "sharded.json").read_text())
    # The fixture's tanh program (compiled once already in this process).
    config = train.Config(
        activation="tanh", init="xavier", depth=6, width=256, steps=8, log_every=4
    )
    local = train.to_numpy(train.train_seeds(config, [0, 1, 2]))
    for key in ("train_loss", "preact_grad_norm", "weight_grad_norm"):
        np.testing.assert_allclose(np.asarray(sharded[key]), local[key], rtol=1e-4)
