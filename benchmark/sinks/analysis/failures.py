"""The cells that failed, and why."""

from __future__ import annotations

from irisbench.record import RunRecord
from irisbench.schema import CONFIG_COLUMNS, config_label, level_text
from irisbench.sinks.analysis.format import MAX_TABLE_ROWS, capped_table
from irisbench.sinks.reports import cell_errors


def failed_section(record: RunRecord, several_sizes: bool) -> str:
    frame = record.results
    head = ["## Failed cells", ""]
    n_failed, n_total = record.result_set.n_failed, len(frame)
    if n_failed == 0:
        return "\n".join(head + [f"None: all {n_total} cell x seed runs succeeded."])
    failed = frame[frame["status"] != "ok"]
    body = []
    for key, group in failed.groupby(CONFIG_COLUMNS + ["level"], sort=False):
        config, level = tuple(key[:5]), key[5]
        body.append([config_label(config) + (f" (n_train {config[4]})" if several_sizes else ""), level_text(level),
                     len(group), "; ".join(cell_errors(record.result_set, config, level))])
    errors = list(dict.fromkeys(str(e) for e in failed["error"]))
    return "\n".join(head + [
        f"{n_failed} of {n_total} cell x seed runs failed; failed seeds are left out of every mean, "
        "interval and comparison above.", "",
        capped_table(["configuration", "level (%)", "failed seeds", "errors"], body, "results.csv"), "",
        f"Distinct errors ({len(errors)}):", "", *(f"- {e}" for e in errors[:MAX_TABLE_ROWS])])
