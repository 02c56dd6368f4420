"""A sink in a process of its own (``Sink.background``), so that its slow start is off the critical path.

MLflow's start is ~1 s of imports and 0.5-1.5 s more to open (or create) a sqlite store: longer
than the whole compute of the default grid. Started in the driver it came first; in a child
process it runs while the driver checks the data, computes and writes the files.

The child runs ``prepare`` at once, then ``start``, ``write`` or ``abort`` as the driver sends them.
It ignores Ctrl-C and SIGTERM (the driver decides, and tells it to abort), and when the driver dies
without a word (SIGKILL) its end of the pipe closes: the child aborts with "KILLED" and exits.
"""

from __future__ import annotations

import signal

from irisbench.errors import SinkStartError, UsageError, describe_exception
from irisbench.processes import context, forking, portable, release_signals

#: seconds an aborting driver waits for the child to end what it opened before killing it
ABORT_SECONDS = 15.0


class BackgroundSink:
    """Stands in the driver for a sink that runs in a child process; same methods as a Sink."""

    def __init__(self, sink, spec) -> None:
        self.sink = sink
        self.name = sink.name
        self.writes_files = sink.writes_files
        ctx = context()
        self._conn, theirs = ctx.Pipe()
        # not a daemon, so that the sink may start processes of its own; it ends itself when the
        # driver goes (its pipe closes), and the driver kills it after ABORT_SECONDS at most
        self._process = ctx.Process(target=_serve, args=(theirs, self._conn, sink, spec),
                                    name=f"irisbench-sink-{sink.name}")
        with forking():
            self._process.start()
        theirs.close()
        self._error: BaseException | None = None  # prepare or start failed: raised by check() and write()
        self._run_meta: dict = {}
        self._failed: BaseException | None = None  # raised by write(): a failure of this sink alone
        self._start_sent = self._started = self._sent = self._done = False

    # ----------------------------------------------------------------- driver side
    def preflight(self, spec) -> None:
        self.sink.preflight(spec)  # here, in the driver: quick, and its error is the user's to see now

    def start(self, spec, out_dir) -> None:
        self._post("start", out_dir)
        self._start_sent = True

    def check(self) -> None:
        """Raise what stops the run (the child's start failed, or it died starting); never waits."""
        self._pump()
        if self._error is not None:
            raise self._error

    def run_meta(self) -> dict:
        """What the sink's ``run_meta()`` said once started (MLflow's parent run id); {} until then."""
        self.check()
        return dict(self._run_meta)

    def send(self, record, out_dir) -> None:
        """Ship the record: the child runs the sink's ``send`` with it while the driver writes the files."""
        self.check()
        if self._failed is not None:
            raise self._failed
        self._post("send", record, out_dir)
        self._sent = True

    def write(self, record, out_dir) -> list:
        """Wait for the child to write the record (sent now, or only its meta if ``send`` shipped it).

        What it set in ``record.meta`` comes back.
        """
        from irisbench.sinks.terminal import status

        try:
            self.check()
            if self._failed is None:
                self._post("write", record.meta if self._sent else record, out_dir)
                with status(self._waiting_for()):
                    reply = self._pump(until="written")
            if self._error is not None or self._failed is not None:
                raise self._error or self._failed
        finally:
            self._finish()
        _, paths, meta = reply
        record.meta.clear()
        record.meta.update(meta)
        return paths

    def _waiting_for(self) -> str:
        """What the driver says while it waits: the sink's own words for its start, if it is still starting."""
        starting = getattr(self.sink, "starting_message", None)
        return starting if starting and not self._started else f"waiting for output {self.name!r}"

    def abort(self, status: str) -> None:
        """Tell the child to end what it opened; kill it if it does not within ABORT_SECONDS."""
        if self._done:
            return
        if not self._start_sent:  # it only prepared (imports), which leaves nothing to end: no need to wait
            self._process.kill()
            self._finish()
            return
        try:
            self._post("abort", status)
            if not self._done and self._conn.poll(ABORT_SECONDS):
                self._pump(until="aborted")
        except Exception:  # noqa: BLE001, S110 - already failing: nothing more to do
            pass
        self._finish()

    def _pump(self, until: str | None = None) -> tuple | None:
        """Take the child's messages: those waiting now, or up to the ``until`` reply (returned).

        None when the child stopped before it: after reporting an error, or dying unannounced.
        """
        while not self._done and (until is not None or self._conn.poll()):
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._died()
                return None
            self._take(message)
            if message[0] == until:
                return message
            if message[0] == "error" and until is not None:  # the child stops after reporting one
                return None
        return None

    def _take(self, message: tuple) -> None:
        kind, *rest = message
        if kind == "started":
            self._run_meta, self._started = rest[0], True
        elif kind == "error":
            stage, exc = rest
            if stage in ("sent", "written") or (stage == "prepared" and not isinstance(exc, UsageError)):
                self._failed = exc  # the sink fails alone, when it writes (matplotlib would not import)
            else:  # the user's settings are wrong (an MLflow store that cannot be used): the run stops
                self._error = SinkStartError(str(exc) if isinstance(exc, UsageError) else
                                             f"output {self.name!r} could not start: {describe_exception(exc)}")
        # "prepared", "sent" and "aborted" need nothing

    def _post(self, *message) -> None:
        """Send to the child; a child that is gone is noted (check and write say so), not raised here."""
        if self._done:
            return
        try:
            self._conn.send(message)
        except (OSError, EOFError):
            self._pump()  # what it said before going
            self._died()

    def _died(self) -> None:
        """The child is gone. Unless it said why, that fails the sink, or stops the run if it had not started."""
        self._finish()
        if self._error is None and self._failed is None:
            died = f"the process of output {self.name!r} stopped unexpectedly (exit code {self._process.exitcode})"
            if self._sent:
                self._failed = RuntimeError(died)
            else:
                self._error = SinkStartError(f"{died}; run again")

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._conn.close()
        self._process.join(ABORT_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# ----------------------------------------------------------------- child side
def _serve(conn, drivers_end, sink, spec) -> None:
    """The child: prepare, then follow the driver's messages until write or abort is done."""
    from irisbench.sinks import terminal

    drivers_end.close()  # a forked child holds a copy: without closing it, EOF would never come
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    release_signals()
    terminal.silence()  # the driver owns the terminal (its progress bar)
    if not _step(conn, sink, "prepared", lambda: sink.prepare(spec)):
        return
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):  # the driver died: end what was opened
            sink.abort("KILLED")
            return
        if kind == "start":
            out_dir = args[0]
            if not _step(conn, sink, "started", lambda: sink.start(spec, out_dir) or getattr(sink, "run_meta", dict)()):
                return
        elif kind == "send":
            record, out_dir = args
            if not _step(conn, sink, "sent", lambda: sink.send(record, out_dir)):
                return
        elif kind == "write":
            if isinstance(args[0], dict):  # the meta of the record ``send`` shipped, as the file sinks left it
                record.meta.clear()
                record.meta.update(args[0])
            else:
                record = args[0]
            out_dir = args[1]
            _step(conn, sink, "written", lambda: [sink.write(record, out_dir) or [], record.meta], unpack=True)
            return
        elif kind == "abort":
            _step(conn, sink, "aborted", lambda: sink.abort(args[0]))
            return


def _step(conn, sink, done: str, call, unpack: bool = False) -> bool:
    """Run ``call``; send ``(done, result)`` or ``("error", done, exc)``. True when it succeeded and was told.

    A driver that died meanwhile cannot be told: what the sink opened is ended as KILLED.
    """
    try:
        result = call()
    except BaseException as exc:  # noqa: BLE001 - a sink is plugin code; the driver reports its error
        message, ok = ("error", done, portable(exc)), False
    else:
        message, ok = ((done, *result) if unpack else (done, result)), True
    try:
        conn.send(message)
    except OSError:  # the driver is gone
        sink.abort("KILLED")
        return False
    return ok
