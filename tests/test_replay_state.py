"""The store's replacement policies against a small, literal Python model of
each rule (Hypothesis stateful testing): random sequences of policy updates,
inserts into free slots and save / load round trips must keep the store's
slots, labels, batch indices and values equal to the model's."""
import shutil
import tempfile
from collections import Counter

import numpy as np
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pulptrain._replay_policy import SplitMix64
from pulptrain.replay import LatentReplayStore

SHAPE = (2, 3)


def test_splitmix64_reference_vector():
    """First outputs for seed 1234567 of Vigna's reference splitmix64.c."""
    r = SplitMix64(1234567)
    assert [r.next_u64() for _ in range(3)] == [6457827717110365317, 3203168211198807973,
                                                9817491932198370423]


def test_splitmix64_sample_is_uniform_without_repeats():
    r = SplitMix64(9)
    counts = Counter()
    for _ in range(3000):
        s = r.sample(6, 3)
        assert len(set(s)) == 3 and all(0 <= v < 6 for v in s)
        counts.update(s)
    assert max(counts.values()) - min(counts.values()) < 300   # each ~1500


class ModelStore:
    """Each policy written the plain way: dicts, lists and loops."""

    def __init__(self, capacity, policy, seed):
        self.capacity = capacity
        self.policy = policy
        self.rng = SplitMix64(seed)
        self.slots = {}               # slot -> (latent, label, batch index)
        self.seen = 0
        self.seen_per_class = Counter()

    def empties(self):
        return [s for s in range(self.capacity) if s not in self.slots]

    def update(self, latents, labels, batch_index):
        n = len(labels)
        if self.policy == "ar1":
            h = min(self.capacity // (batch_index + 1), n)
            rows = self.rng.sample(n, h)
            targets = self.empties()[:h]
            filled_before = sorted(self.slots)
            picks = self.rng.sample(len(filled_before), h - len(targets))
            targets += [filled_before[p] for p in picks]
            for row, slot in zip(rows, targets):
                self.slots[slot] = (latents[row], labels[row], batch_index)
            return
        for row in range(n):
            y = int(labels[row])
            self.seen += 1
            self.seen_per_class[y] += 1
            empties = self.empties()
            if empties:
                slot = empties[0]
            elif self.policy == "reservoir":
                slot = self.rng.below(self.seen)
                if slot >= self.capacity:
                    continue
            else:
                counts = Counter(label for _, label, _ in self.slots.values())
                most = max(counts.values())
                largest = sorted(c for c in counts if counts[c] == most)
                if y not in largest:
                    victim = largest[self.rng.below(len(largest))]
                elif self.rng.below(self.seen_per_class[y]) < counts[y]:
                    victim = y
                else:
                    continue
                members = sorted(s for s, (_, label, _) in self.slots.items() if label == victim)
                slot = members[self.rng.below(len(members))]
            self.slots[slot] = (latents[row], y, batch_index)

    def insert(self, latents, labels):
        for row, slot in enumerate(self.empties()[:len(labels)]):
            self.slots[slot] = (latents[row], int(labels[row]), -1)


class StoreMachine(RuleBasedStateMachine):
    @initialize(policy=st.sampled_from(["ar1", "reservoir", "class_balanced"]),
                bits=st.integers(1, 8), capacity=st.integers(1, 12), seed=st.integers(0, 2**64 - 1))
    def start(self, policy, bits, capacity, seed):
        qmax = (1 << bits) - 1
        self.qmax = qmax
        # scale 1, zero point 0: integer latents in [0, qmax] are stored exactly
        self.store = LatentReplayStore(capacity, SHAPE, bits, value_range=(0, qmax), policy=policy, seed=seed)
        self.model = ModelStore(capacity, policy, seed)
        self.batches = 0
        self.dir = tempfile.mkdtemp()

    def teardown(self):
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def batch(self, n, seed, classes):
        gen = np.random.default_rng(seed)
        latents = gen.integers(0, self.qmax + 1, (n,) + SHAPE).astype(np.float32)
        return latents, gen.integers(0, classes, n)

    @rule(n=st.integers(1, 8), seed=st.integers(0, 2**32 - 1), classes=st.integers(1, 4))
    def update(self, n, seed, classes):
        latents, labels = self.batch(n, seed, classes)
        self.store.update(latents, labels, self.batches)
        self.model.update(latents, labels, self.batches)
        self.batches += 1

    @rule(n=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
    def insert_free(self, n, seed):
        latents, labels = self.batch(n, seed, 4)
        if len(self.model.empties()) < n:
            return
        self.store.insert(latents, labels)
        self.model.insert(latents, labels)

    @rule()
    def save_and_load(self):
        path = f"{self.dir}/store.lrs"
        self.store.save(path)
        self.store = LatentReplayStore.load(path)

    @invariant()
    def matches_model(self):
        store, model = self.store, self.model
        assert len(store) == len(model.slots)
        expect_labels = [model.slots[s][1] if s in model.slots else -1 for s in range(model.capacity)]
        expect_batches = [model.slots[s][2] if s in model.slots else -1 for s in range(model.capacity)]
        assert store.labels.tolist() == expect_labels
        assert store.batch_indices.tolist() == expect_batches
        filled = sorted(model.slots)
        if filled:
            latents, labels = store.gather(filled)
            assert np.array_equal(latents, np.stack([model.slots[s][0] for s in filled]))
            assert labels.tolist() == [model.slots[s][1] for s in filled]


StoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestStoreMachine = StoreMachine.TestCase
