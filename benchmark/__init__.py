"""irisbench: how much does poisoned training data hurt a model, and which defenses help?

Plugin authors need only this module::

    from irisbench import hookimpl, Attack, Defense, Model, Dataset, Param
"""

import pluggy

from irisbench.api import Attack, Dataset, Defense, LoadedData, Model, Param, poison_count

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("irisbench")

__all__ = [
    "Attack",
    "Dataset",
    "Defense",
    "LoadedData",
    "Model",
    "Param",
    "__version__",
    "hookimpl",
    "poison_count",
]
