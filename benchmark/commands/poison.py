"""``irisbench poison``: write one poisoned training split as CSV, to inspect an attack or feed other tools.

It takes exactly the code path of ``irisbench run``: the same split, the same derived
generator, the same attack call. So the rows match seed ``--repeat`` of
``irisbench run --seed S`` at that level.
"""

from __future__ import annotations

from pathlib import Path

from irisbench.errors import UsageError


def poison_command(args) -> int:
    import pandas as pd

    from irisbench.registry import load_registry
    from irisbench.sinks.files import atomic_write_text
    from irisbench.sinks.terminal import stdout, warn
    from irisbench.spec import TEST_SIZE, parse_levels, parse_positive_int, parse_ref
    from irisbench.worker import CellError, check_datasets, load_dataset, make_split, poison_training_set

    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        warn(warning)
    dataset_ref = parse_ref("dataset", args.dataset, registry)
    attack_ref = parse_ref("attack", args.attack, registry)
    levels = parse_levels([args.level])
    if len(levels) != 1:
        raise UsageError(f"--level takes one level, got {args.level!r}")
    level = levels[0]
    root = parse_positive_int("--seed", args.seed, 0)
    repeat = parse_positive_int("--repeat", args.repeat, 0)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")

    check_datasets([dataset_ref], registry)
    X, y, features, classes = load_dataset(dataset_ref.label, dataset_ref.create(registry))
    X_train, _, y_train, _ = make_split(X, y, TEST_SIZE, root, dataset_ref.label, repeat)
    try:
        X_p, y_p, mask = poison_training_set(X_train, y_train, attack_ref.create(registry), attack_ref.label,
                                             level, len(classes), root, dataset_ref.label, repeat)
    except CellError as exc:
        raise UsageError(str(exc)) from None

    frame = pd.DataFrame(X_p, columns=features)
    target = "target" if "target" not in frame.columns else "target_class"
    frame[target] = [classes[i] for i in y_p]
    frame["poisoned"] = mask.astype(int)
    try:
        atomic_write_text(out, frame.to_csv(index=False))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    stdout.print(f"wrote {len(frame)} training rows ({int(mask.sum())} poisoned) of {dataset_ref.label} "
                 f"under {attack_ref.label} at {level:g} % to {out}")
    return 0
