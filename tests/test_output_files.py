"""Output files: never replace a device or FIFO, honour the umask, claim --out atomically, survive a full disk."""

import os
import resource
import stat
import subprocess
import sys
import threading

import pytest

from irisbench.cli import main
from irisbench.commands.run import prepare_out_dir
from irisbench.errors import UsageError
from irisbench.sinks.files import atomic_write_text

CLI = [sys.executable, "-m", "irisbench.cli"]


def errors(stderr: str) -> str:
    """``stderr`` without the run's power warning (small test grids are underpowered on purpose)."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not line.startswith("irisbench: warning: with "))


def _null_device(folder):
    """A character device like /dev/null (major 1, minor 3) that a failing test may replace harmlessly."""
    path = folder / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a character device needs root (CAP_MKNOD)")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--levels", "0,10", "--out", str(out)]) == 0
    return out


def test_the_writer_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="is a FIFO"):
        atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert list(tmp_path.iterdir()) == [fifo]  # no temp file left


def test_the_writer_refuses_a_character_device(tmp_path):
    device = _null_device(tmp_path)
    with pytest.raises(UsageError, match="is a character device"):
        atomic_write_text(device, "x")
    assert stat.S_ISCHR(os.stat(device).st_mode)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["device", "link to /dev/null", "fifo"])
def test_baseline_refuses_what_is_not_a_regular_file(run_dir, tmp_path, capsys, target):
    if target == "device":
        path = _null_device(tmp_path)
    elif target == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    else:  # renaming onto the link replaces the link, never /dev/null itself, even on code without the guard
        path = tmp_path / "null-link"
        path.symlink_to("/dev/null")
    before = os.stat(path).st_mode
    assert main(["baseline", str(run_dir), "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("irisbench: error: refusing to replace") and err.count("\n") == 1
    assert os.stat(path).st_mode == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_poison_force_refuses_a_fifo(tmp_path, capsys):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    assert main(["poison", "--out", str(fifo), "--force"]) == 2
    assert capsys.readouterr().err.startswith("irisbench: error: refusing to replace")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, like a user's shell would."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "new.txt", "x")
    atomic_write_text(tmp_path / "new.txt", "y")  # replacing a file too
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == mode


@pytest.mark.slow
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_every_output_of_a_run_follows_the_umask(in_tmp, umask, mask, mode):
    umask(mask)
    assert main(["run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--levels", "0,10", "--out", "run"]) == 0
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (in_tmp / "run").rglob("*") if path.is_file()}
    assert "poison_accuracy_plot.png" in modes and "results.csv" in modes
    assert modes == dict.fromkeys(modes, mode)


def test_two_runs_never_claim_the_same_out_folder(tmp_path):
    """Two threads race prepare_out_dir on one folder, new or existing and empty: exactly one wins each time."""
    barrier = threading.Barrier(2)
    outcomes: list[list[str]] = [[], []]

    def claim(who: int) -> None:
        for i in range(150):
            folder = tmp_path / f"out{i}"
            barrier.wait()
            try:
                prepare_out_dir(str(folder))
                outcomes[who].append("won")
            except UsageError as exc:
                outcomes[who].append(str(exc))

    for i in range(0, 150, 2):  # every other folder exists already, empty
        (tmp_path / f"out{i}").mkdir()
    threads = [threading.Thread(target=claim, args=(who,)) for who in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    both = [i for i, pair in enumerate(zip(*outcomes)) if pair == ("won", "won")]
    assert not both, f"both runs claimed {len(both)} of 150 folders"
    assert all(pair.count("won") == 1 for pair in zip(*outcomes)), outcomes


def test_a_claimed_folder_is_released_when_the_run_fails_to_start(in_tmp, capsys):
    """A start-up failure (here: an unreachable tracking server) leaves the folder as it was."""
    (in_tmp / "empty").mkdir()
    for out in ("empty", "new"):
        assert main(["run", "--out", out, "--tracking-uri", "http://127.0.0.1:9", "--seeds", "2"]) == 2
    assert "does not answer" in capsys.readouterr().err
    assert list(in_tmp.iterdir()) == [in_tmp / "empty"] and not any((in_tmp / "empty").iterdir())


def _mount_small_disk(folder, size="300k"):
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill it ({result.stderr.strip() or 'mount failed'})")


def _fill(folder, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - leave))


@pytest.mark.slow
def test_a_full_disk_during_the_grid_is_one_line_and_resumable(tmp_path):
    disk = tmp_path / "disk"
    _mount_small_disk(disk)
    try:
        _fill(disk, leave=8192)  # run.json fits, the checkpoint does not
        run = disk / "run"
        result = subprocess.run([*CLI, "run", "--no-mlflow", "--jobs", "1", "--out", str(run)],
                                capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert errors(result.stderr) == (f"irisbench: error: disk full while writing to {run}; free space and continue "
                                 f"with: irisbench run --resume {run}\n")
        assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]

        (disk / "filler").unlink()
        resumed = subprocess.run([*CLI, "run", "--resume", str(run), "--no-mlflow", "--jobs", "1"],
                                 capture_output=True, text=True, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert (run / "results.csv").is_file() and (run / "poison_accuracy_plot.png").is_file()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_disk_too_full_for_run_json_leaves_the_folder_reusable(tmp_path):
    """The claim fits but the run's first run.json does not: nothing to resume, so say run again."""
    disk = tmp_path / "disk"
    _mount_small_disk(disk)
    try:
        _fill(disk, leave=4096)
        run = disk / "run"
        command = [*CLI, "run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--levels", "0,10", "--out", str(run)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert errors(result.stderr) == (f"irisbench: error: disk full while writing {run / 'run.json'}; nothing was "
                                 "computed, free space and run again\n")
        assert list(run.iterdir()) == []
        (disk / "filler").unlink()
        assert subprocess.run(command, capture_output=True, cwd=tmp_path).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_file_too_large_while_writing_outputs_is_one_line(tmp_path):
    """RLIMIT_FSIZE (EFBIG) stops the first figure; the text outputs before it are smaller."""
    run = tmp_path / "run"
    result = subprocess.run([*CLI, "run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--levels", "0,10",
                             "--out", str(run)], capture_output=True, text=True, cwd=tmp_path,
                            preexec_fn=_limit_file_size(20_000))
    assert result.returncode == 1, result.stderr
    assert errors(result.stderr) == (f"irisbench: error: disk full while writing {run / 'poison_accuracy_plot.png'}; "
                             f"free space and continue with: irisbench run --resume {run}\n")
    assert (run / "run.json").is_file()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
