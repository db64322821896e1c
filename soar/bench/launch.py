"""Where a sweep's runs execute: a local process pool or a Ray cluster; each run is one ``soar train`` process.

Both launchers take ``(name, argv, log_file)`` jobs and return each job's exit status. A
run is a separate Python process with one torch thread, so the local pool and a Ray task
(``num_cpus=1``) alike use one core per run. On a cluster every node needs this package
installed (a Ray task calls ``python -m soar`` in the driver's working directory, which
must exist there) and the sweep folder and demonstration files on a filesystem every node
shares, at the same absolute paths (``soar bench`` passes absolute paths).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Iterable

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Job:
    """One process to run: ``python -m soar ARGV``, its output appended to ``log``."""

    name: str
    argv: tuple[str, ...]
    log: str


def _run_process(argv: tuple[str, ...], log: str, cwd: str, running: dict | None = None) -> int:
    """Run ``python -m soar argv`` in ``cwd`` with its output appended to ``log``; its exit status.

    ``running`` (local pool) maps the job to its process while it runs, so an interrupted
    sweep can stop it.
    """
    os.makedirs(os.path.dirname(log), exist_ok=True)
    # One thread per run: small networks, and the other cores belong to the other runs.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "a") as output:
        process = subprocess.Popen([sys.executable, "-m", "soar", *argv], stdout=output, stderr=subprocess.STDOUT,
                                   cwd=cwd, env=env)
        if running is not None:
            running[log] = process
        try:
            return process.wait()
        finally:
            if running is not None:
                running.pop(log, None)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and schedulers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_local(jobs: Iterable[Job], workers: int | None = None, progress: bool = True,
              on_done: Callable[[Job, int], None] | None = None) -> dict[str, int]:
    """Run ``jobs`` on this machine, ``workers`` at a time (default: one per usable core); exit status by name.

    Interrupted (Ctrl-C, or SIGTERM under :func:`agents.config.sigterm_as_interrupt`), it starts
    no further job and stops the running ones (each keeps its last checkpoint) before raising.
    """
    jobs = list(jobs)
    workers = max(1, int(workers or usable_cores()))
    status: dict[str, int] = {}
    running: dict[str, subprocess.Popen] = {}
    cwd = os.getcwd()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with tqdm(total=len(jobs), disable=not progress, desc="runs", unit="run") as bar:
            futures = {pool.submit(_run_process, job.argv, job.log, cwd, running): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                status[job.name] = future.result()
                if on_done is not None:
                    on_done(job, status[job.name])
                bar.update()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(running.values()):
            process.terminate()
        for process in list(running.values()):
            process.wait()
        raise
    pool.shutdown()
    return status


def run_ray(jobs: Iterable[Job], address: str, progress: bool = True,
            on_done: Callable[[Job, int], None] | None = None) -> dict[str, int]:
    """Run ``jobs`` as Ray tasks of one CPU each on the cluster at ``address`` (``local``: start one here)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--launcher ray needs the optional 'ray' package: pip install 'soar-mail[ray]' "
                         "(or make bench)") from None
    jobs = list(jobs)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_run_process)
        cwd = os.getcwd()
        pending = {task.remote(job.argv, job.log, cwd): job for job in jobs}
        status = {}
        with tqdm(total=len(jobs), disable=not progress, desc="runs (ray)", unit="run") as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                try:
                    status[job.name] = int(ray.get(done[0]))
                except ray.exceptions.RayError as error:  # a lost worker or node: a failed run, retried like any
                    print(f"soar bench: {job.name} failed in Ray: {str(error).splitlines()[0]}", file=sys.stderr)
                    status[job.name] = -1
                if on_done is not None:
                    on_done(job, status[job.name])
                bar.update()
        return status
    finally:
        if started_here:
            ray.shutdown()
