"""Atomic file writes: a temp file beside the target, renamed over it, so a kill never leaves half a file.

Used by the file sinks and by ``irisbench baseline``/``check --save``; it knows nothing of runs.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

from irisbench.errors import UsageError

#: errors that mean "no room": a full disk, a full quota, or a file size limit (RLIMIT_FSIZE)
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def check_replaceable(path: Path) -> None:
    """Refuse a target that exists and is not a regular file (a device, a FIFO, a folder).

    The atomic rename would replace it: ``-o /dev/null`` as root once turned /dev/null into a file.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise UsageError(f"refusing to replace {path}: it is {kind}; outputs are written only to regular files")


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new temp file beside ``path``, created with mode 0666 so the kernel applies the umask.

    ``tempfile.mkstemp`` always creates 0600, and the rename would keep that mode.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_open(path: Path, mode: str = "w"):
    """Yield a handle on a temp file that replaces ``path`` when the block ends without error.

    A kill never leaves a half-written file. An OSError names ``path`` (a write on a file
    object carries no file name), so a full disk can be reported as such.
    """
    path = Path(path)
    check_replaceable(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno is not None and (exc.filename is None or Path(exc.filename) == tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temp file and rename (see ``atomic_open``)."""
    with atomic_open(path) as handle:
        handle.write(text)
