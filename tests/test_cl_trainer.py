"""The latent-replay trainer end to end on a tiny synthetic stream of latents.

Latents are 4x4x8 maps whose class is carried by a class-specific pattern plus
noise; the stream is class-incremental (2 new classes per batch), the setting
where a model without replay forgets."""
import numpy as np
import pytest

from pulptrain import nn
from pulptrain.cl import LatentReplayTrainer, TrainerConfig
from pulptrain.replay import LatentReplayStore

SHAPE = (4, 4, 8)
NUM_CLASSES = 8


def make_stream(seed=0, per_class=60, test_per_class=40):
    rng = np.random.default_rng(seed)
    # the class lives in the channel profile, which survives global pooling
    protos = rng.uniform(0, 4, size=(NUM_CLASSES, 1, 1, SHAPE[2])).astype(np.float32)

    def sample(c, n):
        x = protos[c] + rng.normal(0, 0.6, size=(n,) + SHAPE)
        return np.clip(x, 0, 6).astype(np.float32)

    batches = []
    for first in range(0, NUM_CLASSES, 2):
        xs = np.concatenate([sample(c, per_class) for c in (first, first + 1)])
        ys = np.repeat([first, first + 1], per_class)
        order = rng.permutation(len(ys))
        batches.append((xs[order], ys[order]))
    tx = np.concatenate([sample(c, test_per_class) for c in range(NUM_CLASSES)])
    ty = np.repeat(np.arange(NUM_CLASSES), test_per_class)
    return batches, tx, ty


def make_model(seed):
    rng = np.random.default_rng(seed)
    return nn.Sequential(("pw", nn.PointwiseConv2d(8, 16, rng=rng)), ("relu", nn.ReLU6()),
                         ("pool", nn.GlobalAvgPool()), ("fc", nn.Linear(16, NUM_CLASSES, rng=rng)))


def make_trainer(replay=True, seed=0, bits=8):
    cfg = TrainerConfig(minibatch=32, epochs_first=8, epochs=8, lr_first=0.05, lr=0.05,
                        replay=replay, seed=seed)
    store = LatentReplayStore(120, SHAPE, bits=bits, value_range=(0.0, 6.0), seed=seed) if replay else None
    return LatentReplayTrainer(make_model(seed), NUM_CLASSES, store=store, config=cfg)


def run(trainer, batches):
    return [trainer.train_batch(x, y) for x, y in batches]


def test_learns_with_replay_and_forgets_without():
    batches, tx, ty = make_stream()
    with_replay, without = make_trainer(True), make_trainer(False)
    run(with_replay, batches)
    run(without, batches)
    acc_replay = with_replay.evaluate(tx, ty)
    acc_none = without.evaluate(tx, ty)
    # accuracy on the first task's classes after the whole stream
    first = ty < 2
    old_replay = np.mean(with_replay.predict(tx[first]) == ty[first])
    old_none = np.mean(without.predict(tx[first]) == ty[first])
    assert acc_replay > 0.6, f"replay run reached only {acc_replay:.2f} (chance 0.125)"
    assert old_none < 0.2, f"no-replay run kept {old_none:.2f} on the first classes: no forgetting?"
    assert old_replay > old_none + 0.4
    assert acc_replay > acc_none + 0.2


def test_mixing_and_schedule_are_applied():
    batches, _, _ = make_stream()
    trainer = make_trainer(True)
    lrs = []
    original_step = trainer.optimizer.step

    def step():
        lrs.append(trainer.optimizer.lr)
        original_step()

    trainer.optimizer.step = step
    trainer.config.lr = 0.01
    stats = run(trainer, batches[:2])
    assert stats[0]["replays_per_minibatch"] == 0 and stats[0]["new_per_minibatch"] == 32
    assert stats[0]["minibatches"] == 8 * (120 // 32)
    # batch 1: 120 new, 120 in memory, minibatch 32 -> 120 // (240 // 32) = 17 new + 15 replays
    assert (stats[1]["new_per_minibatch"], stats[1]["replays_per_minibatch"]) == (17, 15)
    assert stats[1]["minibatches"] == 8 * (120 // 17)
    assert set(lrs[:stats[0]["minibatches"]]) == {0.05}
    assert set(lrs[stats[0]["minibatches"]:]) == {0.01}
    assert len(trainer.store) == 120


def test_same_seed_same_numbers_any_thread_count():
    import pulptrain

    batches, tx, ty = make_stream()
    results = []
    for threads in (1, 3):
        pulptrain.set_num_threads(threads)
        t = make_trainer(True, seed=3)
        run(t, batches[:3])
        results.append((t.adaptive.state_dict(), t.store.labels.copy()))
    (w1, l1), (w2, l2) = results
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert np.array_equal(l1, l2)


def test_divergence_stops_with_a_clear_error():
    batches, _, _ = make_stream()
    trainer = make_trainer(False)
    trainer.config.lr_first = 1e30
    with pytest.raises(FloatingPointError, match="diverged on batch 0"):
        trainer.train_batch(*batches[0])


@pytest.mark.parametrize("labels, exc, msg", [
    (np.full(120, 9), ValueError, "labels must lie in"),
    (np.zeros(3, np.int64), ValueError, "labels must have shape"),
    (np.zeros(120, np.float32), TypeError, "labels must be integers"),
])
def test_bad_batches(labels, exc, msg):
    batches, _, _ = make_stream()
    with pytest.raises(exc, match=msg):
        make_trainer().train_batch(batches[0][0], labels)


def test_cumulative_bound_trains_jointly_and_beats_the_stream():
    batches, tx, ty = make_stream()
    cfg = TrainerConfig(minibatch=32, epochs_first=8, lr_first=0.05, replay=False, cumulative=True,
                        joint_epochs=8, seed=0)
    joint = LatentReplayTrainer(make_model(0), NUM_CLASSES, config=cfg)
    stats = joint.train_joint(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]))
    assert stats["minibatches"] == 8 * (sum(len(y) for _, y in batches) // 32)
    without = make_trainer(False)
    run(without, batches)
    acc_joint, acc_none = joint.evaluate(tx, ty), without.evaluate(tx, ty)
    assert acc_joint > 0.9, f"joint training reached only {acc_joint:.2f}"
    assert acc_joint > acc_none + 0.3
    with pytest.raises(ValueError, match="replay=False"):
        TrainerConfig(replay=True, cumulative=True).validate()
