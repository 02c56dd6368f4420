"""report.html: the run on one page, headline findings first, readable offline and on a phone.

The numbers come from the in-memory record (its summary) and :mod:`irisbench.tables` (the drops
and the defense verdicts the Markdown analysis uses); this module only lays them out. The page
is self-contained: the figures are PNG data URIs, the CSS is inline, there is no script and a
Content-Security-Policy forbids any request, so opening it never touches the network. Every
label is escaped: plugin labels and class names come from plugins and data files.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.render import printable
from irisbench.schema import (ALPHA, CELL_COLUMNS, CONFIDENCE, CONFIG_COLUMNS, config_label, fmt_p, level_text, mean_ci,
                              mean_pm, p_text)
from irisbench.schema import metric as find_metric
from irisbench.sinks.analysis.format import difference_meaning, drop_meaning, metric_label
from irisbench.sinks.analysis.summary import summary_intro, summary_items
from irisbench.sinks.files import atomic_write_text

REPORT_NAME = "report.html"
#: The PNGs the figures sink writes in the run folder, in reading order, with their captions ("{metric}": the
#: metric of --metric, which those figures draw).
FIGURES = (("poison_accuracy_plot.png", "Test {metric} against the poisoning level"),
           ("quality_vs_quantity.png", "Test {metric} against the training-set size, per level"),
           ("defense_heatmap.png", "Mean {metric} per defense and attack"),
           ("detection.png", "How well the flagging defenses found the poisoned rows"),
           ("certified_accuracy.png", "Certified accuracy against the poisoning budget, beside the worst attack run"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Configurations spelled out in the headline; the summary table has every one.
MAX_HEADLINE = 4
#: Significant comparisons named per defense in the headline.
MAX_NAMED = 3
#: Longest table on the page; the CSV beside it has every row.
MAX_ROWS = 300
VERDICT_CLASS = {tb.DEFENSE_WORDS[1]: "good", tb.DEFENSE_WORDS[-1]: "bad", tb.DROP_WORDS[1]: "bad",
                 tb.DROP_WORDS[-1]: "good", tb.RISE_WORDS[1]: "bad", tb.RISE_WORDS[-1]: "good"}

CSS = """
:root{color-scheme:light;--fg:#1d232b;--muted:#5b6673;--line:#d9dee4;--bg:#fff;--band:#f4f6f8}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
main{max-width:64rem;margin:0 auto}
h1{font-size:1.5rem;line-height:1.25;margin:.2rem 0 .4rem;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:1.2rem 0 .3rem;overflow-wrap:anywhere}
p,li{overflow-wrap:anywhere}
ul{padding-left:1.2rem}
.muted{color:var(--muted);font-size:.9em}
.headline{background:var(--band);border-radius:8px;padding:.2rem 1rem .4rem}
.headline h2{margin-top:.6rem}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.good{color:#126b2b;font-weight:600}
.bad{color:#a3161b;font-weight:600}
figure{margin:1rem 0}
img{display:block;max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:.9em;margin-top:.3rem}
.scroll{display:inline-block;max-width:100%;overflow-x:auto;margin:.5rem 0;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;font-size:.9rem}
th,td{padding:.35rem .6rem;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--band);white-space:nowrap}
tr.group th{background:none;white-space:normal;font-weight:600;padding-top:.7rem;overflow-wrap:anywhere}
td.num,thead th+th{text-align:right}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
@media (max-width:600px){body{padding:.6rem;font-size:15px}dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}
.headline{padding:.1rem .6rem .3rem}table{font-size:.8rem}th,td{padding:.3rem .35rem}}
"""
#: Nothing may load: only the inline style and data: images are allowed.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def esc(text) -> str:
    """Text safe in HTML: control characters shown as escapes (:func:`printable`), then ``<>&"'`` escaped."""
    return html.escape(printable(text))


def verdict(text: str) -> str:
    css = VERDICT_CLASS.get(text)
    return f'<span class="{css}">{esc(text)}</span>' if css else esc(text)


def num(text: str) -> str:
    return f'<span class="num">{esc(text)}</span>'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- headline

def _summary_rows(record: RunRecord) -> dict[tuple, dict]:
    return {tuple(r[c] for c in CELL_COLUMNS): r for r in record.summary.to_dict("records")}


def _accuracy(row: dict | None, metric: str = "accuracy") -> str:
    if row is None:
        return "n/a"
    return mean_ci(row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])


def config_findings(record: RunRecord, t: tb.Tables, config: tuple, cells: dict[tuple, dict]) -> str:
    """One configuration: clean accuracy, then accuracy and the paired drop at each poisoned level."""
    drops = {r["level"]: r for r in t.degradation.to_dict("records")
             if tuple(r[c] for c in CONFIG_COLUMNS) == tuple(config)}
    items = []
    for level in record.result_set.levels():
        row = cells.get((*config, level))
        if level == 0:
            items.append(f"clean (level 0): {esc(metric_label(t))} {num(_accuracy(row, t.metric))}")
            continue
        text = f"level {esc(level_text(level))} %: {esc(metric_label(t))} {num(_accuracy(row, t.metric))}"
        drop = drops.get(level)
        if drop is not None:
            text += (f"; drop vs clean {num(mean_ci(drop['drop_mean'], drop['drop_ci_low'], drop['drop_ci_high']))}"
                     f", {verdict(drop['verdict'])}")
        items.append(text)
    head = esc(config_label(config)) + f" <span class=\"muted\">(n_train {esc(config[4])})</span>"
    return f"<li><strong>{head}</strong><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul></li>"


def untestable(family, what: str) -> str:
    """Why the Holm families of ``family`` would likely miss a 10-point effect, when the seeds are too few; ""
    otherwise."""
    n_pairs = int(family["n_pairs"].max()) if len(family) else 0
    largest = int(family["family_size"].max()) if len(family) else 0
    if n_pairs < 1 or not largest or tb.family_power(n_pairs, largest) >= tb.USEFUL_POWER:
        return ""
    return (f"With {_plural(n_pairs, 'paired seed')} and up to {largest} {what} per Holm family, a true difference "
            f"of {tb.REFERENCE_EFFECT * 100:g} accuracy points is found with only about "
            f"{tb.family_power(n_pairs, largest) * 100:.0f} % chance; {tb.seeds_needed(largest)} seeds reach "
            f"{tb.USEFUL_POWER * 100:g} %.")


def significant_list(rows) -> str:
    """The significant comparisons among ``rows`` (smallest Holm p first, at most MAX_NAMED) as a nested list."""
    rows = rows[rows["verdict"].isin([tb.DEFENSE_WORDS[1], tb.DEFENSE_WORDS[-1]])].sort_values("p_holm", kind="stable")
    if rows.empty:
        return ""
    items = [f"<li>{esc(config_label(tuple(r[c] for c in CONFIG_COLUMNS)))} (n_train {esc(r['n_train'])}), "
             f"level {esc(level_text(r['level']))} %: {verdict(r['verdict'])}, difference "
             f"{num(mean_ci(r['diff_mean'], r['diff_ci_low'], r['diff_ci_high']))}, Holm-adjusted "
             f"{num(p_text(r['p_holm']))}</li>" for r in rows.head(MAX_NAMED).to_dict("records")]
    if len(rows) > MAX_NAMED:
        items.append(f"<li>... {len(rows) - MAX_NAMED} more in the defense table below</li>")
    return "<ul>" + "".join(items) + "</ul>"


def defense_findings(record: RunRecord, t: tb.Tables) -> list[str]:
    """Per defense: how many comparisons with no defense it helped, did not affect, hurt, stated as measured."""
    table = t.defenses
    ran = list(dict.fromkeys(record.results["defense"].astype(str)))
    others = [d for d in ran if d != tb.BASELINE_DEFENSE]
    if not others:
        return []
    if table.empty:
        return [f"<li>No defense comparison: '{esc(tb.BASELINE_DEFENSE)}' did not run beside "
                f"{esc(', '.join(others))}.</li>"]
    note = untestable(table[table["family"] == tb.POISONED_FAMILY], "defense comparisons at poisoned levels")
    lines = [f"<li>{note}</li>"] if note else []
    for family, where in ((tb.POISONED_FAMILY, "at poisoned levels"), (tb.CLEAN_FAMILY, "on clean data (level 0)")):
        for o in tb.defense_overview(table, family).to_dict("records"):
            counts = [(o["no_effect"], tb.DEFENSE_WORDS[0]), (o["helped"], tb.DEFENSE_WORDS[1]),
                      (o["hurt"], tb.DEFENSE_WORDS[-1]), (o["not_testable"], "not testable")]
            text = (f"<strong>{esc(o['defense'])}</strong> vs no defense {where}, "
                    f"{_plural(o['comparisons'], 'comparison')}: "  # a word is coloured only when it happened
                    + ", ".join(f"{verdict(words) if n else esc(words)} in {n}" for n, words in counts
                                if n or words != "not testable"))
            rows = table[(table["family"] == family) & (table["defense"] == o["defense"])]
            lines.append(f"<li>{text}.{significant_list(rows)}</li>")
    return lines


def summary(record: RunRecord, t: tb.Tables) -> str:
    """What this run found, first: the items analysis_report.md opens with (:mod:`irisbench.sinks.analysis.summary`)."""
    several_sizes = len({c[4] for c in record.result_set.configs()}) > 1
    items = "".join(f"<li>{esc(item)}</li>" for item in summary_items(record, t, several_sizes))
    return (f"<section id=\"summary\"><h2>Summary</h2><p>{esc(summary_intro(t))}</p><ul>{items}</ul></section>")


def headline(record: RunRecord, t: tb.Tables) -> str:
    """The findings: undefended accuracy per level with its drop, then the defense verdicts."""
    configs = record.result_set.configs()
    shown = [c for c in configs if c[2] == tb.BASELINE_DEFENSE] or configs
    cells = _summary_rows(record)
    parts = ["<section class=\"headline\" id=\"headline\"><h2>Headline findings</h2>"]
    what = "without a defense" if shown[0][2] == tb.BASELINE_DEFENSE else "per configuration"
    parts.append(f"<p>{esc(metric_label(t).capitalize())} on the clean test split {what}:</p><ul>")
    parts += [config_findings(record, t, c, cells) for c in shown[:MAX_HEADLINE]]
    if len(shown) > MAX_HEADLINE:
        parts.append(f"<li>... {len(shown) - MAX_HEADLINE} more configurations in the summary table below.</li>")
    parts.append("</ul>")
    note = untestable(t.degradation, "drops tested")
    if note:
        parts.append(f"<p>{note}</p>")
    defenses = defense_findings(record, t)
    if defenses:
        parts += ["<p>Defenses, each against no defense on the same seeds:</p><ul>", *defenses, "</ul>"]
    n_failed, n_runs = record.result_set.n_failed, len(record.results)
    parts.append(f"<p>{n_failed} of {n_runs} cell x seed runs failed" +
                 (" (left out of every mean and test; see results.csv)." if n_failed else ".") + "</p>")
    parts.append(f"<p class=\"muted\">{esc(metric_label(t).capitalize())}: mean [{CONFIDENCE * 100:g} % CI] over "
                 f"seeds (Student-t). {esc(drop_meaning(t))} {esc(difference_meaning(t))} "
                 "A verdict is significant only when the Holm-adjusted paired t-test p is below "
                 f"{ALPHA} and the CI excludes 0; \"no significant effect\" means this run cannot tell, not that "
                 "there is no effect.</p></section>")
    return "\n".join(parts)


# ---------------------------------------------------------------- figures

def _png(path: Path) -> bytes | None:
    """The file's bytes when it is a PNG, None otherwise (a run folder may come from someone else)."""
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError:
        return None
    return data if data.startswith(PNG_SIGNATURE) else None


def accuracy_png(record: RunRecord) -> bytes:
    """Accuracy against level with its CI band per configuration: drawn here when the figures sink wrote none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, label = record.spec.metric, find_metric(record.spec.metric).label
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    try:
        summary = record.summary.sort_values("level", kind="stable")
        for config, cell in summary.groupby(CONFIG_COLUMNS, sort=False):
            x = cell["level"].to_numpy(dtype=float)
            line, = ax.plot(x, cell[f"{metric}_mean"].to_numpy(dtype=float), marker="o",
                            label=printable(f"{config_label(config)} (n_train {config[4]})"))
            ax.fill_between(x, cell[f"{metric}_ci_low"].to_numpy(dtype=float),
                            cell[f"{metric}_ci_high"].to_numpy(dtype=float), color=line.get_color(), alpha=0.12)
        ax.set(xlabel="Poisoning level (% of training samples poisoned)", ylabel=f"Test {label}", ylim=(0, 1.02))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def figures(record: RunRecord, out_dir: Path) -> str:
    """The figures the figures sink wrote in the run folder, inlined; one drawn here if it wrote none."""
    label = find_metric(record.spec.metric).label  # the figures draw the metric of --metric
    found = [(caption.format(metric=label), data) for name, caption in FIGURES
             if (data := _png(out_dir / name)) is not None]
    if not found:
        found = [(FIGURES[0][1].format(metric=label), accuracy_png(record))]
    items = [f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" '
             f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>' for caption, data in found]
    return "<section id=\"figures\"><h2>Figures</h2>\n" + "\n".join(items) + "</section>"


# ---------------------------------------------------------------- tables

def table(headers: list[str], groups: list[tuple[str, list[list[str]]]], csv_name: str) -> str:
    """Rows grouped under a full-width heading per configuration, so that a phone shows the numbers without
    scrolling; the table scrolls horizontally in its wrapper when it is still too wide. Cells are already HTML;
    the first column is text, the others numbers. At most MAX_ROWS rows."""
    head = "".join(f"<th scope=\"col\">{esc(h)}</th>" for h in headers)
    body, n_rows = [], sum(len(rows) for _, rows in groups)
    budget = MAX_ROWS
    for label, rows in groups:
        if budget <= 0:
            break
        body.append(f"<tr class=\"group\"><th colspan=\"{len(headers)}\" scope=\"colgroup\">{label}</th></tr>")
        body += ["<tr>" + "".join(f"<td class=\"num\">{c}</td>" if i else f"<td>{c}</td>" for i, c in enumerate(row))
                 + "</tr>" for row in rows[:budget]]
        budget -= len(rows)
    note = (f"<p class=\"muted\">Showing {MAX_ROWS} of {n_rows} rows; every row is in {esc(csv_name)}.</p>"
            if n_rows > MAX_ROWS else "")
    return (f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body)
            + f"\n</tbody></table></div>{note}")


def _groups(frame, cells) -> list[tuple[str, list[list[str]]]]:
    """``cells(row)`` of each row, grouped by configuration in table order under its escaped label."""
    groups: dict[tuple, list[list[str]]] = {}
    for r in frame.to_dict("records"):
        groups.setdefault(tuple(r[c] for c in CONFIG_COLUMNS), []).append(cells(r))
    return [(f"{esc(config_label(config))} <span class=\"muted\">(n_train {esc(config[4])})</span>", rows)
            for config, rows in groups.items()]


def summary_table(record: RunRecord) -> str:
    first = record.spec.metric  # the chosen metric, then accuracy (macro F1 when accuracy is the chosen one)
    second = "accuracy" if first != "accuracy" else "f1_macro"

    def cells(r: dict) -> list[str]:
        return [esc(level_text(r["level"])),
                esc(f"{int(r['n_seeds'])}" + (f" ({int(r['n_failed'])} failed)" if r["n_failed"] else "")),
                num(mean_pm(r[f"{first}_mean"], r[f"{first}_ci_low"], r[f"{first}_ci_high"])),
                num(mean_pm(r[f"{second}_mean"], r[f"{second}_ci_low"], r[f"{second}_ci_high"]))]

    return ("<h3>Per cell</h3><p class=\"muted\">Mean ± half-width of the 95 % CI over the successful seeds.</p>"
            + table(["level (%)", "seeds", find_metric(first).label, find_metric(second).label],
                    _groups(record.summary, cells), "summary.csv"))


def defense_table(t: tb.Tables) -> str:
    def cells(r: dict) -> list[str]:
        return [esc(level_text(r["level"])), num(mean_ci(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])),
                num(fmt_p(r["p_holm"])), num(mean_ci(r["recovery"], r["recovery_ci_low"], r["recovery_ci_high"])
                                             + (" \u2020" if tb.recovery_outruns_verdict(r) else "")
                                             + (" (unbounded)" if tb.recovery_unbounded(r) else "")),
                verdict(r["verdict"])]

    return (f"<h3>Defenses against no defense</h3><p class=\"muted\">{esc(difference_meaning(t))} [95 % CI]; Holm "
            "families: per dataset, attack, model and training size at the poisoned levels, and per dataset, model "
            f"and training size at level 0 (one row, attack {esc(tb.NO_ATTACK)}: the cost on clean data, the same "
            "under every attack). "
            f"Recovery = share of the {esc(metric_label(t))} lost to the attack won back (n/a when the attack did no "
            "harm), [95 % Fieller interval; unbounded when the harm itself is not significant]. \u2020 = the recovery "
            "interval excludes 0 while the verdict is \"no significant effect\": the interval is not Holm-adjusted, "
            "the verdict needs the Holm-adjusted p.</p>"
            + table(["level (%)", "difference", "Holm p", "recovery", "verdict"], _groups(t.defenses, cells),
                    tb.Tables.FILES["defenses"]))


def tables(record: RunRecord, t: tb.Tables) -> str:
    parts = ["<section id=\"tables\"><h2>Tables</h2>", summary_table(record)]
    if record.results["defense"].nunique() > 1 and not t.defenses.empty:
        parts.append(defense_table(t))
    return "\n".join(parts) + "</section>"


def setup(record: RunRecord) -> str:
    """What ran: the grid, the class names of each dataset, the seeds and versions."""
    frame, spec = record.results, record.spec
    names = {c: list(dict.fromkeys(frame[c].astype(str))) for c in ("dataset", "attack", "defense", "model")}
    classes = "; ".join(f"{d}: {', '.join(record.class_names.get(d, [])) or 'n/a'}" for d in names["dataset"])
    items = [("Datasets", ", ".join(names["dataset"])), ("Classes", classes), ("Attacks", ", ".join(names["attack"])),
             ("Defenses", ", ".join(names["defense"])), ("Models", ", ".join(names["model"])),
             ("Levels (%)", ", ".join(level_text(v) for v in record.result_set.levels())),
             ("Sizes", ", ".join(str(s) for s in spec.sizes)),
             ("Seeds", f"{spec.seeds} (root seed {spec.seed}); test split {spec.test_size * 100:g} %, never poisoned"),
             ("Runs", f"{len(frame)} cell x seed runs, {record.result_set.n_failed} failed")]
    meta = record.meta
    if meta.get("started_at"):
        items.append(("Started", str(meta["started_at"])))
    if meta.get("versions", {}).get("irisbench"):
        items.append(("irisbench", str(meta["versions"]["irisbench"])))
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f"<section id=\"setup\"><h2>Setup</h2><dl>{rows}</dl></section>"


# ---------------------------------------------------------------- the page

def html_text(record: RunRecord, out_dir: Path, t: tb.Tables | None = None) -> str:
    """The whole page as one string."""
    t = t if t is not None else record.tables
    name = Path(out_dir).name
    frame = record.results
    grid = " · ".join(", ".join(dict.fromkeys(frame[c].astype(str))) for c in ("dataset", "attack", "defense", "model"))
    return "\n".join([
        "<!DOCTYPE html>",
        "<html lang=\"en\">",
        "<head>",
        "<meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">",
        f"<title>irisbench report: {esc(name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body><main>",
        f"<header><h1>irisbench report: {esc(name)}</h1><p class=\"muted\">{esc(grid)}</p></header>",
        summary(record, t),
        headline(record, t),
        figures(record, Path(out_dir)),
        tables(record, t),
        setup(record),
        "<footer><p class=\"muted\">Written by irisbench from results.csv; the numbers are in summary.csv and "
        "the CSV tables beside this page, the full reading in analysis_report.md.</p></footer>",
        "</main></body>",
        "</html>",
        "",
    ])


def write_html(record: RunRecord) -> Path:
    """Write ``report.html`` in the run folder; return its path."""
    out_dir = Path(record.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    atomic_write_text(path, html_text(record, out_dir))
    return path
