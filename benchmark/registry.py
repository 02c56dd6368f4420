"""Plugin discovery: built-ins and third-party entry points through the same pluggy hooks."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from irisbench import hookspecs
from irisbench.api import KINDS, Plugin, contract_problem, did_you_mean
from irisbench.errors import UsageError, describe_exception

ENTRY_POINT_GROUP = "irisbench"
#: Set to 1 to skip third-party entry points (hermetic tests, debugging).
DISABLE_AUTOLOAD_ENV = "IRISBENCH_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_MODULES = (
    "irisbench.plugins.datasets",
    "irisbench.plugins.csv_dataset",
    "irisbench.plugins.attacks",
    "irisbench.plugins.flip_attacks",
    "irisbench.plugins.greedy_flip",
    "irisbench.plugins.injection",
    "irisbench.plugins.gradient_poison",
    "irisbench.plugins.defenses",
    "irisbench.plugins.outlier_filters",
    "irisbench.plugins.label_cleaning",
    "irisbench.plugins.ensembles",
    "irisbench.plugins.adversarial",
    "irisbench.plugins.models",
    "irisbench.sinks.builtin",
)

HOOKS = {
    "attack": "irisbench_register_attacks",
    "defense": "irisbench_register_defenses",
    "model": "irisbench_register_models",
    "dataset": "irisbench_register_datasets",
    "sink": "irisbench_register_sinks",
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
            raise UsageError(f"unknown {kind} {name!r}; {did_you_mean(name, self.plugins[kind])}"
                             f"valid {kind}s: {valid}") from None

    def create(self, kind: str, name: str, params: dict | None = None) -> Plugin:
        """Instantiate a plugin with validated parameters (UsageError on bad ones)."""
        return self.get(kind, name).cls(**(params or {}))

    def all(self):
        for kind in KINDS:
            yield from self.plugins[kind].values()

    def _add(self, kind: str, cls, package: str) -> None:
        try:
            problem = contract_problem(cls, KINDS[kind])
        except Exception as exc:  # noqa: BLE001 - a class so odd that inspecting it raises
            problem = f"{cls!r} cannot be inspected: {describe_exception(exc)}"
        if problem:
            self.warnings.append(f"{package}: {HOOKS[kind]}: {problem}; skipped")
            return
        existing = self.plugins[kind].get(cls.name)
        if existing is not None:
            self.warnings.append(
                f"{package}: {kind} {cls.name!r} is already provided by {existing.package}; skipped"
            )
            return
        self.plugins[kind][cls.name] = PluginInfo(kind, cls.name, cls, package)


def _import_file(path: Path):
    """Import one plugin file; on failure leave no half-imported module behind."""
    name = f"irisbench_folder_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    for pickler in ("joblib.externals.cloudpickle", "cloudpickle"):
        try:
            importlib.import_module(pickler).register_pickle_by_value(module)
        except ImportError:
            pass
    return module


def load_folder_plugins(folder: str | Path) -> tuple[list[tuple[str, object]], list[str]]:
    """Import every ``*.py`` module of a folder the user named (``--plugins-dir``).

    Nothing is ever imported from a folder implicitly. Returns the modules that imported and
    one warning per file that did not (a syntax error, an exception or ``sys.exit`` at import),
    so that one broken file never hides the good ones beside it. The modules are registered with
    cloudpickle to travel by value, so worker processes (loky, Dask) need not import them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--plugins-dir {folder} is not a folder")
    modules, warnings = [], []
    for path in sorted(folder.glob("*.py")):
        try:
            modules.append((str(path), _import_file(path)))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit included: a plugin never ends the command
            warnings.append(f"plugin file {path} failed to load: {describe_exception(exc)}; skipped")
    return modules, warnings


def _register(pm: pluggy.PluginManager, plugin, name: str, package: str, warnings: list[str]) -> bool:
    """Register one plugin module; a hook with the wrong signature skips it with a warning."""
    if pm.is_registered(plugin):  # two entry points naming one module: it is loaded once
        return False
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy's PluginValidationError, or a module pluggy cannot inspect
        warnings.append(f"{package}: {describe_exception(exc)}; skipped")
        return False
    for attr in dir(plugin):
        if attr.startswith("irisbench_") and inspect.isfunction(getattr(plugin, attr, None)) \
                and pm.parse_hookimpl_opts(plugin, attr) is None:
            warnings.append(f"{package}: {attr}() is not marked @hookimpl (from irisbench import hookimpl); "
                            "ignored")
    return True


def _unknown_hooks(pm: pluggy.PluginManager, packages: dict[object, str]) -> list[str]:
    """A warning per hook implementation that no hookspec declares (a misspelt hook name).

    pluggy's ``check_pending()`` says whether there is any; it stops at the first, so the
    warnings list every one from each plugin's hook callers.
    """
    try:
        pm.check_pending()
        return []
    except pluggy.PluginValidationError:
        pass
    warnings = []
    for name, plugin in pm.list_name_plugin():
        for caller in pm.get_hookcallers(plugin) or []:
            if not caller.has_spec() and any(impl.plugin is plugin and not impl.optionalhook
                                             for impl in caller.get_hookimpls()):
                warnings.append(f"{packages.get(plugin, name)}: {caller.name} is not an irisbench hook; "
                                f"{did_you_mean(caller.name, HOOKS.values())}ignored")
    return warnings


def _load_entry_point(ep, pm: pluggy.PluginManager, packages: dict, warnings: list[str]) -> None:
    dist = ep.dist.name if ep.dist is not None else None
    # Distribution-qualified: two packages that both call their entry point "plugins" both load.
    name = f"{dist}:{ep.name}" if dist else ep.value
    if pm.get_plugin(name) is not None or pm.is_blocked(name):
        return
    try:
        plugin = ep.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken plugin, even one calling sys.exit, must not break the others
        warnings.append(f"plugin {ep.name!r} from {dist or ep.value} failed to load: {describe_exception(exc)}")
        return
    if _register(pm, plugin, name, dist or ep.value, warnings):
        packages[plugin] = dist or ep.value


def plugin_manager(autoload: bool | None = None, plugin_dirs=()) -> tuple[pluggy.PluginManager, dict[object, str], list[str]]:
    """Register the built-ins, then the named plugin folders, then (unless disabled) every
    ``irisbench`` entry point.

    Returns the manager, the package name of each registered plugin object and the
    warnings about plugins that failed to import or declare their hooks wrongly (those are skipped).
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
        found, failed = load_folder_plugins(folder)
        warnings.extend(failed)
        for path, module in found:
            if _register(pm, module, f"folder:{path}", f"folder {path}", warnings):
                packages[module] = f"folder {path}"
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(ep, pm, packages, warnings)
    warnings.extend(_unknown_hooks(pm, packages))
    return pm, packages, warnings


def load_registry(autoload: bool | None = None, plugin_dirs=()) -> Registry:
    """Discover every plugin. Each hook implementation is called on its own, so one that
    raises or returns something other than a list is reported and skipped while the others
    still register."""
    pm, packages, warnings = plugin_manager(autoload, plugin_dirs or ())
    registry = Registry(warnings=warnings)
    # Registration order, whatever tryfirst/trylast a plugin asks for: built-ins win name clashes.
    order = {plugin: i for i, (_, plugin) in enumerate(pm.list_name_plugin())}
    for kind, hook_name in HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in sorted(hook.get_hookimpls(), key=lambda impl: order[impl.plugin]):
            package = packages.get(impl.plugin, impl.plugin_name)
            try:
                classes = impl.function()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit included
                registry.warnings.append(f"{package}: {hook_name} raised {describe_exception(exc)}; skipped")
                continue
            if classes is None:
                continue
            if not isinstance(classes, (list, tuple)):
                registry.warnings.append(f"{package}: {hook_name} returned {classes!r}, not a list of "
                                         f"classes (return [{getattr(classes, '__name__', '...')}]); skipped")
                continue
            for cls in classes:
                registry._add(kind, cls, package)
    return registry
