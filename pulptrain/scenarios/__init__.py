"""Benchmark streams for continual learning.

``get(name, root=None, **options)`` builds a :class:`Scenario` by name:

- ``"core50-standin"`` (alias ``"standin"``): the CORe50-shaped set generated
  offline from emoji and scikit-image photos (``pulptrain.scenarios.standin``);
- ``"core50"``: the real CORe50 download at ``root`` (``pulptrain.scenarios.core50``);
- ``"fashion-mnist"``: Fashion-MNIST from Debian's ``dataset-fashion-mnist``.

A protocol may be given in the name (``"core50-standin/nicv2_79"``) or as
``protocol=``. ``cumulative(scenario, k)`` gives the joint-training data of the
first ``k`` batches.
"""
from __future__ import annotations

from pulptrain.scenarios.base import Batch, Scenario, cache_dir, cumulative

__all__ = ["get", "names", "canonical", "Scenario", "Batch", "cumulative", "cache_dir"]

_ALIASES = {"core50-standin": "core50-standin", "standin": "core50-standin",
            "core50": "core50", "fashion-mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}


def _builder(name: str):
    if name == "core50-standin":
        from pulptrain.scenarios.standin import build
    elif name == "core50":
        from pulptrain.scenarios.core50 import build
    else:
        from pulptrain.scenarios.fashion_mnist import build
    return build


def names() -> list[str]:
    """The scenario names ``get`` knows."""
    return sorted(set(_ALIASES.values()))


def canonical(name: str) -> str:
    """The scenario a name (with or without ``/protocol``) refers to, e.g.
    ``"standin/nicv2_79"`` -> ``"core50-standin"``; raises for unknown names."""
    base = name.strip().lower().replace("_", "-").partition("/")[0]
    if base not in _ALIASES:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(names())}")
    return _ALIASES[base]


def get(name: str, root=None, **options) -> Scenario:
    """Build the scenario called ``name`` (see the module doc); ``options`` go
    to its builder (``protocol``, ``run``, ``seed``, ``label_level``, ...)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    base, _, protocol = name.strip().lower().replace("_", "-").partition("/")
    if base not in _ALIASES:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(names())}")
    if protocol:
        if "protocol" in options:
            raise ValueError(f"protocol given twice: in the name {name!r} and as protocol=")
        options["protocol"] = protocol
    return _builder(_ALIASES[base])(root=root, **options)
