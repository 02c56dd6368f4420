"""The hooks a plugin implements. Each returns a list of plugin classes (datasette style)."""

import pluggy

hookspec = pluggy.HookspecMarker("irisbench")


@hookspec
def irisbench_register_attacks():
    """Return a list of :class:`irisbench.Attack` subclasses."""


@hookspec
def irisbench_register_defenses():
    """Return a list of :class:`irisbench.Defense` subclasses."""


@hookspec
def irisbench_register_models():
    """Return a list of :class:`irisbench.Model` subclasses."""


@hookspec
def irisbench_register_datasets():
    """Return a list of :class:`irisbench.Dataset` subclasses."""


@hookspec
def irisbench_register_sinks():
    """Return a list of :class:`irisbench.Sink` subclasses (output formats)."""
