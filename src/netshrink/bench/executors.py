"""Where trials run: a local process pool, a Ray cluster, or this process.

Each executor keeps at most `workers` trials in flight, calls `started(spec)` as it hands one
out, and yields rows as trials finish (in finishing order). Trials of the pool and of Ray run
with one torch thread each, so `workers` trials use `workers` cores.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from netshrink.bench import tasks
from netshrink.bench.spec import TrialSpec
from netshrink.bench.sweep import (
    EXECUTORS,
    commit,
    execute,
    lost_row,
    new_staging,
    run_trial,
    trial_folder,
)
from netshrink.errors import NetshrinkError

Started = Callable[[TrialSpec], None]
RAY_HINT = "pip install 'netshrink[ray]'"


def create(
    name: str,
    workers: int | None,
    address: str | None,
) -> SerialExecutor | LocalExecutor | RayExecutor:
    """The executor `name`, checked before anything runs."""
    if name not in EXECUTORS:
        raise NetshrinkError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise NetshrinkError(f"workers={workers!r} must be a positive integer")
    if address is not None and name != "ray":
        raise NetshrinkError(f"address={address!r} only applies to executor 'ray'")
    if name == "ray":
        return RayExecutor(workers, address)
    if name == "serial":
        if workers not in (None, 1):
            raise NetshrinkError(f"executor 'serial' runs one trial at a time, not {workers}")
        return SerialExecutor()
    return LocalExecutor(workers or 1)


class SerialExecutor:
    """Trials one after another in this process (debugging; tasks defined in a notebook)."""

    def describe(self) -> str:
        return "serial, in this process"

    def run(self, specs: Sequence[TrialSpec], out: Path, started: Started) -> Iterator[dict]:
        for spec in specs:
            started(spec)
            yield run_trial(spec, out)


def _init_worker(parent: int) -> None:
    """Pool worker setup: one torch thread, and die with the sweep (Linux)."""
    import torch

    torch.set_num_threads(1)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a killed sweep leaves no
    orphan writing into the folder a resumed sweep is using."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _pool_trial(spec: dict, task_module: str, out: str) -> dict:
    return run_trial(TrialSpec.from_dict(spec), Path(out), task_module)


class LocalExecutor:
    """A pool of `workers` processes (spawned, so every worker starts clean)."""

    def __init__(self, workers: int):
        self.workers = workers

    def describe(self) -> str:
        return f"local, {self.workers} worker process{'es' if self.workers > 1 else ''}"

    def run(self, specs: Sequence[TrialSpec], out: Path, started: Started) -> Iterator[dict]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        queue = collections.deque(specs)
        pending: dict[Future, TrialSpec] = {}
        pool = None
        try:
            while queue or pending:
                if pool is None:
                    pool = ProcessPoolExecutor(
                        self.workers, mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker, initargs=(os.getpid(),))
                while queue and len(pending) < self.workers:
                    spec = queue.popleft()
                    started(spec)
                    pending[pool.submit(_pool_trial, spec.to_dict(),
                                        tasks.module_of(spec.task), str(out))] = spec
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    spec = pending.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield lost_row(spec, "worker lost: a worker process died (killed or out "
                                       "of memory); run the sweep again to retry")
                    except Exception as err:
                        yield lost_row(spec, f"worker lost: {type(err).__name__}: {err}")
                if broken:  # every trial still in the broken pool is lost too
                    for future, spec in list(pending.items()):
                        del pending[future]
                        yield lost_row(spec, "worker lost: the process pool broke; run the "
                                       "sweep again to retry")
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = None
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _ray_trial(spec: dict, task_module: str, sweep: str) -> tuple[dict, dict[str, bytes]]:
    """Run a trial on a Ray worker in a private folder; return its row and its files, so the
    driver writes them into the sweep folder whether or not the nodes share a file system."""
    import torch

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="netshrink-trial-"))
    try:
        row = execute(TrialSpec.from_dict(spec), root, task_module, sweep=sweep)
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
        return row, files
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _materialize(out: Path, spec: TrialSpec, files: dict[str, bytes]) -> dict:
    """Write a Ray trial's files into a staging folder and commit it."""
    staging = new_staging(out, spec.trial_id)
    try:
        for name, content in files.items():
            path = (staging / name).resolve()
            if staging.resolve() not in path.parents:
                raise NetshrinkError(f"trial {spec.trial_id} returned a file outside its folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return commit(staging, trial_folder(out, spec.trial_id))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class RayExecutor:
    """Trials as Ray tasks of one CPU each: a local instance, or a cluster (address="auto")."""

    def __init__(self, workers: int | None, address: str | None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise NetshrinkError(f"executor 'ray' needs Ray: {RAY_HINT}") from None
        self.workers, self.address = workers, address

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else "local instance"
        return f"ray, {where}, {self.workers or 'all'} workers"

    def run(self, specs: Sequence[TrialSpec], out: Path, started: Started) -> Iterator[dict]:
        import logging

        import ray

        owner = not ray.is_initialized()
        if owner and specs:
            options = {"include_dashboard": False, "log_to_driver": False,
                       "logging_level": logging.WARNING}
            if self.address:
                try:
                    ray.init(address=self.address, **options)
                except ConnectionError as err:
                    raise NetshrinkError(
                        f"no Ray cluster at address={self.address!r} ({err}); start one with "
                        "`ray start --head`, or leave the address out to start Ray here"
                    ) from None
            else:
                ray.init(num_cpus=self.workers, **options)
        pending: dict = {}
        try:
            if not specs:
                return
            limit = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
            queue = collections.deque(specs)
            while queue or pending:
                while queue and len(pending) < limit:
                    spec = queue.popleft()
                    started(spec)
                    pending[remote.remote(spec.to_dict(), tasks.module_of(spec.task),
                                          str(Path(out).resolve()))] = spec
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        _, files = ray.get(ref)
                    except Exception as err:  # the worker died or Ray failed the task
                        yield lost_row(spec, f"worker lost: {type(err).__name__}: "
                                       f"{str(err).splitlines()[0] if str(err) else ''}")
                        continue
                    yield _materialize(out, spec, files)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if owner and ray.is_initialized():
                ray.shutdown()
