"""Plugin discovery: built-ins and third-party entry points through the same pluggy hooks."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from irisbench import hookspecs
from irisbench.api import KINDS, Plugin
from irisbench.errors import UsageError

ENTRY_POINT_GROUP = "irisbench"
#: Set to 1 to skip third-party entry points (hermetic tests, debugging).
DISABLE_AUTOLOAD_ENV = "IRISBENCH_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_MODULES = (
    "irisbench.plugins.datasets",
    "irisbench.plugins.csv_dataset",
    "irisbench.plugins.attacks",
    "irisbench.plugins.flip_attacks",
    "irisbench.plugins.injection",
    "irisbench.plugins.defenses",
    "irisbench.plugins.outlier_filters",
    "irisbench.plugins.label_cleaning",
    "irisbench.plugins.ensembles",
    "irisbench.plugins.adversarial",
    "irisbench.plugins.models",
)

HOOKS = {
    "attack": "irisbench_register_attacks",
    "defense": "irisbench_register_defenses",
    "model": "irisbench_register_models",
    "dataset": "irisbench_register_datasets",
}


@dataclass(frozen=True)
class PluginInfo:
    """A discovered plugin class and the distribution it came from."""

    kind: str
    name: str
    cls: type[Plugin]
    package: str


@dataclass
class Registry:
    """All plugins by kind and name, plus warnings about plugins that could not load."""

    plugins: dict[str, dict[str, PluginInfo]] = field(default_factory=lambda: {k: {} for k in KINDS})
    warnings: list[str] = field(default_factory=list)

    def get(self, kind: str, name: str) -> PluginInfo:
        try:
            return self.plugins[kind][name]
        except KeyError:
            valid = ", ".join(sorted(self.plugins[kind])) or "none installed"
            raise UsageError(f"unknown {kind} {name!r}; valid {kind}s: {valid}") from None

    def create(self, kind: str, name: str, params: dict | None = None) -> Plugin:
        """Instantiate a plugin with validated parameters (UsageError on bad ones)."""
        return self.get(kind, name).cls(**(params or {}))

    def all(self):
        for kind in KINDS:
            yield from self.plugins[kind].values()

    def _add(self, kind: str, cls, package: str) -> None:
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base) and cls.name):
            self.warnings.append(
                f"{package}: {HOOKS[kind]} returned {cls!r}, not a named {base.__name__} subclass; skipped"
            )
            return
        existing = self.plugins[kind].get(cls.name)
        if existing is not None:
            self.warnings.append(
                f"{package}: {kind} {cls.name!r} is already provided by {existing.package}; skipped"
            )
            return
        self.plugins[kind][cls.name] = PluginInfo(kind, cls.name, cls, package)


def load_folder_plugins(folder: str | Path) -> list[tuple[str, object]]:
    """Import every ``*.py`` module of a folder the user named (``--plugins-dir``).

    Nothing is ever imported from a folder implicitly. The modules are registered with
    cloudpickle to travel by value, so worker processes (loky, Dask) need not import them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--plugins-dir {folder} is not a folder")
    modules = []
    for path in sorted(folder.glob("*.py")):
        name = f"irisbench_folder_plugins.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        for pickler in ("joblib.externals.cloudpickle", "cloudpickle"):
            try:
                importlib.import_module(pickler).register_pickle_by_value(module)
            except ImportError:
                pass
        modules.append((str(path), module))
    return modules


def plugin_manager(autoload: bool | None = None, plugin_dirs=()) -> tuple[pluggy.PluginManager, dict[object, str], list[str]]:
    """Register the built-ins, then the named plugin folders, then (unless disabled) every
    ``irisbench`` entry point.

    Returns the manager, the package name of each registered plugin object and the
    warnings about entry points that failed to import (those are skipped).
    """
    pm = pluggy.PluginManager("irisbench")
    pm.add_hookspecs(hookspecs)
    packages: dict[object, str] = {}
    warnings: list[str] = []
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        packages[module] = "irisbench"
    for folder in plugin_dirs:
        try:
            found = load_folder_plugins(folder)
        except UsageError:
            raise
        except Exception as exc:  # a broken file is reported like a broken entry point
            warnings.append(f"plugin folder {folder} failed to load: {type(exc).__name__}: {exc}")
            continue
        for path, module in found:
            pm.register(module, name=f"folder:{path}")
            packages[module] = f"folder {path}"
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "?"
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                warnings.append(f"plugin {ep.name!r} from {dist} failed to load: {type(exc).__name__}: {exc}")
                continue
            packages[plugin] = dist
    return pm, packages, warnings


def load_registry(autoload: bool | None = None, plugin_dirs=()) -> Registry:
    """Discover every plugin. Each hook implementation is called on its own, so one that
    raises is reported and skipped while the others still register."""
    pm, packages, warnings = plugin_manager(autoload, plugin_dirs or ())
    registry = Registry(warnings=warnings)
    for kind, hook_name in HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        # get_hookimpls() is in registration order: built-ins first, so they win name clashes.
        for impl in hook.get_hookimpls():
            package = packages.get(impl.plugin, impl.plugin_name)
            try:
                classes = impl.function() or []
            except Exception as exc:
                registry.warnings.append(f"{package}: {hook_name} raised {type(exc).__name__}: {exc}; skipped")
                continue
            for cls in classes:
                registry._add(kind, cls, package)
    return registry
