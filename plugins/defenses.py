"""The baseline defense: none. The others live in one module per family."""

from irisbench import Defense, hookimpl


class NoDefense(Defense):
    """The baseline: train on whatever data arrives."""

    name = "none"
    family = "none"
    description = "No defense: train on the (possibly poisoned) training set as is"


@hookimpl
def irisbench_register_defenses():
    return [NoDefense]
