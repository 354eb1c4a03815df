"""Replacement policies of the latent-replay store and the small seeded PRNG
whose state is saved with it.

A policy turns (new labels, store labels, batch index) into a plan: a list of
(row of the new batch, slot to write), in order; a later pair for the same
slot wins. Policies only draw random numbers through a ``draws`` object with
``below(n)`` (uniform int in [0, n)) and ``sample(n, k)`` (k distinct ints of
[0, n) in draw order), so the same rule runs on the store's own generator or
on a caller's ``numpy.random.Generator``."""
from __future__ import annotations

import numpy as np

POLICIES = ("ar1", "reservoir", "class_balanced")
_MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea and Flood 2014): one 64-bit word of state."""

    def __init__(self, state: int):
        self.state = int(state) & _MASK64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in [0, n) without modulo bias (rejection of the last partial block)."""
        if n <= 0:
            raise ValueError(f"n must be >= 1, got {n}")
        limit = ((1 << 64) // n) * n
        while True:
            v = self.next_u64()
            if v < limit:
                return v % n

    def sample(self, n: int, k: int) -> list[int]:
        """k distinct values of [0, n): the first k steps of a Fisher-Yates shuffle."""
        if not 0 <= k <= n:
            raise ValueError(f"cannot draw {k} distinct values from {n}")
        moved: dict[int, int] = {}
        out = []
        for i in range(k):
            j = i + self.below(n - i)
            out.append(moved.get(j, j))
            moved[j] = moved.get(i, i)
        return out


class NumpyDraws:
    """The draws interface on a caller's numpy Generator."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def below(self, n: int) -> int:
        return int(self.generator.integers(n))

    def sample(self, n: int, k: int) -> list[int]:
        if k == 0:
            return []
        return [int(v) for v in self.generator.choice(n, size=k, replace=False)]


def ar1_plan(draws, store_labels: np.ndarray, n_new: int, batch_index: int) -> list[tuple[int, int]]:
    """AR1 / Latent Replay rule: h = min(M // (i + 1), n_new) random new latents
    go to empty slots (ascending) first, then overwrite random slots that were
    filled before this batch."""
    capacity = len(store_labels)
    h = min(capacity // (batch_index + 1), n_new)
    rows = draws.sample(n_new, h)
    empty = np.flatnonzero(store_labels < 0)
    filled = np.flatnonzero(store_labels >= 0)
    fill = min(len(empty), h)
    targets = [int(s) for s in empty[:fill]]
    targets += [int(filled[p]) for p in draws.sample(len(filled), h - fill)]
    return list(zip(rows, targets))


def reservoir_plan(draws, store_labels: np.ndarray, new_labels: np.ndarray,
                   state: dict) -> list[tuple[int, int]]:
    """Reservoir sampling (Vitter's algorithm R): every latent seen so far is
    in the store with equal probability. state["seen"] counts them."""
    capacity = len(store_labels)
    empty = list(np.flatnonzero(store_labels < 0))
    plan = []
    for row in range(len(new_labels)):
        state["seen"] += 1
        if empty:
            plan.append((row, int(empty.pop(0))))
            continue
        j = draws.below(state["seen"])
        if j < capacity:
            plan.append((row, j))
    return plan


def class_balanced_plan(draws, store_labels: np.ndarray, new_labels: np.ndarray,
                        state: dict) -> list[tuple[int, int]]:
    """Class-balancing reservoir (Chrysakis and Moens, ICML 2020). While the
    store has room every latent goes in. Then a latent of a class that is not
    among the largest in the store replaces a random latent of one of the
    largest classes (picked at random among ties, in ascending label order);
    a latent of a largest class c replaces a random latent of its own class
    with probability stored_c / seen_c. state["seen_per_class"] maps a label
    (as a string, for JSON) to the latents of that class seen so far."""
    labels = store_labels.copy()
    seen = state["seen_per_class"]
    empty = list(np.flatnonzero(labels < 0))
    plan = []
    for row, y in enumerate(int(v) for v in new_labels):
        seen[str(y)] = seen.get(str(y), 0) + 1
        if empty:
            slot = int(empty.pop(0))
        else:
            classes, counts = np.unique(labels, return_counts=True)
            largest = classes[counts == counts.max()]
            if y not in largest:
                victim_class = int(largest[draws.below(len(largest))])
            else:
                stored = int(counts[classes == y][0])
                if draws.below(seen[str(y)]) >= stored:
                    continue
                victim_class = y
            members = np.flatnonzero(labels == victim_class)
            slot = int(members[draws.below(len(members))])
        labels[slot] = y
        plan.append((row, slot))
    return plan


def initial_state(policy: str) -> dict:
    return {"ar1": {}, "reservoir": {"seen": 0}, "class_balanced": {"seen_per_class": {}}}[policy]


def check_state(policy: str, state) -> dict:
    """Validate a policy state read from a file; ValueError when malformed."""
    if not isinstance(state, dict):
        raise ValueError("policy state must be an object")
    if policy == "ar1":
        if state:
            raise ValueError("the ar1 policy keeps no state")
    elif policy == "reservoir":
        seen = state.get("seen")
        if set(state) != {"seen"} or type(seen) is not int or seen < 0:
            raise ValueError("reservoir state must be {'seen': int >= 0}")
    else:
        per_class = state.get("seen_per_class")
        if set(state) != {"seen_per_class"} or not isinstance(per_class, dict):
            raise ValueError("class_balanced state must be {'seen_per_class': {...}}")
        for key, value in per_class.items():
            if not (key.isascii() and key.isdigit() and type(value) is int and value >= 0):
                raise ValueError(f"bad class count {key!r}: {value!r}")
    return state


def dedupe_plan(plan: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, slots) with one entry per slot: the last write to a slot wins."""
    last: dict[int, int] = {}
    for row, slot in plan:
        last.pop(slot, None)
        last[slot] = row
    slots = np.fromiter(last.keys(), dtype=np.int64, count=len(last))
    rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    return rows, slots
