"""The suite's markers: ``-m "not slow"`` and ``-m "not mlflow"`` select what they say."""

from conftest import REPO

pytest_plugins = ["pytester"]


def test_slow_and_mlflow_markers_are_registered(request):
    names = {line.split(":")[0].strip() for line in request.config.getini("markers")}
    assert {"slow", "mlflow"} <= names


def test_mlflow_tests_are_marked_by_file_name_fixture_or_server(pytester):
    """The real conftest, on a small suite: each way of using MLflow is marked, the rest is not."""
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(
        test_mlflow_things="def test_in_an_mlflow_file():\n    pass\n",
        test_other="""
            from conftest import mlflow_server


            def test_starts_a_server(tmp_path):
                with mlflow_server(tmp_path):
                    pass


            def test_plain():
                pass
        """,
        test_fixture="""
            import pytest


            @pytest.fixture
            def mlflow_server():
                return None


            @pytest.fixture
            def tracking_uri(mlflow_server):
                return "http://127.0.0.1:1"


            def test_uses_the_server_through_another_fixture(tracking_uri):
                pass
        """,
    )
    selected = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "-m", "mlflow")
    names = {line.split("::")[-1] for line in selected.outlines if "::" in line}
    assert names == {"test_in_an_mlflow_file", "test_starts_a_server", "test_uses_the_server_through_another_fixture"}
    rest = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "-m", "not mlflow")
    assert {line.split("::")[-1] for line in rest.outlines if "::" in line} == {"test_plain"}
