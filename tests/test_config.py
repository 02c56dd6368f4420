"""`--config FILE`: a TOML grid, validated like the flags; flags on the command line win."""

import json

import pandas as pd
import pytest

from irisbench.cli import main

GOOD = '''
attacks = ["gaussian[sigma=2.0]", "label_flip"]
defenses = "none,isolation"
levels = [0, 50]
seeds = 2
seed = 3
mlflow = false
'''


def test_config_file_defines_the_grid(in_tmp):
    (in_tmp / "grid.toml").write_text(GOOD)
    assert main(["run", "--config", "grid.toml", "--out", "run"]) == 0
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert set(frame["attack"]) == {"gaussian[sigma=2.0]", "label_flip"}
    assert set(frame["defense"]) == {"none", "isolation"} and set(frame["level"]) == {0, 50}
    spec = json.loads((in_tmp / "run" / "run.json").read_text())["spec"]
    assert spec["seeds"] == 2 and spec["seed"] == 3 and spec["mlflow"] is False


def test_command_line_flags_win(in_tmp):
    (in_tmp / "grid.toml").write_text(GOOD)
    assert main(["run", "--config", "grid.toml", "--seeds", "3", "--attack", "label_flip", "--out", "run"]) == 0
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert set(frame["attack"]) == {"label_flip"} and frame["seed"].nunique() == 3


@pytest.mark.parametrize(("text", "message"), [
    ("attacks = [\"gaussian\"\nseeds = 2", "is not valid TOML"),
    ("colour = \"blue\"", "unknown key 'colour'; valid keys: attacks, backend,"),
    ("seeds = 0", "--seeds must be >= 1"),
    ("seeds = [1, 2]", "seeds must be a single value"),
    ("levels = [0, 500]", "level '500' is outside 0-100"),
    ("attacks = [\"nope\"]", "unknown attack 'nope'"),
    ("mlflow = \"no\"", "mlflow must be true or false"),
    ("attack = \"gaussian\"\nattacks = [\"label_flip\"]", "attacks is given twice"),
])
def test_bad_config_exits_2_with_one_line(in_tmp, capsys, text, message):
    (in_tmp / "grid.toml").write_text(text)
    assert main(["run", "--config", "grid.toml", "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (in_tmp / "results").exists()


def test_missing_config_file(in_tmp, capsys):
    assert main(["run", "--config", "nope.toml"]) == 2
    assert "config file nope.toml does not exist" in capsys.readouterr().err
