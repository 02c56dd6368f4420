"""How the cost grows with the rows of a dataset and with the cells of a grid (issue 12), with peak memory per worker.

    .venv/bin/python benchmarks/scaling.py              # rows 1e3..1e6, cells 40/160/640, 3 repetitions (~1.5 min)
    .venv/bin/python benchmarks/scaling.py --quick      # 1 repetition, cells 40/160 (~30-40 s)
    .venv/bin/python benchmarks/scaling.py --only rows --jobs 1 --keep

Every run is a whole ``irisbench run --no-mlflow`` process (``--jobs 2`` by default), timed with a
wall clock; compute is ``compute_seconds`` from its run.json (the grid from the first task sent to
the last result, workers' start included). With several repetitions each figure is the median.

- Rows: ``synthetic[n_samples=N]`` (20 features, 3 classes) for N = 1e3, 1e4, 1e5, 1e6; attack
  gaussian, defense none, model logistic_regression, levels 0 and 10, 2 seeds: 8 cells in 4 tasks,
  so both workers are busy. One copy of the data is X.nbytes + y.nbytes = N x (20 x 8 + 8) bytes.
- Cells: iris; attacks gaussian, label_flip; defense none; models decision_tree,
  logistic_regression; levels 0, 10; 5, 20, 80 seeds = 40, 160, 640 cells.

Memory: while a run goes on, /proc is read every 50 ms for the processes below the driver (its
workers; loky's resource tracker, a few MB, is left out). Per worker: the peak resident set
(``VmHWM``), which also counts pages the worker shares: those it inherited from the driver when
forked, and those of a memory-mapped file that every worker reads through one page cache; the peak
private memory (USS: Private_Clean + Private_Dirty of ``smaps_rollup``), what this worker alone
costs; and the peak proportional set size (PSS: shared pages divided among their sharers). USS and
PSS are sampled, so a peak shorter than 50 ms can be missed. The table gives the largest worker's
figures (each column its own maximum), and the driver's own VmHWM.

Nothing is written into the repository: run folders and logs live in a temporary folder (the
working directory of every subprocess; removed at the end unless --keep). The machine may be
shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from grid import irisbench_exe, log, release, run_json, versions

HERE = Path(__file__).resolve().parent
N_FEATURES = 20  # the synthetic dataset's default
ROWS = {
    "sizes": (1_000, 10_000, 100_000, 1_000_000),
    "flags": ["--attack", "gaussian", "--defense", "none", "--model", "logistic_regression",
              "--levels", "0,10", "--seeds", "2", "--seed", "0"],
    "cells": 8,
}
CELLS = {
    "seeds": (5, 20, 80),
    "quick_seeds": (5, 20),
    "flags": ["--dataset", "iris", "--attack", "gaussian,label_flip", "--defense", "none",
              "--model", "decision_tree,logistic_regression", "--levels", "0,10", "--seed", "0"],
    "cells_per_seed": 8,
}
POLL = 0.05


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process /proc shows."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _status(pid: int) -> dict | None:
    """Peak RSS (VmHWM), private (USS) and proportional (PSS) memory in kB, and whether the process is
    loky's resource tracker; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            status = dict(line.split(":", 1) for line in handle if ":" in line)
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            rollup = dict(line.split(":", 1) for line in handle if line[0].isupper() and ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except (OSError, ValueError):
        return None

    def kb(fields, key):
        return int(fields[key].split()[0]) if key in fields else 0

    return {"hwm": kb(status, "VmHWM"), "uss": kb(rollup, "Private_Clean") + kb(rollup, "Private_Dirty"),
            "pss": kb(rollup, "Pss"), "tracker": b"resource_tracker" in cmdline}


def measured_run(cmd: list[str], cwd: Path, log_file: Path) -> dict:
    """Run ``cmd``; return its wall time and the peak memory (MB) of the driver and of its largest worker."""
    workers: dict[int, dict] = {}
    driver_hwm = 0
    with open(log_file, "w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            status = _status(process.pid)
            if status is not None:
                driver_hwm = max(driver_hwm, status["hwm"])
            for pid in _descendants(process.pid):
                status = _status(pid)
                if status is None or status["tracker"]:
                    continue
                peak = workers.setdefault(pid, {"hwm": 0, "uss": 0, "pss": 0})
                for key in peak:
                    peak[key] = max(peak[key], status[key])
            time.sleep(POLL)
        wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {process.returncode}\n{log_file.read_text()[-2000:]}")
    return {"wall": wall, "driver_mb": driver_hwm / 1024, "n_workers": len(workers),
            **{f"worker_{key}_mb": max((p[key] for p in workers.values()), default=0) / 1024
               for key in ("hwm", "uss", "pss")}}


class Bench:
    def __init__(self, tmp: Path, jobs: int, backend: str = "loky"):
        self.tmp, self.jobs, self.backend, self.exe, self.count = tmp, jobs, backend, irisbench_exe(), 0

    def run(self, flags: list[str]) -> dict:
        self.count += 1
        out = self.tmp / f"run{self.count}"
        result = measured_run([self.exe, "run", "--no-mlflow", "--jobs", str(self.jobs), "--backend", self.backend,
                               "--out", str(out), *flags],
                              self.tmp, self.tmp / f"run{self.count}.log")
        timings = run_json(out)["timings"]
        result["compute"] = timings["compute_seconds"]
        result["total"] = timings["total_seconds"]
        return result


def median_of(results: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def table(title: str, first: str, rows: list[tuple[str, int, float | None, dict]]) -> list[str]:
    """One line per point; with the data's size known, the worker's private memory beyond the smallest
    point's (an idle worker, in effect) in copies of the data."""
    sized = rows[0][2] is not None
    lines = [title, f"  {first:>10} {'cells':>6} {'wall s':>8} {'compute s':>10} {'ms/cell':>9} {'RSS MB':>7} "
                    f"{'USS MB':>7} {'PSS MB':>7} {'driver MB':>10}"
             + (f" {'one copy MB':>12} {'USS+ copies':>12}" if sized else ""), "  " + "-" * (94 + 26 * sized)]
    for label, cells, copy_mb, r in rows:
        per_cell = 1000 * r["compute"] / cells
        line = (f"  {label:>10} {cells:6d} {r['wall']:8.2f} {r['compute']:10.2f} {per_cell:9.2f} "
                f"{r['worker_hwm_mb']:7.0f} {r['worker_uss_mb']:7.0f} {r['worker_pss_mb']:7.0f} {r['driver_mb']:10.0f}")
        if sized:
            extra = (r["worker_uss_mb"] - rows[0][3]["worker_uss_mb"]) / copy_mb
            line += f" {copy_mb:12.1f} {extra:12.2f}"
        lines.append(line)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="How irisbench's cost grows with rows and cells (issue 12).")
    parser.add_argument("--quick", action="store_true", help="1 repetition, the cells table up to 160 cells")
    parser.add_argument("--repeats", type=int, help="repetitions per point (default 3; --quick: 1)")
    parser.add_argument("--only", choices=("rows", "cells"), help="measure one of the two tables")
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky",
                        help="--backend of every run (dask: a LocalCluster; its nannies count as workers too)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of every run (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (run folders, logs)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1 or args.jobs < 1:
        parser.error("--repeats and --jobs must be at least 1")

    started = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="irisbench-scaling-"))
    try:
        bench = Bench(tmp, args.jobs, args.backend)
        log(f"temporary folder {tmp}")
        rows_table, cells_table = [], []
        for n in ROWS["sizes"] if args.only != "cells" else ():
            log(f"rows: synthetic n_samples={n}")
            result = median_of([bench.run(["--dataset", f"synthetic[n_samples={n}]", *ROWS["flags"]])
                                for _ in range(repeats)])
            rows_table.append((f"{n:.0e}", ROWS["cells"], n * (N_FEATURES * 8 + 8) / 2**20, result))
        for seeds in CELLS["quick_seeds" if args.quick else "seeds"] if args.only != "rows" else ():
            cells = seeds * CELLS["cells_per_seed"]
            log(f"cells: iris, {cells} cells")
            result = median_of([bench.run([*CELLS["flags"], "--seeds", str(seeds)]) for _ in range(repeats)])
            cells_table.append((f"{seeds} seeds", cells, None, result))
        load_after = os.getloadavg()
    except RuntimeError as exc:
        print(f"scaling: {exc}", file=sys.stderr)
        return 2
    finally:
        release(tmp, args.keep)

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"irisbench scaling benchmark (issue 12), {date}",
           f"command: {' '.join(['benchmarks/scaling.py', *(argv if argv is not None else sys.argv[1:])])}",
           f"machine: {os.cpu_count()} CPUs (usable {len(os.sched_getaffinity(0))}), --jobs {args.jobs}, "
           f"--backend {args.backend}, "
           f"{repeats} repetition(s) per point (medians)",
           "packages: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
           "load average (1, 5, 15 min): " + " / ".join(f"{x:.2f}" for x in load_before) + " at start, "
           + " / ".join(f"{x:.2f}" for x in load_after) + f" at end; {time.perf_counter() - started:.0f} s in all",
           "per worker, the largest of the run's workers: RSS = peak resident set (VmHWM; counts pages shared with "
           "the driver or other workers), USS = peak private memory, PSS = peak proportional share (both sampled "
           "every 50 ms from smaps_rollup); driver MB: the driver's VmHWM", ""]
    if rows_table:
        out += table("Rows: synthetic (20 features, 3 classes), gaussian x none x logistic_regression x levels 0, "
                     "10 x 2 seeds", "rows", rows_table)
        out.append("USS+ copies: the worker's peak USS minus that of the 1e3-row run, over one copy of the data")
        out.append("")
    if cells_table:
        out += table("Cells: iris, gaussian, label_flip x none x decision_tree, logistic_regression x levels 0, 10",
                     "seeds", cells_table)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
