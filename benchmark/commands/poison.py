"""``irisbench poison``: write one poisoned training split as CSV, to inspect an attack or feed other tools.

It takes exactly the code path of ``irisbench run``: the same split, the same derived
generator, the same attack call. So the rows match seed ``--repeat`` of
``irisbench run --seed S`` at that level.

The CSV has the features, ``target`` (the class after poisoning, what the model trains on),
``original_target`` (the class in the clean split; empty for rows the attack appended) and a
0/1 ``poisoned`` column. ``--out -`` writes it to stdout and the status line to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

from irisbench.errors import UsageError


def _original_labels(y_train, n_rows: int, classes) -> list[str]:
    """The clean class of each returned row: rows are matched by position, appended rows have none.

    An attack that returned fewer rows than it was given cannot be matched row by row, so
    every original label is left empty then.
    """
    if n_rows < len(y_train):
        return [""] * n_rows
    return [classes[i] for i in y_train] + [""] * (n_rows - len(y_train))


def poison_command(args) -> int:
    import pandas as pd

    from irisbench.registry import load_registry
    from irisbench.sinks.files import atomic_write_text
    from irisbench.sinks.terminal import error, stderr, stdout, warn
    from irisbench.schema import TEST_SIZE
    from irisbench.spec import parse_levels, parse_positive_int, parse_ref
    from irisbench.data import check_datasets, load_dataset
    from irisbench.worker import CellError, attack_context, make_split, poison_training_set

    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        warn(warning)
    dataset_ref = parse_ref("dataset", args.dataset, registry)
    attack_ref = parse_ref("attack", args.attack, registry)
    model_ref = parse_ref("model", args.model, registry)
    defense_ref = parse_ref("defense", args.defense, registry)
    levels = parse_levels([args.level])
    if len(levels) != 1:
        raise UsageError(f"--level takes one level, got {args.level!r}")
    level = levels[0]
    root = parse_positive_int("--seed", args.seed, 0)
    repeat = parse_positive_int("--repeat", args.repeat, 0)
    to_stdout = args.out == "-"
    out = Path(args.out)
    if not to_stdout and out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to replace it")
    if not to_stdout and not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")

    check_datasets([dataset_ref], registry)
    X, y, features, classes = load_dataset(dataset_ref.label, dataset_ref.create(registry))
    X_train, _, y_train, _ = make_split(X, y, TEST_SIZE, root, dataset_ref.label, repeat)
    try:
        attack = attack_ref.create(registry)
        # a white-box attack is told the model and defense of the cell it poisons for (--model, --defense)
        context = attack_context(frozenset(attack.knows()) if level > 0 else frozenset(), root, dataset_ref.label,
                                 repeat, model_ref.label, model_ref.create(registry), defense_ref.label,
                                 defense_ref.create(registry))
        X_p, y_p, mask = poison_training_set(X_train, y_train, attack, attack_ref.label, level, len(classes), root,
                                             dataset_ref.label, repeat, context=context)
    except CellError as exc:  # the attack returned something unusable: its failure, not the user's
        error(str(exc))
        return 1  # the plugin failed, not the user (2) or the command (0: written)
    except (Exception, SystemExit) as exc:
        error(" ".join(f"attack {attack_ref.label} failed: {type(exc).__name__}: {exc}".split()))
        return 1

    frame = pd.DataFrame(X_p, columns=features)
    target = "target" if "target" not in frame.columns else "target_class"
    frame[target] = [classes[i] for i in y_p]
    frame[f"original_{target}"] = _original_labels(y_train, len(y_p), classes)
    frame["poisoned"] = mask.astype(int)
    if to_stdout:
        sys.stdout.write(frame.to_csv(index=False))
    else:
        try:
            atomic_write_text(out, frame.to_csv(index=False))
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    (stderr if to_stdout else stdout).print(
        f"wrote {len(frame)} training rows ({int(mask.sum())} poisoned) of {dataset_ref.label} "
        f"under {attack_ref.label} at {level:g} % to {'stdout' if to_stdout else out}")
    return 0
