"""irisbench: how much does poisoned training data hurt a model, and which defenses help?

Notebooks and scripts run a grid with ``irisbench.run(attack="gaussian", seeds=5)``.
Plugin authors need only this module (and ``irisbench.testing`` in their tests)::

    from irisbench import hookimpl, Attack, Defense, Model, Dataset, Sink, Param, LoadedData, UsageError, poison_count
"""

import pluggy

from irisbench.api import (Attack, AttackContext, Dataset, Defense, LoadedData, Model, Param, Plugin, Sink, ThreatModel,
                           poison_count)
from irisbench.domain import DOMAIN_PARAM, FeatureDomain, keep_in_domain
from irisbench.errors import UsageError
from irisbench.runner import run
from irisbench.schema import TEST_SIZE

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("irisbench")

__all__ = [
    "DOMAIN_PARAM",
    "TEST_SIZE",
    "Attack",
    "AttackContext",
    "Dataset",
    "Defense",
    "FeatureDomain",
    "LoadedData",
    "Model",
    "Param",
    "Plugin",
    "Sink",
    "ThreatModel",
    "UsageError",
    "__version__",
    "hookimpl",
    "keep_in_domain",
    "poison_count",
    "run",
]
