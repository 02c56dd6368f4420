"""The figures: valid PNGs written atomically, skipped when they do not apply, and drawing the right numbers.

Most records here are built by hand (known accuracies and detection numbers, no training), so
the module runs in seconds; one small real run checks the figures against the executor's columns.
The numbers drawn are read back from the matplotlib figures and compared with the summary and
with an independent Student-t interval (scipy).
"""

import math
import struct
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest

from irisbench import tables as tb
from scipy import stats

from conftest import CLASS_NAMES, record_from
from irisbench.errors import UsageError
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.record import RunRecord
from irisbench.registry import load_registry
from irisbench.schema import COLUMNS, CONFIG_COLUMNS
from irisbench.results import ResultSet
from irisbench.sinks.figures import style, write_figures
from irisbench.sinks.figures.accuracy_vs_level import accuracy_level_data, accuracy_vs_level_figure
from irisbench.sinks.figures.defense_heatmap import defense_heatmap_figure, heatmap_data, plot_defense_heatmap
from irisbench.sinks.figures.detection import detection_data, detection_figure, plot_detection
from irisbench.sinks.figures.learning_curves import learning_curve_data, learning_curves_figure, plot_learning_curves
from irisbench.spec import build_spec
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_NAMES = ["poison_accuracy_plot.png", "quality_vs_quantity.png", "defense_heatmap.png", "detection.png"]
FLAGGING = {"isolation", "label_sanitization", "model_aware"}


# ---------------------------------------------------------------- hand-made records

def stable_rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def grid_frame(*, datasets=("iris",), attacks=("gaussian", "label_flip"),
               defenses=("none", "isolation", "label_sanitization"), models=("decision_tree", "knn"),
               sizes=(30, 60, 105), levels=(0, 5, 10, 50), seeds=3) -> pd.DataFrame:
    """One row per cell x seed with plausible accuracies and detection numbers.

    Detection depends on the model only for the defense ``model_aware``; ``none`` never flags.
    """
    rows = []
    for dataset in datasets:
        for attack in attacks:
            for defense in defenses:
                for model in models:
                    for n_train in sizes:
                        for level in levels:
                            for seed in range(seeds):
                                rng = stable_rng(dataset, attack, defense, model, n_train, level, seed)
                                noise = rng.normal(0, 0.03)
                                accuracy = float(np.clip(0.95 - 0.008 * level - 3 / n_train + noise, 0, 1))
                                precision = recall = np.nan
                                if defense in FLAGGING:
                                    key = (dataset, attack, defense, n_train, level, seed)
                                    det = stable_rng(*key, model if defense == "model_aware" else "")
                                    precision = 0.0 if level == 0 else float(det.uniform(0, 1))
                                    recall = np.nan if level == 0 else float(det.uniform(0, 1))
                                rows.append(dict(dataset=dataset, attack=attack, defense=defense, model=model,
                                                 level=float(level), n_train=n_train, seed=seed, status="ok", error="",
                                                 accuracy=accuracy, f1_macro=accuracy, n_poisoned=0, n_fit=n_train,
                                                 n_flagged=0, detection_precision=precision, detection_recall=recall,
                                                 detection_f1=np.nan, removed_fraction=0.0, train_digest="",
                                                 confusion=""))
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The issue's grid: 2 attacks x 3 defenses x 2 models x 4 levels x 3 sizes, 3 seeds."""
    return record_from(grid_frame(), tmp_path_factory.mktemp("full"))


@pytest.fixture
def pyplot():
    plt = style.pyplot()
    yield plt
    plt.close("all")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def cell(summary: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(summary), dtype=bool)
    for column, value in where.items():
        mask &= (summary[column] == value).to_numpy()
    assert mask.sum() == 1, where
    return summary[mask].iloc[0]


def t_half(values) -> float:
    x = np.asarray(values, dtype=float)
    return stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))


# ---------------------------------------------------------------- files

def test_write_figures_writes_four_real_pngs_atomically(full):
    paths = write_figures(full)
    assert paths == [full.out_dir / name for name in FIGURE_NAMES]
    for path in paths:
        data = path.read_bytes()
        width, height = png_size(data)
        assert len(data) > 20_000, path.name
        assert 600 <= width <= 3600 and 400 <= height <= 3000, (path.name, width, height)
    assert not [p for p in full.out_dir.iterdir() if p.name.endswith(".tmp")]


def test_figures_that_do_not_apply_are_not_written(tmp_path):
    one_size = record_from(grid_frame(sizes=(105,)), tmp_path / "one_size")
    assert learning_curve_data(one_size.summary) is None and plot_learning_curves(one_size) is None
    assert not (tmp_path / "one_size" / "quality_vs_quantity.png").exists()

    single = record_from(grid_frame(attacks=("gaussian",), defenses=("isolation",), models=("knn",)),
                         tmp_path / "single")
    assert heatmap_data(single.summary) is None and plot_defense_heatmap(single) is None
    assert not (tmp_path / "single" / "defense_heatmap.png").exists()

    no_flags = record_from(grid_frame(defenses=("none", "bagging"), sizes=(105,)), tmp_path / "no_flags")
    assert detection_data(no_flags.summary, no_flags.results) is None and plot_detection(no_flags) is None
    assert write_figures(no_flags) == [tmp_path / "no_flags" / "poison_accuracy_plot.png",
                                             tmp_path / "no_flags" / "defense_heatmap.png"]
    assert sorted(p.name for p in (tmp_path / "no_flags").iterdir()) == ["defense_heatmap.png",
                                                                         "poison_accuracy_plot.png"]


def test_a_failed_save_leaves_no_temporary_file(full, tmp_path, monkeypatch, pyplot):
    record = record_from(full.results, tmp_path)

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pyplot.Figure, "savefig", boom)
    with pytest.raises(OSError, match="disk full"):
        plot_learning_curves(record)
    assert list(tmp_path.iterdir()) == []
    assert pyplot.get_fignums() == []


def test_importing_the_figures_does_not_import_matplotlib():
    code = ("import sys, irisbench.sinks.figures as p; "
            "print('matplotlib' in sys.modules, callable(p.write_figures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


# ---------------------------------------------------------------- accuracy vs level

def test_accuracy_plot_draws_the_largest_size(full, pyplot):
    data = accuracy_level_data(full.summary)
    assert set(data["n_train"]) == {105}
    assert len(data) == 12 * 4
    fig = accuracy_vs_level_figure(full)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4  # panels: attack x model; one line per defense
    assert "n_train 105, the largest of 30, 60, 105" in fig.get_suptitle()
    drawn = 0
    for ax in axes:
        attack, model = ax.get_title().split(" · ")
        for line in ax.get_lines():
            expected = data[(data["attack"] == attack) & (data["model"] == model)
                            & (data["defense"] == line.get_label())]
            np.testing.assert_allclose(line.get_xdata(), expected["level"])
            np.testing.assert_allclose(line.get_ydata(), expected["accuracy_mean"])
            drawn += 1
    assert drawn == 12
    assert "Poisoning level" in axes[-1].get_xlabel() and "fraction correct" in axes[0].get_ylabel()


def test_accuracy_plot_with_few_configs_is_one_axis(tmp_path, pyplot):
    record = record_from(grid_frame(attacks=("label_flip",), defenses=("none", "isolation"), sizes=(105,)), tmp_path)
    fig = accuracy_vs_level_figure(record)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["label_flip / none / decision_tree", "label_flip / none / knn",
                      "label_flip / isolation / decision_tree", "label_flip / isolation / knn"]
    assert ax.get_legend() is not None and "n_train 105" in ax.get_title()


# ---------------------------------------------------------------- learning curves

def test_learning_curve_data_is_the_summary(full):
    data = learning_curve_data(full.summary)
    assert len(data) == len(full.summary)  # every configuration ran at three sizes
    summary = full.summary
    for row in data.itertuples(index=False):
        expected = cell(summary, **{c: getattr(row, c) for c in CONFIG_COLUMNS}, level=row.level)
        assert row.accuracy_mean == expected["accuracy_mean"]
        assert (row.accuracy_ci_low, row.accuracy_ci_high) == (expected["accuracy_ci_low"],
                                                               expected["accuracy_ci_high"])


def test_learning_curves_draw_one_curve_per_level_per_panel(full, pyplot):
    data = learning_curve_data(full.summary)
    frame = full.results
    fig = learning_curves_figure(full)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 12
    # columns are the defenses, rows are (attack, model)
    assert [ax.get_title() for ax in axes[:3]] == [f"gaussian · decision_tree · {defense}"
                                                   for defense in ("none", "isolation", "label_sanitization")]
    for ax in axes:
        attack, model, defense = ax.get_title().split(" · ")
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["0 (clean)", "5", "10", "50"]
        for line, level in zip(lines, (0.0, 5.0, 10.0, 50.0)):
            np.testing.assert_array_equal(line.get_xdata(), [30, 60, 105])
            for n_train, y in zip((30, 60, 105), line.get_ydata()):
                seeds = frame[(frame["attack"] == attack) & (frame["model"] == model) & (frame["defense"] == defense)
                              & (frame["n_train"] == n_train) & (frame["level"] == level)]["accuracy"]
                assert y == pytest.approx(seeds.mean(), abs=1e-12)
        assert len(ax.collections) == 4  # one CI band per level
        assert ax.get_xscale() == "linear"  # 30..105 spans less than 10x
    assert axes[-1].get_xlabel() == "Training samples (n)"
    assert "95 % CI" in fig.get_suptitle()
    assert data is not None


def test_learning_curves_use_a_log_axis_over_wide_ranges_and_cap_the_panels(tmp_path, pyplot):
    wide = record_from(grid_frame(attacks=("label_flip",), defenses=("none",), models=("knn",), sizes=(20, 200, 2000)),
                       tmp_path / "wide")
    fig = learning_curves_figure(wide)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "200", "2000"]

    many = record_from(grid_frame(attacks=("a", "b", "c"), defenses=("none", "isolation", "label_sanitization"),
                                  models=("m1", "m2"), sizes=(30, 105), levels=(0, 50), seeds=2), tmp_path / "many")
    fig = learning_curves_figure(many)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == style.MAX_PANELS
    assert "showing the first 12 of 18 panels" in fig.get_suptitle()


# ---------------------------------------------------------------- heatmap

def test_heatmap_data_defaults_to_the_highest_level_and_matches_a_t_interval(full):
    data = heatmap_data(full.summary)
    assert set(data["level"]) == {50.0}
    assert len(data) == 2 * 3 * 2 * 3  # attack x defense x model x size
    frame = full.results
    for row in data.itertuples(index=False):
        seeds = frame[(frame["attack"] == row.attack) & (frame["defense"] == row.defense)
                      & (frame["model"] == row.model) & (frame["n_train"] == row.n_train)
                      & (frame["level"] == 50.0)]["accuracy"]
        assert row.accuracy_mean == pytest.approx(seeds.mean(), abs=1e-12)
        assert row.ci_half == pytest.approx(t_half(seeds), abs=1e-12)
    assert set(heatmap_data(full.summary, 10)["level"]) == {10.0}


def test_heatmap_cells_show_mean_and_ci(full, pyplot):
    data = heatmap_data(full.summary, level=5)
    fig = defense_heatmap_figure(full, level=5)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_images()]
    assert len(axes) == 6  # rows: model, columns: n_train
    assert "poisoning level 5 %" in fig.get_suptitle()
    for ax in axes:
        model, n_train = ax.get_title().removeprefix("model ").split(" · n_train ")
        assert [t.get_text() for t in ax.get_yticklabels()] == ["none", "isolation", "label_sanitization"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["gaussian", "label_flip"]
        image = ax.get_images()[0].get_array()
        texts = [t.get_text() for t in ax.texts]
        for i, defense in enumerate(["none", "isolation", "label_sanitization"]):
            for j, attack in enumerate(["gaussian", "label_flip"]):
                row = cell(data, model=model, n_train=int(n_train), defense=defense, attack=attack)
                assert image[i, j] == pytest.approx(row["accuracy_mean"])
                assert f"{row['accuracy_mean']:.2f}\n± {row['ci_half']:.2f}" == texts[i * 2 + j]
    colorbar = [ax for ax in fig.axes if not ax.get_images() and ax.get_visible()]
    assert any("fraction correct" in ax.get_ylabel() for ax in colorbar)


def test_heatmap_with_one_defense_and_a_bad_level(full, tmp_path):
    one_defense = record_from(grid_frame(defenses=("none",), models=("knn",), sizes=(105,)), tmp_path / "one")
    assert plot_defense_heatmap(one_defense) == tmp_path / "one" / "defense_heatmap.png"
    bad = r"^heatmap level: level 7 is not a level of this run; levels: 0, 5, 10, 50$"
    with pytest.raises(UsageError, match=bad):
        write_figures(one_defense, heatmap_level=7)
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["defense_heatmap.png"]


# ---------------------------------------------------------------- detection

def test_detection_data_covers_flagging_defenses_at_poisoned_levels(full):
    data = detection_data(full.summary, full.results)
    assert list(dict.fromkeys(data["series"])) == ["isolation", "label_sanitization"]  # not 'none'
    assert set(data["level"]) == {5.0, 10.0, 50.0} and set(data["n_train"]) == {105}
    assert not data["model"].astype(bool).any()  # the same for both models: shown once
    assert len(data) == 2 * 2 * 3 * 2  # attack x defense x level x metric
    frame = full.results
    for row in data.itertuples(index=False):
        seeds = frame[(frame["attack"] == row.attack) & (frame["defense"] == row.defense) & (frame["model"] == "knn")
                      & (frame["n_train"] == 105) & (frame["level"] == row.level)][f"detection_{row.metric}"]
        assert row.mean == pytest.approx(seeds.mean(), abs=1e-12)
        # the detection table's interval for a proportion (a t-interval leaves [0, 1])
        cells = tb.detection_table(full.result_set).query(
            "attack == @row.attack and defense == @row.defense and n_train == 105 and level == @row.level")
        first = cells.iloc[0]  # the series is drawn from the first model of the grid
        expected = [first[f"{row.metric}_ci_low"], first[f"{row.metric}_ci_high"]]
        assert [row.ci_low, row.ci_high] == pytest.approx(expected)
        assert 0 <= row.ci_low <= row.mean <= row.ci_high <= 1 and row.n_seeds == seeds.notna().sum()


def test_detection_bars_are_the_means(full, pyplot):
    data = detection_data(full.summary, full.results)
    fig = detection_figure(full)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["gaussian: precision", "gaussian: recall",
                                                 "label_flip: precision", "label_flip: recall"]
    for ax in panels:
        attack, metric = ax.get_title().split(": ")
        heights = [p.get_height() for p in ax.patches]
        expected = [cell(data, attack=attack, metric=metric, series=series, level=level)["mean"]
                    for series in ("isolation", "label_sanitization") for level in (5.0, 10.0, 50.0)]
        np.testing.assert_allclose(heights, expected)
        assert "Detection" in ax.get_ylabel() and ax.get_ylim() == (0, 1.05)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["isolation", "label_sanitization"]


def test_model_dependent_detection_is_shown_per_model(tmp_path, pyplot):
    record = record_from(grid_frame(attacks=("label_flip",), defenses=("none", "isolation", "model_aware"),
                                    sizes=(105,)), tmp_path)
    data = detection_data(record.summary, record.results)
    assert list(dict.fromkeys(data["series"])) == ["isolation", "model_aware / decision_tree", "model_aware / knn"]
    fig = detection_figure(record)
    assert fig.legends[0].get_title().get_text() == "Defense / model"


# ---------------------------------------------------------------- odd inputs and a real run

def test_one_seed_and_failed_cells_still_draw(tmp_path):
    frame = grid_frame(seeds=1, sizes=(30, 105))
    failed = (frame["level"] == 50) & (frame["defense"] == "isolation") & (frame["attack"] == "label_flip")
    frame.loc[failed, "status"] = "failed"
    frame.loc[failed, ["accuracy", "f1_macro", "detection_precision", "detection_recall"]] = np.nan
    record = record_from(frame, tmp_path)
    assert [p.name for p in write_figures(record)] == FIGURE_NAMES
    data = heatmap_data(record.summary)
    assert data["ci_half"].isna().all()
    assert data.loc[(data["defense"] == "isolation") & (data["attack"] == "label_flip"), "accuracy_mean"].isna().all()


def test_figures_from_a_real_run(tmp_path):
    registry = load_registry(autoload=False)
    spec = build_spec(registry, attacks="label_flip", defenses="none,isolation", models="decision_tree",
                      sizes="40,all", levels="0,20", seeds=2)
    rows, _ = execute(make_plan(spec, registry))
    results = ResultSet.from_rows(rows)
    record = RunRecord(spec, results, results.summary(), tmp_path, CLASS_NAMES, {})
    assert [p.name for p in write_figures(record)] == FIGURE_NAMES
    data = learning_curve_data(record.summary)
    assert sorted(data["n_train"].unique()) == [40, 105]
    assert list(detection_data(record.summary, record.results)["series"].unique()) == ["isolation"]
