"""How the analysis report writes numbers, intervals, tables, labels and commands.

Numbers use :mod:`irisbench.schema` (``fmt``); tables are :func:`irisbench.render.markdown_table`.
"""

from __future__ import annotations

import shlex

from irisbench.record import RunRecord
from irisbench.render import markdown_table
from irisbench.schema import CONFIG_COLUMNS, config_label, fmt, interval_digits, level_text, p_text

#: Longest table printed in the report; longer ones are cut with a note pointing to the CSV.
MAX_TABLE_ROWS = 40
#: Most significant comparisons listed by name per defense.
MAX_LISTED = 8


def metric_label(t) -> str:
    """What the tables ``t`` are about, in words: ``accuracy``, ``attack success rate`` (``--metric``)."""
    from irisbench.schema import metric

    return metric(t.metric).label


def drop_meaning(t) -> str:
    """What a drop is for the metric of ``t``: oriented so that a positive drop is always harm."""
    from irisbench.schema import metric

    name = metric_label(t)
    if metric(t.metric).higher_is_better:
        return (f"Drop = {name} at level 0 minus {name} at the level, per seed on the same split (paired), then "
                f"averaged; a positive drop means lower {name} under poisoning.")
    return (f"Lower {name} is better, so the drop is its rise: {name} at the level minus {name} at level 0, per "
            f"seed on the same split (paired), then averaged; a positive drop means higher {name} under poisoning.")


def difference_meaning(t) -> str:
    """What a defense's difference is for the metric of ``t``: oriented so that positive always means it helped."""
    from irisbench.schema import metric

    name = metric_label(t)
    if metric(t.metric).higher_is_better:
        return (f"Difference = {name} with the defense minus {name} without it (defense 'none'), per seed on "
                "the same split and poisoned training set, then averaged; positive = the defense helped.")
    return (f"Lower {name} is better, so difference = {name} without the defense (defense 'none') minus {name} "
            "with it, per seed on the same split and poisoned training set, then averaged; positive = the defense "
            "helped.")


def ci(low, high) -> str:
    """``[0.941, 0.965]``: an interval on its own (a table column beside its mean), in the decimals it
    supports (:func:`irisbench.schema.interval_digits`)."""
    digits = interval_digits(low, high)
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def mean_beside(mean, low, high) -> str:
    """A mean in a table column beside its :func:`ci`, in the same decimals."""
    return fmt(mean, interval_digits(low, high))


def holm_note(verdict: str, p_holm, not_testable: str) -> str:
    """``, Holm-adjusted p = 0.004)`` after a verdict, or just ``)`` when the comparison was not testable."""
    return f", Holm-adjusted {p_text(p_holm)})" if verdict != not_testable else ")"


def capped_table(headers: list[str], rows: list[list], csv_name: str, order: str = "in grid order") -> str:
    """A Markdown table of at most MAX_TABLE_ROWS rows, with a note when rows were left out."""
    text = markdown_table(headers, rows[:MAX_TABLE_ROWS])
    if len(rows) > MAX_TABLE_ROWS:
        text += (f"\n\nShowing {MAX_TABLE_ROWS} of {len(rows)} rows ({order}); every row is in "
                 f"`{csv_name}` beside this report.")
    return text


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def base_name(label: str) -> str:
    """Plugin name without inline parameters: ``isolation[contamination=0.2]`` -> ``isolation``."""
    return str(label).split("[", 1)[0]


def label(row, several_sizes: bool) -> str:
    """``iris / gaussian / none / decision_tree`` (+ ``(n_train 30)`` when the run has several sizes)."""
    config = tuple(row[c] for c in CONFIG_COLUMNS)
    return config_label(config) + (f" (n_train {config[4]})" if several_sizes else "")


def levels_text(levels) -> str:
    return ", ".join(level_text(v) for v in levels)


def counts_text(counts) -> str:
    """``helped significantly: 2; no significant effect: 5`` from a value_counts Series."""
    return "; ".join(f"{value}: {n}" for value, n in counts.items())


def run_command(record: RunRecord, defenses: list[str] | None = None, sizes: str | None = None,
                models: list[str] | None = None) -> str:
    """The ``irisbench run`` command that repeats this run's grid with some axes replaced."""
    spec = record.spec
    parts = ["irisbench", "run"]
    for option, labels in (("--dataset", [r.label for r in spec.datasets]),
                           ("--attack", [r.label for r in spec.attacks]),
                           ("--defense", defenses or [r.label for r in spec.defenses]),
                           ("--model", models or [r.label for r in spec.models])):
        parts += [option, ",".join(labels)]
    parts += ["--levels", ",".join(level_text(v) for v in spec.levels),
              "--sizes", sizes or ",".join(str(s) for s in spec.sizes), "--seeds", str(spec.seeds)]
    return " ".join(shlex.quote(p) for p in parts)


def families(rows) -> str:
    """``2 families of 3 comparisons``: the Holm families (column ``holm_family``) among ``rows``."""
    sizes = rows.groupby("holm_family", sort=False)["family_size"].first()
    return f"{len(sizes)} famil{'y' if len(sizes) == 1 else 'ies'} of " + (
        plural(int(sizes.iloc[0]), "comparison") if sizes.nunique() == 1
        else f"{int(sizes.min())} to {int(sizes.max())} comparisons")
