"""``irisbench plugins``: what is installed, with parameters and provenance."""

from __future__ import annotations

from irisbench.registry import load_registry


def _params(cls, verbose: bool) -> str:
    if not cls.params:
        return "-"
    if verbose:
        return "\n".join(f"{p.name}: {p.type.__name__} = {p.default!r}  ({p.describe_range()}) {p.help}"
                         for p in cls.params)
    return ", ".join(f"{p.name}={p.default!r}" for p in cls.params)


def _description(info) -> str:
    """The plugin's description; for an attack, also its threat model (with default parameters)."""
    if info.kind != "attack":
        return info.cls.description
    try:
        threat = info.cls().threat_model()
    except Exception:  # noqa: BLE001 - a third-party attack that cannot be built with its defaults
        threat = getattr(info.cls, "threat", None)
    return f"{info.cls.description}\nthreat model: {threat if threat is not None else 'not declared'}"


def plugins_command(args) -> int:
    from rich.markup import escape

    from irisbench.sinks.terminal import fit_table, stdout, warn

    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        warn(warning)
    headers = ["kind", "name", "description", "parameters", "package"]
    rows = [[escape(text) for text in (info.kind, info.name, _description(info),
                                       _params(info.cls, args.verbose), info.package)]
            for info in registry.all() if not args.kind or info.kind == args.kind]
    for renderable in fit_table("irisbench plugins", headers, rows, keys=2, width=stdout.width,
                                wrap={"description", "parameters"}):
        stdout.print(renderable)
    return 0
