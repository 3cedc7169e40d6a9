"""Where things run and land: the embedded defaults, or a cluster and tracking server from the environment.

- Ray: attaches to ``RAY_ADDRESS`` when set (a Ray job always has it), otherwise starts a new local instance.
- MLflow: ``MLFLOW_TRACKING_URI`` when set, otherwise a sqlite store ``WORKDIR/mlflow.db``.
- Data root: ``--data-root``, then the job's ``data.root``, then ``DRLIM_DATA_ROOT``, then ``WORKDIR/data``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.infrastructure.location import Location

if TYPE_CHECKING:
    from pipeline.infrastructure.tracking import Tracker

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "DRLIM_DATA_ROOT"

# This project's log lines, in the driver and in Ray's processes alike.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Among the lines Ray forwards from its processes to the driver's terminal, those not in LOG_FORMAT from this
# project's loggers: Ray's chatter and the tracebacks of errors that Ray handles (a worker's error that the
# driver then reports in one line, a cleaner thread's lost connection). Ray keeps them in its log files.
RAY_FORWARDED_NOISE = r"^(?!\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (pipeline|encoders)[.:])"


@dataclass(frozen=True)
class Runtime:
    workdir: Location  # stage outputs and checkpoints: a local folder or object storage
    data_root: Path
    tracking_uri: str

    @property
    def workspace(self) -> Path:
        """The driver's local folder for locks, plots and the default MLflow store (``Location.workspace``)."""
        return self.workdir.workspace

    @property
    def uses_local_store(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")

    def tracker(self) -> Tracker:
        """The MLflow boundary for this store; a local store keeps its artifacts in ``WORKSPACE/mlartifacts``."""
        from pipeline.infrastructure.tracking import Tracker

        return Tracker(self.tracking_uri, self.workspace / "mlartifacts" if self.uses_local_store else None)


def resolve_data_root(cli_root: str | None, job_root: str | None, workdir: Path) -> Path:
    for candidate in (cli_root, job_root, os.environ.get(DATA_ROOT_ENV)):
        if candidate:
            return Path(candidate).expanduser().resolve()
    return (workdir / "data").resolve()


def resolve_tracking_uri(workdir: Path) -> str:
    # Workers run in Ray's temp directory: the default store must be an absolute path.
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(workdir / 'mlflow.db').resolve()}"


def resolve_runtime(workdir: str | None, cli_data_root: str | None, job_data_root: str | None) -> Runtime:
    """Where a run reads and writes; ``workdir`` may be a local path or a URI (``location.py``)."""
    location = Location.of(workdir or os.getcwd())
    root = location.workspace
    root.mkdir(parents=True, exist_ok=True)
    location.filesystem()  # a location that cannot be opened fails now, in one line
    if root != Path(location.base):
        log.info(
            "Workdir %s: stage outputs and checkpoints there; locks, plots and the default MLflow store in %s",
            location,
            root,
        )
    return Runtime(
        workdir=location,
        data_root=resolve_data_root(cli_data_root, job_data_root, root),
        tracking_uri=resolve_tracking_uri(root),
    )


# Ray Train's controller looks at its workers every 2 s by default, and each step of its start-up, each
# checkpoint and the end of training waits for the next look: every 0.5 s, a small run takes ~6 s less
# (33 -> 27 s for the 4/9 job on 1000 samples here). infra/local/start.sh sets the same for its cluster.
LOCAL_RAY_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}


def use_local_ray_defaults() -> None:
    """Put ``LOCAL_RAY_ENV`` in this process's environment (values of the user's own are kept) before a local Ray
    instance starts: its processes inherit it."""
    for name, value in LOCAL_RAY_ENV.items():
        os.environ.setdefault(name, value)


def log_to_console() -> None:
    """Show this project's INFO logs from a Ray process (Ray forwards its output to the driver), in LOG_FORMAT:
    the driver shows Ray's forwarded lines in that format only, unless --verbose."""
    logger = logging.getLogger("pipeline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # Ray's worker root handler would print each line again


def keep_ray_output_in_logs() -> None:
    """Show only this project's log lines among those Ray forwards to this driver (the rest stays in Ray's log
    files, ``/tmp/ray/session_*/logs``). Call before ``ray`` is imported: Ray reads the setting then; a value of
    the user's own is kept."""
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", RAY_FORWARDED_NOISE)


def init_ray() -> None:
    """Attach to ``RAY_ADDRESS`` or start a local Ray instance (no-op when already connected)."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        log.info("Connecting to the Ray cluster at %s (RAY_ADDRESS)", address)
    else:
        log.info("Starting a local Ray instance (set RAY_ADDRESS to use a cluster)")
        use_local_ray_defaults()
        # The instance will be this process's: none of it may outlive the process, even killed. The watcher
        # starts before Ray, so Ray's processes are noted as they appear.
        from pipeline.infrastructure.reaper import watch_this_process

        watch_this_process()
    # "local", not None: without RAY_ADDRESS, Ray would attach to whatever `ray start` cluster runs here.
    # The embedded instance keeps Ray's dashboard (on 127.0.0.1): Ray Train's placement-group cleaner queries
    # the state API it serves, and warns every second without it.
    ray.init(address=address or "local", log_to_driver=True, configure_logging=False)


# Inputs up to this size (bytes; DRLIM_INLINE_BYTES overrides) are read in this process, where a bad file fails in
# a second without starting Ray; larger ones by Ray tasks or actors, one per file or part.
INLINE_BYTES = 64 << 20
PROGRESS_SECONDS = 30  # between progress lines of long Ray work when no terminal shows a bar


def in_process(total_bytes: int) -> bool:
    """Whether inputs of ``total_bytes`` are read here rather than by Ray (``INLINE_BYTES``)."""
    return total_bytes <= int(os.environ.get("DRLIM_INLINE_BYTES", INLINE_BYTES))


def run_tasks(function: Callable[..., Any], calls: list[tuple], desc: str, unit: str = "task") -> list:
    """``function`` over ``calls``, one Ray task each, results in order (``gather``: a progress bar, a task's
    ``DrlimError`` as itself)."""
    import ray

    init_ray()
    remote = ray.remote(function)
    return gather([remote.remote(*args) for args in calls], desc, unit)


def gather(refs: list, desc: str, unit: str = "task") -> list:
    """The results of Ray ``refs`` in their order, with a progress bar as they finish. A task's ``DrlimError``
    (bad input found in a file, a full disk) comes back as itself, one line, not wrapped in Ray's traceback."""
    import ray
    from ray.exceptions import RayTaskError
    from tqdm.auto import tqdm

    from pipeline.errors import DrlimError

    pending, done = list(refs), 0
    try:
        with tqdm(total=len(refs), desc=desc, unit=unit, disable=None) as bar:
            # Without a terminal (a log file, a Ray job) the bar is off: a line every PROGRESS_SECONDS instead.
            start = said = time.monotonic()
            while pending:
                finished, pending = ray.wait(pending, num_returns=1, timeout=PROGRESS_SECONDS)
                if finished:
                    ray.get(finished)  # raises a task's error at once, not after the others
                    done += 1
                    bar.update(1)
                if bar.disable and pending and time.monotonic() - said >= PROGRESS_SECONDS:
                    said = time.monotonic()
                    log.info("%s: %d of %d %ss done (%.0f s)", desc, done, len(refs), unit, said - start)
        return ray.get(list(refs))
    except RayTaskError as exc:
        if isinstance(exc.cause, DrlimError):
            raise exc.cause from None
        raise
