"""The latent-replay mixing rule and trainer configuration checks."""
import pytest

from pulptrain.cl import TrainerConfig, mixing_plan


def test_paper_setting():
    # N = 300 new frames, M = 1500 replays, mini-batch 128: 21 new + 107 replays, 14 iterations.
    plan = mixing_plan(300, 1500, 128)
    assert (plan.new_per_minibatch, plan.replays_per_minibatch, plan.iterations) == (21, 107, 14)


def test_empty_memory_uses_full_minibatches_of_new_samples():
    plan = mixing_plan(3000, 0, 128)
    assert (plan.new_per_minibatch, plan.replays_per_minibatch, plan.iterations) == (128, 0, 23)
    assert mixing_plan(50, 0, 128).iterations == 1


@pytest.mark.parametrize("n_new, n_mem, mb", [(1, 1500, 128), (300, 3000, 128), (300, 750, 128),
                                              (999, 5, 128), (100, 27, 128), (7, 3, 4)])
def test_minibatches_never_exceed_size_and_use_all_new(n_new, n_mem, mb):
    plan = mixing_plan(n_new, n_mem, mb)
    assert plan.new_per_minibatch + plan.replays_per_minibatch <= mb
    assert plan.replays_per_minibatch <= n_mem
    assert plan.iterations * plan.new_per_minibatch <= n_new
    assert n_new - plan.iterations * plan.new_per_minibatch < plan.new_per_minibatch


@pytest.mark.parametrize("field, value, msg", [("minibatch", 0, "minibatch must be >= 1"),
                                               ("lr", -1.0, "lr must be a positive"),
                                               ("momentum", 1.0, "momentum must be in"),
                                               ("epochs", 2.5, "epochs must be an int")])
def test_bad_config(field, value, msg):
    cfg = TrainerConfig(**{field: value})
    with pytest.raises((ValueError, TypeError), match=msg):
        cfg.validate()


def test_bad_mixing_arguments():
    with pytest.raises(ValueError, match="n_new must be >= 1"):
        mixing_plan(0, 10, 128)
    with pytest.raises(ValueError, match="n_memory must be >= 0"):
        mixing_plan(10, -1, 128)
