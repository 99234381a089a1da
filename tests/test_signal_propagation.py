"""Signal propagation: the sampler against dense networks, and both against the maps.

One study (tanh in its ordered and in its chaotic phase, width 1,000, depth 30, 1,024
networks each, one compiled program) is shared by the table and agreement tests; the
sampler-against-dense test uses narrow networks, where full weight matrices are cheap.
"""

import math

import numpy as np
import pytest

from experiments import recording, signal_propagation

RUN = ["--config", "tanh@1.25,0.05", "--config", "tanh@2.5,0.05", "--width", "1000",
       "--depth", "30", "--networks", "1024", "--q-precision", "0", "--c-precision", "0",
       "--c0", "0.2"]  # fmt: skip
ORDERED, CHAOTIC = "tanh σw²=1.25 σb²=0.05", "tanh σw²=2.5 σb²=0.05"
N = 1024


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """(output directory, {label: (config, theory, comparison, verdicts)})."""
    out = tmp_path_factory.mktemp("signal")
    args = signal_propagation.build_parser().parse_args(RUN)
    settings = {k: getattr(args, k) for k in signal_propagation.SETTINGS}
    configs = [signal_propagation.parse_config(t) for t in args.configs]
    entries = signal_propagation.run_study(out, settings, configs)
    return out, {entry[0].label: entry for entry in entries}


def test_table_has_the_columns_and_a_row_per_layer(study):
    out, _ = study
    table = recording.read_csv(out / "signal.csv")
    required = {"activation", "sigma_w2", "sigma_b2", "layer", "q_measured", "q_theory",
                "c_measured", "c_theory"}  # fmt: skip
    assert required <= set(table[0])
    for label in (ORDERED, CHAOTIC):
        assert [int(r["layer"]) for r in table if r["label"] == label] == list(range(31))
    assert {int(r["networks"]) for r in table} == {N}
    assert (out / "signal.png").stat().st_size > 0
    assert "fitted decay length" in (out / "summary.md").read_text()


@pytest.mark.parametrize("label", [ORDERED, CHAOTIC])
def test_length_and_correlation_follow_the_maps_within_the_noise(study, label):
    _, theory, result, ok = study[1][label]
    q_m, q_se, c_m, c_se = (result[k] for k in ("q_measured", "q_sem", "c_measured", "c_sem"))
    # Four standard errors, plus a finite-width bias of O(1/N).
    assert np.all(np.abs(q_m - theory["q"]) <= 4 * q_se + 0.002 * theory["q"])
    assert np.all(np.abs(c_m - theory["c"]) <= 4 * c_se + 0.004)
    assert ok["q"] and ok["c"]


def test_correlation_decays_at_xi_c(study):
    _, theory, result, ok = study[1][ORDERED]
    assert theory["c_star"] == 1.0
    lo, hi = result["xi_window"]
    assert hi - lo >= 10
    assert result["xi_fit"] == pytest.approx(theory["xi_c"], rel=signal_propagation.XI_TOLERANCE)
    assert ok["xi"]


def test_chaotic_correlation_settles_at_c_star(study):
    _, theory, result, _ = study[1][CHAOTIC]
    assert theory["c_star"] == pytest.approx(0.4468, abs=5e-4)
    # From c^0 = 0.2 the map climbs towards c*, every step closing the gap by about
    # exp(-1/xi_c), and the networks follow it.
    gap = theory["c_star"] - theory["c"]
    assert np.all(gap > 0) and np.all(np.diff(gap) < 0)
    assert gap[-1] / gap[-11] == pytest.approx(math.exp(-10 / theory["xi_c"]), rel=0.05)
    assert theory["c_star"] - result["c_measured"][-1] == pytest.approx(gap[-1], abs=0.005)


@pytest.mark.parametrize("label", [ORDERED, CHAOTIC])
def test_gradient_slope_is_half_log_chi1(study, label):
    _, theory, result, ok = study[1][label]
    expected = -0.5 * math.log(theory["chi_1"])
    assert abs(expected) > 0.05
    assert result["slope"] == pytest.approx(expected, rel=signal_propagation.SLOPE_TOLERANCE)
    assert ok["slope"]


def test_exponential_fit_recovers_its_parameters():
    x = np.arange(10, 40)
    xi, limit = signal_propagation._fit_exponential(x, 0.45 - 0.2 * np.exp(-x / 7.0))
    assert xi == pytest.approx(7.0, rel=2e-3)
    assert limit == pytest.approx(0.45, abs=1e-4)


def test_sampled_networks_have_the_law_of_dense_ones():
    config = signal_propagation.parse_config("tanh@2.5,0.05")
    kwargs = {"width": 32, "depth": 8, "networks": 256, "q0": 1.0, "c0": 0.3}
    sampled = signal_propagation.simulate(config, **kwargs, seed=1)
    dense = signal_propagation.simulate(config, **kwargs, seed=2, method="dense")
    for name in ("q", "c", "grad2"):
        a, b = sampled[name], dense[name]
        se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
        assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 4.5 * se), name
    # The spreads agree too (a sampler that drew the mean field would have none).
    for name in ("q", "grad2"):
        ratio = sampled[name][:, -1].std() / dense[name][:, -1].std()
        assert 0.8 < ratio < 1.25, name


@pytest.mark.parametrize(
    "text, message",
    [("tanh", "@"), ("tanh@x", "numbers"), ("tanh@0", "> 0"), ("tanhh@1", "tanh"),
     ("tanh@1,-1", ">= 0")],
)  # fmt: skip
def test_bad_configuration_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        signal_propagation.parse_config(text)


def test_iterates_solver_matches_plain_iteration():
    def step(x):
        return np.cos(x), -np.sin(x)

    plain = [0.3]
    for _ in range(40):
        plain.append(math.cos(plain[-1]))
    fast = signal_propagation._iterates(step, 0.3, 40, np.full(41, 0.7), tol=1e-13)
    np.testing.assert_allclose(fast, plain, atol=1e-12)


def test_theory_profile_is_the_maps_iterated_layer_by_layer(study):
    from jaxact import theory as maps

    for label in (ORDERED, CHAOTIC):
        config, theory, _, _ = study[1][label]
        kw = {"sigma_w": math.sqrt(config.sigma_w2), "sigma_b": math.sqrt(config.sigma_b2)}
        q, c = [theory["q_star"]], [0.2]
        for _ in range(3):
            q.append(float(maps.length_map("tanh", q[-1], **kw)))
            c.append(float(maps.correlation_map("tanh", c[-1], q0=theory["q_star"], **kw)))
        np.testing.assert_allclose(theory["q"][:4], q, rtol=2e-6)
        np.testing.assert_allclose(theory["c"][:4], c, atol=2e-6)
        assert theory["c"][1] != theory["c"][0]  # the map moves c: the check has teeth


def test_gradient_is_taken_in_the_first_networks_only():
    config = signal_propagation.parse_config("tanh@2.5,0.05")
    kwargs = {"width": 32, "depth": 8, "q0": 1.0, "c0": 0.3, "seed": 1}
    sim = signal_propagation.simulate(config, networks=512, gradient_networks=256, **kwargs)
    assert sim["q"].shape == (512, 9) and sim["grad2"].shape == (256, 9)
    assert np.isfinite(sim["grad2"]).all()
    # The same networks as a run that takes every gradient.
    full = signal_propagation.simulate(config, networks=256, **kwargs)
    np.testing.assert_allclose(sim["grad2"], full["grad2"], rtol=1e-6)
    np.testing.assert_allclose(sim["q"][:256], full["q"], rtol=1e-6)


@pytest.mark.parametrize("method", ["sampled", "dense"])
def test_gradient_networks_round_up_to_a_whole_call(method):
    """300 gradient networks in calls of 128: the first three calls (384 networks) take the
    gradient and the fourth does not, whatever the method; a gradient that came out NaN
    would be kept (rows are chosen by call, not by value)."""
    config = signal_propagation.parse_config("tanh@2.5,0.05")
    kwargs = {"width": 16, "depth": 4, "q0": 1.0, "c0": 0.3, "seed": 3, "method": method}
    sim = signal_propagation.simulate(
        config, networks=512, gradient_networks=300, group=128, **kwargs
    )
    assert sim["q"].shape == (512, 5) and sim["grad2"].shape == (384, 5)
    assert np.isfinite(sim["grad2"]).all()
