"""A broken plugin is skipped with one warning naming it; it never breaks the host or hides other plugins.

Fast tests load real plugin files through ``--plugins-dir``; the slow ones pip-install real packages
(tests/bad_plugins) and find them through their entry points.
"""

import ast
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, install_plugin_packages
from irisbench.cli import main
from irisbench.registry import load_registry

HEADER = """
import sys
import numpy as np
from irisbench import Attack, Dataset, Defense, Model, Param, hookimpl, poison_count


class Good(Attack):
    name = "good_attack"
    description = "Poison nothing"

    def poison(self, X, y, fraction, rng):
        return X.copy(), y.copy(), np.zeros(len(y), dtype=bool)


class GoodModel(Model):
    name = "good_model"

    def build(self, random_state):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier()
"""


def load(tmp_path, **files):
    """The registry with one ``--plugins-dir`` folder holding ``files`` (name -> source after HEADER)."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name, body in files.items():
        (folder / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
    return load_registry(autoload=False, plugin_dirs=[folder])


#: a hook that returns one class instead of a list, beside a correct one
ONE_CLASS_NOT_A_LIST = """
    @hookimpl
    def irisbench_register_attacks():
        return Good

    @hookimpl
    def irisbench_register_models():
        return [GoodModel]
"""


def warnings_about(registry, text):
    return [w for w in registry.warnings if text in w]


def test_hook_returning_one_class_is_skipped_with_one_warning_and_the_rest_loads(tmp_path):
    registry = load(tmp_path, single=ONE_CLASS_NOT_A_LIST)
    assert len(registry.warnings) == 1, registry.warnings
    warning = registry.warnings[0]
    assert "single.py" in warning and "irisbench_register_attacks" in warning and "not a list" in warning
    assert "good_model" in registry.plugins["model"] and "good_attack" not in registry.plugins["attack"]
    assert "gaussian" in registry.plugins["attack"]


def test_params_without_trailing_comma_skips_that_class_only(tmp_path):
    registry = load(tmp_path, comma="""
        class NoComma(Attack):
            name = "no_comma"
            params = (Param("strength", float, 1.0, min=0.0))

            def poison(self, X, y, fraction, rng):
                return X, y, np.zeros(len(y), dtype=bool)

        @hookimpl
        def irisbench_register_attacks():
            return [NoComma, Good]
    """)
    assert len(registry.warnings) == 1, registry.warnings
    assert "comma.py" in registry.warnings[0] and "trailing comma" in registry.warnings[0]
    assert "no_comma" not in registry.plugins["attack"] and "good_attack" in registry.plugins["attack"]


def test_cli_lists_the_good_plugins_and_prints_one_warning_per_bad_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    load(tmp_path, bad=ONE_CLASS_NOT_A_LIST)
    assert main(["--plugins-dir", str(tmp_path / "plugins"), "plugins"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("irisbench: warning: folder ") and "bad.py" in err
    assert "good_model" in out and "gaussian" in out


@pytest.mark.parametrize("name", ["two words", "a,b", "x[1]", "k=v", "", "1st", "tab\tname", 3])
def test_names_that_cannot_be_typed_on_the_command_line_are_rejected(tmp_path, name):
    registry = load(tmp_path, names=f"""
        class Odd(Good):
            name = {name!r}

        @hookimpl
        def irisbench_register_attacks():
            return [Odd, Good]
    """)
    assert len(registry.warnings) == 1, registry.warnings
    assert "names.py" in registry.warnings[0] and "skipped" in registry.warnings[0]
    assert set(registry.plugins["attack"]) >= {"good_attack", "gaussian"} and name not in registry.plugins["attack"]


@pytest.mark.parametrize(("params", "message"), [
    ('(Param("k", int, 0, min=1),)', "default of parameter 'k' fails its own constraints"),
    ('(Param("mode", str, "fast", choices=("slow",)),)', "default of parameter 'mode' fails its own constraints"),
    ('(Param("p", float, 2.0, max=1.0),)', "default of parameter 'p' fails its own constraints"),
    ('(Param("a b", float, 1.0),)', "parameter name 'a b' cannot be typed"),
    ('(Param("k", int, 1), Param("k", int, 2))', "parameter 'k' is declared twice"),
    ('(Param("name", str, "x"),)', "would hide Attack.name"),
    ('(Param("k", "int", 1),)', "not a class"),
])
def test_parameters_that_fail_their_own_declaration_are_rejected(tmp_path, params, message):
    registry = load(tmp_path, params=f"""
        class Declared(Good):
            name = "declared"
            params = {params}

        @hookimpl
        def irisbench_register_attacks():
            return [Declared, Good]
    """)
    assert len(registry.warnings) == 1, registry.warnings
    assert "params.py" in registry.warnings[0] and message in registry.warnings[0]
    assert "declared" not in registry.plugins["attack"] and "good_attack" in registry.plugins["attack"]


def test_classes_that_do_not_implement_their_kind_are_rejected(tmp_path):
    registry = load(tmp_path, hollow="""
        class NoPoison(Attack):
            name = "no_poison"

        class NoBuild(Model):
            name = "no_build"

        class NoLoad(Dataset):
            name = "no_load"

        class Identity(Defense):  # both Defense methods have working defaults
            name = "identity"

        @hookimpl
        def irisbench_register_attacks():
            return [NoPoison, Good]

        @hookimpl
        def irisbench_register_models():
            return [NoBuild]

        @hookimpl
        def irisbench_register_datasets():
            return [NoLoad]

        @hookimpl
        def irisbench_register_defenses():
            return [Identity]
    """)
    assert len(registry.warnings) == 3, registry.warnings
    for method in ("Attack.poison()", "Model.build()", "Dataset.load()"):
        assert len(warnings_about(registry, method)) == 1
    assert "good_attack" in registry.plugins["attack"] and "identity" in registry.plugins["defense"]


def test_misspelt_hook_and_missing_hookimpl_are_named(tmp_path):
    registry = load(tmp_path, typo="""
        @hookimpl
        def irisbench_register_atacks():
            return [Good]

        def irisbench_register_models():
            return [GoodModel]
    """)
    assert len(registry.warnings) == 2, registry.warnings
    [misspelt] = warnings_about(registry, "irisbench_register_atacks")
    assert "typo.py" in misspelt and "did you mean 'irisbench_register_attacks'" in misspelt
    [unmarked] = warnings_about(registry, "irisbench_register_models")
    assert "typo.py" in unmarked and "@hookimpl" in unmarked


def test_a_plugin_cannot_jump_the_queue_to_replace_a_builtin(tmp_path):
    registry = load(tmp_path, impostor="""
        class Impostor(Good):
            name = "gaussian"

        @hookimpl(trylast=True)
        def irisbench_register_attacks():
            return [Impostor]
    """)
    assert registry.get("attack", "gaussian").package == "irisbench"
    assert registry.warnings == [f"folder {tmp_path / 'plugins' / 'impostor.py'}: attack 'gaussian' is already "
                                 "provided by irisbench; skipped"]


BROKEN_FILES = {
    "a_syntax": "def broken(:\n",
    "b_raises": "raise RuntimeError('b_raises is broken')\n",
    "c_exits": "sys.exit(3)\n",
    "d_good": "@hookimpl\ndef irisbench_register_attacks():\n    return [Good]\n",
    "e_exits_in_hook": "@hookimpl\ndef irisbench_register_models():\n    sys.exit('bye')\n",
}


def test_one_broken_file_does_not_drop_the_good_ones_in_its_folder(tmp_path):
    registry = load(tmp_path, **BROKEN_FILES)
    assert "good_attack" in registry.plugins["attack"]
    assert len(registry.warnings) == 4, registry.warnings
    for name in ("a_syntax", "b_raises", "c_exits", "e_exits_in_hook"):
        assert len(warnings_about(registry, f"{name}.py")) == 1
    assert "SyntaxError" in warnings_about(registry, "a_syntax")[0]
    assert "sys.exit(3)" in warnings_about(registry, "c_exits")[0]
    assert "sys.exit('bye')" in warnings_about(registry, "e_exits_in_hook")[0]


def test_the_cli_warns_once_per_broken_file_and_lists_the_good_plugin(in_tmp, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    folder = in_tmp / "plugins"
    folder.mkdir()
    for name, body in BROKEN_FILES.items():
        (folder / f"{name}.py").write_text(HEADER + body)
    assert main(["--plugins-dir", str(folder), "plugins", "--kind", "attack"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("irisbench: warning:") == 4, err
    assert "good_attack" in out


def test_a_misspelt_plugin_name_suggests_the_nearest(in_tmp, capsys):
    assert main(["run", "--attack", "gausian", "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("irisbench: error: unknown attack 'gausian'; did you mean 'gaussian'? valid attacks: ")
    assert main(["run", "--model", "zzz", "--no-mlflow"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_a_misspelt_parameter_suggests_the_nearest(in_tmp, capsys):
    assert main(["run", "--attack", "gaussian[sigm=2]", "--no-mlflow"]) == 2
    assert "has no parameter 'sigm'; did you mean 'sigma'?" in capsys.readouterr().err


def test_plugin_authors_need_only_the_top_level_package():
    import irisbench
    from irisbench import (TEST_SIZE, Attack, Dataset, Defense, LoadedData, Model, Param, UsageError,  # noqa: F401
                           hookimpl, poison_count)
    from irisbench.errors import UsageError as EngineUsageError

    assert UsageError is EngineUsageError and issubclass(UsageError, ValueError)
    assert {"hookimpl", "Attack", "Defense", "Model", "Dataset", "Param", "LoadedData", "UsageError",
            "poison_count"} <= set(irisbench.__all__)


#: Where plugins live: the built-ins, the guide's example package and the test-only packages.
PLUGIN_SOURCES = ["plugins", "examples", "tests/tiny_plugin", "tests/bad_plugins"]
#: What a plugin may import from irisbench: the package itself, the conformance checks in its tests, and the
#: certificate math a defense or model certifies with.
PUBLIC = {"irisbench", "irisbench.testing", "irisbench.certificates"}


def test_no_plugin_imports_engine_internals():
    offending = []
    for folder in PLUGIN_SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:  # relative: the plugin's own package
                    names = [node.module]
                else:
                    continue
                offending += [f"{path.relative_to(REPO)}:{node.lineno} imports {name}" for name in names
                              if name.split(".")[0] == "irisbench" and name not in PUBLIC]
    assert not offending, "\n".join(offending)


# --- real installed packages, found through their entry points -------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install tests/bad_plugins into two target folders; an env that sees each.

    ``clash``: two packages with one entry-point name; ``broken``: the packages that misbehave.
    """
    return {group: install_plugin_packages([REPO / "tests" / "bad_plugins" / p for p in packages],
                                           tmp_path_factory.mktemp(group), columns=250)
            for group, packages in {"clash": ["clash_a", "clash_b"], "broken": ["exits", "misdeclared"]}.items()}


def list_plugins(env, cwd) -> tuple[dict[str, str], list[str]]:
    """``irisbench plugins`` in a subprocess: its table rows by plugin name, and its warning lines."""
    result = subprocess.run([sys.executable, "-m", "irisbench.cli", "plugins"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = result.stderr.splitlines()
    assert all(line.startswith("irisbench: warning: ") for line in warnings), warnings
    rows = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    return rows, warnings


@pytest.mark.slow
def test_installed_packages_sharing_an_entry_point_name_both_load(installed, tmp_path):
    rows, warnings = list_plugins(installed["clash"], tmp_path)
    assert not warnings
    assert "irisbench-clash-a" in rows["clash_a"] and "irisbench-clash-b" in rows["clash_b"]


@pytest.mark.slow
def test_installed_bad_packages_are_each_named_once_and_the_rest_loads(installed, tmp_path):
    rows, warnings = list_plugins(installed["broken"], tmp_path)

    def about(*texts):
        return [line for line in warnings if all(text in line for text in texts)]

    # sys.exit at import is a warning, not the end of the command
    assert len(about("irisbench-bad-exits", "sys.exit(7)")) == 1
    # each malformed class or hook: one warning naming the package and what is wrong
    assert len(about("irisbench-bad-misdeclared", "irisbench_register_models", "not a list")) == 1
    assert len(about("irisbench-bad-misdeclared", "trailing comma")) == 1
    assert len(about("irisbench-bad-misdeclared", "cannot be typed on the command line")) == 1
    assert len(about("irisbench-bad-misdeclared", "fails its own constraints")) == 1
    assert len(about("irisbench-bad-misdeclared", "does not implement Attack.poison()")) == 1
    assert len(about("irisbench-bad-misdeclared", "irisbench_register_atacks", "did you mean")) == 1
    assert len(about("irisbench-bad-misdeclared", "irisbench_register_datasets", "@hookimpl")) == 1
    assert len(warnings) == 8, warnings
    # the one good class of the misdeclared package still loads, and so do the built-ins
    assert "irisbench-bad-misdeclared" in rows["misdeclared_ok"]
    assert "gaussian" in rows
