"""The training program: which configurations share a compilation, and that sharing one
changes no number."""

import dataclasses

import numpy as np
import pytest

from experiments import train

TINY = {"depth": 3, "width": 8, "steps": 4, "batch_size": 16, "log_every": 1, "eval_every": 2}


def _config(activation: str, **settings) -> train.Config:
    return train.Config.create(activation=activation, **{**TINY, **settings})


def test_program_key_leaves_out_activation_init_and_numbers():
    base = _config("tanh")
    for other in (
        _config("relu"),
        _config("leaky_relu", activation_params={"negative_slope": 0.2}),
        base.replace(init="he", init_scale=2.0, sigma_b=0.1, lr=0.5, clip=1.0, weight_decay=0.1),
    ):
        assert other.program_key() == base.program_key()
    for other in (base.replace(depth=4), base.replace(optimizer="adam"), base.replace(steps=5)):
        assert other.program_key() != base.program_key()


def test_program_of_lists_activations_in_order_of_first_appearance():
    configs = [_config("relu"), _config("tanh", init="he"), _config("relu", init="lecun")]
    program = train.program_of(configs)
    assert program.activations == (("relu", ()), ("tanh", ()))
    assert [program.index(c.model) for c in configs] == [0, 1, 0]
    with pytest.raises(ValueError, match="different programs"):
        train.program_of([_config("relu"), _config("relu", depth=4)])


def test_one_compilation_for_every_activation_and_the_same_numbers_as_alone():
    configs = [_config(a, init=i) for a in ("tanh", "relu", "selu") for i in ("he", "lecun")]
    (group,) = train.group_by_program(configs)
    train.clear_caches()
    trained = {}
    for call, outputs in train.train_groups([group], [0, 1]):
        assert len({c.activation for c in call}) == 1  # one call per activation
        trained.update(zip(call, outputs, strict=True))
    assert len(train._COMPILED) == 1
    assert set(trained) == set(configs)
    # In a program of relu alone, every number is bit for bit the same.
    relu = configs[2:4]
    for config, alone in zip(relu, train.train_configs(relu, [0, 1]), strict=True):
        for name, value in train.to_numpy(alone).items():
            np.testing.assert_array_equal(trained[config][name], value, err_msg=name)


def test_network_is_the_model_without_its_activation():
    """A field added to Model but not to Network would leave the program key, and
    configurations differing in it would share one program."""
    model = {f.name for f in dataclasses.fields(train.Model)}
    network = {f.name for f in dataclasses.fields(train.Network)}
    assert model - network == {"activation", "activation_params"} and network <= model


def test_the_last_step_is_evaluated_and_recorded_off_the_intervals():
    """5 steps, evaluations and records every 2: evaluations after 0, 2, 4 and 5 updates (the
    end, off the interval), gradients of steps 0, 2 and 4; each a value, not a blank."""
    config = _config("tanh", steps=5, log_every=2, eval_every=2)
    assert config.eval_steps() == [0, 2, 4, 5] and config.log_steps() == [0, 2, 4]
    result = train.train_seeds(config, np.arange(2))
    loss, norms = result["train_loss"], result["weight_grad_norm"]
    assert loss.shape == (2, 4) and norms.shape[:2] == (2, 3)
    assert (loss > 0).all() and (loss[:, -1] != loss[:, -2]).all()
    assert np.isfinite(norms).all() and (norms[:, -1] > 0).all()
