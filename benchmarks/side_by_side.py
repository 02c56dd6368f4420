"""Side by side with the scripts irisbench replaces: the figures of issue 12, measured in one run, with targets.

    .venv/bin/python benchmarks/side_by_side.py              # 5 repetitions (~10 min on 2 cores)
    .venv/bin/python benchmarks/side_by_side.py --quick      # 1 repetition, 144-cell grid: a smoke test (~1 min)
    .venv/bin/python benchmarks/side_by_side.py --repeats 3 --keep

Everything is a whole process (``sys.executable`` or the venv's ``irisbench``), timed with a wall
clock; the two sides of each comparison run back to back, in alternating order (A then B in one
repetition, B then A in the next), and every figure is the median over repetitions of the
per-repetition ratio (or time). Per repetition:

- Default experiment, fresh store: ``irisbench run`` (DT, iris, gaussian 0/5/10/50 %, 10 seeds,
  MLflow in a new sqlite store) against ``benchmarks/plain_script.py`` (the same work written
  plainly, in a new sqlite store of its own). Target: irisbench / plain <= 0.75.
- The same, existing store: both run a second time, each into the store its first run created.
  Target: <= 0.6.
- ``irisbench run --no-mlflow``: wall time, target <= 2.0 s. For context, the bare interpreter and
  ``python -c "import numpy, sklearn"`` are timed too.
- The 360-cell grid (gaussian, label_flip x none, isolation, label_sanitization x decision_tree,
  logistic_regression, knn, random_forest x 0/10/50 % x 5 seeds), each side with MLflow on a fresh
  store: ``benchmarks/naive_loop.py`` against ``irisbench run`` (default ``--jobs``). Targets:
  naive / irisbench >= 3, and irisbench's wall time minus its ``compute_seconds`` (run.json) <= 2 s.
- Startup, after one warm-up: median wall time of ``irisbench --help`` and ``irisbench plugins``
  (7 runs each, 3 with --quick), target <= 0.3 s each.

For every irisbench run the run.json timings are printed. In the driver, one after the other:
compute, files (the file sinks), elsewhere (waiting for the background MLflow process after the
files), total; "rest" = total minus those three, what run.json does not attribute (imports, checking
the data, planning); "outside" = wall - total, the interpreter and imports before irisbench's clock
starts. Then, in brackets, the MLflow process's own clock, which overlaps the driver's: mlflow_start
(importing mlflow, opening the store and the parent run) and mlflow (logging), and each file sink's
seconds. The
results are checked side by side, not asserted: the plain script's mean accuracy per level next to
irisbench's summary (different splits and noise, so only statistically alike), and the naive loop's
accuracy against irisbench's cell by cell (same seeds by construction, so they should be equal).

Nothing is written into the repository: run folders, stores and logs live in a temporary folder
(the working directory of every subprocess; removed at the end unless --keep). Exits 1 when a
target is missed, like ``benchmarks/grid.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from grid import (cell_key, compare_accuracy, irisbench_exe, log, read_rows, release, run_json, timed_process,
                  versions)

HERE = Path(__file__).resolve().parent
PLAIN = HERE / "plain_script.py"
NAIVE = HERE / "naive_loop.py"

GRID = {
    "attacks": ("gaussian", "label_flip"),
    "defenses": ("none", "isolation", "label_sanitization"),
    "models": ("decision_tree", "logistic_regression", "knn", "random_forest"),
    "levels": (0, 10, 50),
    "seeds": 5,
}
QUICK_SEEDS = 2
#: figure -> (label, comparison, target, unit)
TARGETS = {
    "fresh": ("default run / plain script, fresh store", "<=", 0.75, "x"),
    "existing": ("default run / plain script, existing store", "<=", 0.6, "x"),
    "no_mlflow": ("default run --no-mlflow, wall time", "<=", 2.0, "s"),
    "naive": ("naive loop / irisbench, {cells} cells", ">=", 3.0, "x"),
    "not_compute": ("irisbench {cells} cells: wall - compute", "<=", 2.0, "s"),
    "help": ("irisbench --help, wall time", "<=", 0.3, "s"),
    "plugins": ("irisbench plugins, wall time", "<=", 0.3, "s"),
}
#: the driver's clock, parts one after the other, then the total
TIMINGS = ("compute_seconds", "files_seconds", "elsewhere_seconds", "total_seconds")
#: the MLflow process's clock, which overlaps the driver's
BACKGROUND = ("mlflow_start_seconds", "mlflow_seconds")


def verdict(name: str, value: float) -> str:
    _, op, target, _ = TARGETS[name]
    return "PASS" if (value <= target if op == "<=" else value >= target) else "MISS"


def store_uri(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Bench:
    """Runs the processes of one benchmark in a temporary folder and keeps every measurement."""

    def __init__(self, tmp: Path, seeds: int):
        self.tmp = tmp
        self.exe = irisbench_exe()
        self.grid = dict(GRID, seeds=seeds)
        self.cells = (len(self.grid["attacks"]) * len(self.grid["defenses"]) * len(self.grid["models"])
                      * len(self.grid["levels"]) * seeds)
        self.samples = {}  # figure -> list of per-repetition values
        self.lines = []  # per-run detail, printed in the report

    def timed(self, cmd: list[str], name: str) -> float:
        return timed_process(cmd, self.tmp, self.tmp / f"{name}.log")

    def engine(self, name: str, out: Path, flags: list[str]) -> tuple[float, dict]:
        wall = self.timed([self.exe, "run", "--out", str(out), *flags], name)
        timings = run_json(out)["timings"]
        parts = "  ".join(f"{key.removesuffix('_seconds')} " + (f"{timings[key]:.2f}" if key in timings else "-")
                          for key in TIMINGS)
        rest = timings["total_seconds"] - sum(timings.get(key, 0.0) for key in TIMINGS[:-1])
        aside = [f"{key.removesuffix('_seconds')} {timings[key]:.2f}" for key in BACKGROUND if key in timings]
        aside += [f"{sink} {seconds:.2f}" for sink, seconds in timings.get("sink_seconds", {}).items()]
        self.lines.append(f"  {name:<28} wall {wall:6.2f} s | run.json: {parts}, rest {rest:.2f} | outside "
                          f"{wall - timings['total_seconds']:.2f} | [{', '.join(aside)}]")
        return wall, timings

    def other(self, name: str, cmd: list[str]) -> float:
        wall = self.timed(cmd, name)
        self.lines.append(f"  {name:<28} wall {wall:6.2f} s")
        return wall

    def add(self, figure: str, value: float) -> None:
        self.samples.setdefault(figure, []).append(value)

    def repetition(self, rep: int) -> None:
        engine_first = rep % 2 == 0
        folder = self.tmp / f"rep{rep}"
        engine_store, plain_store = store_uri(folder / "engine-store"), store_uri(folder / "plain-store")
        for stage in ("fresh", "existing"):
            sides = [
                lambda: self.engine(f"rep{rep}-{stage}-irisbench", folder / f"engine-{stage}",
                                    ["--tracking-uri", engine_store])[0],
                lambda: self.other(f"rep{rep}-{stage}-plain", [sys.executable, str(PLAIN), "--tracking-uri",
                                                               plain_store, "--out", str(folder / f"plain-{stage}")]),
            ]
            if not engine_first:
                sides.reverse()
            first, second = (side() for side in sides)
            engine, plain = (first, second) if engine_first else (second, first)
            self.add(stage, engine / plain)
            self.add(f"{stage}_engine", engine)
            self.add(f"{stage}_plain", plain)

        wall, _ = self.engine(f"rep{rep}-no-mlflow", folder / "engine-no-mlflow", ["--no-mlflow"])
        self.add("no_mlflow", wall)

        g = self.grid
        grid_flags = ["--attack", ",".join(g["attacks"]), "--defense", ",".join(g["defenses"]),
                      "--model", ",".join(g["models"]), "--levels", ",".join(map(str, g["levels"])),
                      "--seeds", str(g["seeds"]), "--seed", "0"]
        naive_cmd = [sys.executable, str(NAIVE), "--tracking-uri", store_uri(folder / "naive-store"),
                     "--out", str(folder / "naive.csv"), "--attacks", ",".join(g["attacks"]),
                     "--defenses", ",".join(g["defenses"]), "--models", ",".join(g["models"]),
                     "--levels", ",".join(map(str, g["levels"])), "--seeds", str(g["seeds"])]
        engine_flags = [*grid_flags, "--tracking-uri", store_uri(folder / "grid-store")]
        if engine_first:
            engine, timings = self.engine(f"rep{rep}-grid-irisbench", folder / "engine-grid", engine_flags)
            naive = self.other(f"rep{rep}-grid-naive", naive_cmd)
        else:
            naive = self.other(f"rep{rep}-grid-naive", naive_cmd)
            engine, timings = self.engine(f"rep{rep}-grid-irisbench", folder / "engine-grid", engine_flags)
        self.add("naive", naive / engine)
        self.add("naive_naive", naive)
        self.add("naive_engine", engine)
        self.add("not_compute", engine - timings["compute_seconds"])
        self.add("grid_compute", timings["compute_seconds"])

    def startup(self, runs: int) -> None:
        commands = {
            "help": [self.exe, "--help"],
            "plugins": [self.exe, "plugins"],
            "bare": [sys.executable, "-c", "pass"],
            "imports": [sys.executable, "-c", "import numpy, sklearn"],
        }
        for cmd in commands.values():
            timed_process(cmd, self.tmp)  # warm-up: file cache, .pyc
        for _ in range(runs):
            for name, cmd in commands.items():
                self.add(name, timed_process(cmd, self.tmp))

    def median(self, figure: str) -> float:
        return statistics.median(self.samples[figure])


def agreement(bench: Bench) -> list[str]:
    """The plain script's and irisbench's mean accuracy per level; the naive loop vs irisbench per cell."""
    folder = bench.tmp / "rep0"
    engine = {float(r["level"]): float(r["accuracy_mean"])
              for r in read_rows(folder / "engine-fresh" / "summary.csv")}
    plain = {float(r["level"]): float(r["accuracy_mean"]) for r in read_rows(folder / "plain-fresh" / "summary.csv")}
    lines = ["Results, side by side (first repetition; different splits and noise, so only statistically alike):",
             "  level   irisbench   plain script   (mean accuracy over 10 seeds)"]
    for level in sorted(set(engine) | set(plain)):
        nan = float("nan")
        lines.append(f"  {level:>4g} %  {engine.get(level, nan):>9.3f}   {plain.get(level, nan):>12.3f}")
    naive = {cell_key(r["dataset"], r["seed"], r["n_train"], r["attack"], r["level"], r["defense"], r["model"]):
             float(r["accuracy"]) for r in read_rows(folder / "naive.csv")}
    checked, differ = compare_accuracy(naive, read_rows(folder / "engine-grid" / "results.csv"))
    lines.append(f"  {bench.cells}-cell grid, naive loop vs irisbench (same seeds): {checked} cells compared, "
                 f"{differ} with a different accuracy")
    return lines


def report(bench: Bench, info: dict) -> tuple[str, bool]:
    out = [f"irisbench side-by-side benchmark (issue 12), {info['date']}, commit {info['commit']}",
           f"command: {info['command']}",
           f"machine: {info['cpus']} CPUs (usable {info['usable']}), {info['platform']}, Python {info['python']}",
           "packages: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
           "load average (1, 5, 15 min): " + " / ".join(f"{x:.2f}" for x in info["load_before"]) + " at start, "
           + " / ".join(f"{x:.2f}" for x in info["load_after"]) + " at end",
           f"repetitions: {info['repeats']} (alternating order), medians of per-repetition ratios; "
           f"grid: {bench.cells} cells", ""]
    m = bench.median
    basis = {
        "fresh": f"{m('fresh_engine'):.2f} s / {m('fresh_plain'):.2f} s (median walls)",
        "existing": f"{m('existing_engine'):.2f} s / {m('existing_plain'):.2f} s (median walls)",
        "no_mlflow": f"bare python {m('bare'):.2f} s, import numpy+sklearn {m('imports'):.2f} s",
        "naive": f"{m('naive_naive'):.2f} s / {m('naive_engine'):.2f} s (median walls)",
        "not_compute": f"{m('naive_engine'):.2f} s wall, {m('grid_compute'):.2f} s compute (medians)",
        "help": f"median of {len(bench.samples['help'])} runs",
        "plugins": f"median of {len(bench.samples['plugins'])} runs",
    }
    out.append(f"{'figure':<46} {'measured':>9} {'target':>9}  result  basis")
    out.append("-" * 120)
    passed = True
    for name, (label, op, target, unit) in TARGETS.items():
        value = m(name)
        result = verdict(name, value)
        passed &= result == "PASS"
        shown = f"{value:.2f}" + (" s" if unit == "s" else "")
        wanted = f"{op} {target:g}" + (" s" if unit == "s" else "")
        out.append(f"{label.format(cells=bench.cells):<46} {shown:>9} {wanted:>9}  {result:<6}  {basis[name]}")
    out.append("")
    out.append("Per repetition (ratios in order):")
    for name in ("fresh", "existing", "no_mlflow", "naive", "not_compute"):
        out.append(f"  {name:<12} " + ", ".join(f"{v:.2f}" for v in bench.samples[name]))
    out.append("")
    out.append("Every process (wall time; for irisbench also run.json timings in s):")
    out.extend(bench.lines)
    out.append("")
    out.extend(agreement(bench))
    return "\n".join(out), passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="irisbench vs the plain script and the naive loop (issue 12).")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: 1 repetition, the grid with {QUICK_SEEDS} seeds, 3 startup runs")
    parser.add_argument("--repeats", type=int, help="repetitions (default: 5; --quick: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (run folders, logs, stores)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")

    info = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
            "command": " ".join(["benchmarks/side_by_side.py", *(argv if argv is not None else sys.argv[1:])]),
            "cpus": os.cpu_count(), "usable": len(os.sched_getaffinity(0)), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions(), "repeats": repeats,
            "load_before": os.getloadavg()}
    tmp = Path(tempfile.mkdtemp(prefix="irisbench-side-"))
    try:
        bench = Bench(tmp, QUICK_SEEDS if args.quick else GRID["seeds"])
        log(f"temporary folder {tmp}")
        for rep in range(repeats):
            log(f"repetition {rep + 1}/{repeats}")
            bench.repetition(rep)
        log("startup")
        bench.startup(3 if args.quick else 7)
        info["load_after"] = os.getloadavg()
        text, passed = report(bench, info)
        print(text)
        return 0 if passed else 1
    except RuntimeError as exc:  # a failing subprocess: its command and log tail
        print(f"side_by_side: {exc}", file=sys.stderr)
        return 2
    finally:
        release(tmp, args.keep)


if __name__ == "__main__":
    sys.exit(main())
