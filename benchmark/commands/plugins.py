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


def plugins_command(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from irisbench.sinks.terminal import stdout, warn

    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        warn(warning)
    table = Table(title="irisbench plugins")
    for column in ("kind", "name", "description", "parameters", "package"):
        table.add_column(column, overflow="fold")
    for info in registry.all():
        if args.kind and info.kind != args.kind:
            continue
        table.add_row(*(escape(text) for text in (info.kind, info.name, info.cls.description,
                                                   _params(info.cls, args.verbose), info.package)))
    stdout.print(table)
    return 0
