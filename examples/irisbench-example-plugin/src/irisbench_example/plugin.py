"""The plugin author's guide example (docs/plugins.md), verbatim: an attack, a defense and an output format."""

import numpy as np
from irisbench import Attack, Defense, Param, Sink, ThreatModel, hookimpl, poison_count


class Shift(Attack):
    """Threat model: a constant offset added to the features of random training rows."""

    name = "shift"
    threat = ThreatModel("black-box", "features", "availability")
    description = "Add a constant offset to the features of random training rows"
    params = (Param("offset", float, 3.0, "offset added to every feature", min=0.0),)

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] += self.offset
        return X, y.copy(), mask


class ZScoreFilter(Defense):
    """Data validation: drop rows with any feature more than `z` standard deviations out."""

    name = "zscore"
    description = "Remove training rows with a feature beyond z standard deviations"
    flags = True
    family = "filter"
    params = (Param("z", float, 3.0, "threshold in standard deviations", min=0.0, exclusive_min=True),)

    def sanitize(self, X, y, rng):
        z = np.abs((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12))
        flagged = (z > self.z).any(axis=1)
        return X[~flagged], y[~flagged], flagged


def tex(text):
    """``text`` with LaTeX's special characters escaped (labels may hold file paths)."""
    special = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(c, "\\" + c if c in "&%$#_{}" else c) for c in text)


class LatexTable(Sink):
    """Output format: mean accuracy per configuration and level, as a table for a paper."""

    name = "latex"
    description = "accuracy.tex: mean test accuracy (95 % CI half-width) per configuration and level"
    params = (Param("digits", int, 3, "decimals shown", min=1, max=6),)

    def write(self, record, out_dir):
        summary, d = record.summary, self.digits
        levels = sorted(summary["level"].unique())
        lines = [r"\begin{tabular}{l" + "r" * len(levels) + "}", r"\toprule",
                 " & ".join(["configuration", *(f"{level:g}\\,\\%" for level in levels)]) + r" \\", r"\midrule"]
        keys = ["dataset", "attack", "defense", "model", "n_train"]
        for config, rows in summary.groupby(keys, sort=False):
            cells = [tex(" / ".join(map(str, config)))]
            for _, row in rows.set_index("level").reindex(levels).iterrows():
                half = (row["accuracy_ci_high"] - row["accuracy_ci_low"]) / 2
                cells.append(f"{row['accuracy_mean']:.{d}f}" + (f" ({half:.{d}f})" if np.isfinite(half) else ""))
            lines.append(" & ".join(cells) + r" \\")
        path = out_dir / "accuracy.tex"
        path.write_text("\n".join([*lines, r"\bottomrule", r"\end{tabular}", ""]), encoding="utf-8")
        return [path]


@hookimpl
def irisbench_register_attacks():
    return [Shift]


@hookimpl
def irisbench_register_defenses():
    return [ZScoreFilter]


@hookimpl
def irisbench_register_sinks():
    return [LatexTable]
