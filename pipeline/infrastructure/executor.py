"""Where a stage's tasks and actors run: on Ray, or in this process. A stage written against ``Executor`` runs
both ways unchanged and gives the same outputs; the Ray calls stay here.

- ``OnRay``: each task a Ray task, each actor a Ray actor (its ``options`` apply), results gathered with a
  progress bar, a task's ``DrlimError`` raised as itself (``runtime.gather``);
- ``InProcess``: each task called at once, each actor an object; results are plain values. What a small input
  needs (a notebook's estimator, a unit test): no Ray start, nothing shipped between processes.

A task or method with ``returns`` > 1 gives that many results (a tuple in process, object references on Ray), so
that each can be handed on to a different task.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any


class Executor:
    """Runs a stage's tasks and actors; ``cpus`` is how many the stage may keep busy at once."""

    cpus: int

    def task(self, function: Callable[..., Any], *args: Any, returns: int = 1, here: bool = False) -> Any:
        """``function(*args)`` as a task; ``here``: on this node (where it reads or writes this node's files)."""
        raise NotImplementedError

    def actor(self, cls: type, *args: Any, options: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def call(self, actor: Any, method: str, *args: Any, returns: int = 1) -> Any:
        raise NotImplementedError

    def gather(self, results: list, desc: str, unit: str = "task") -> list:
        """The values of ``results`` (of ``task`` and ``call``), in their order."""
        raise NotImplementedError


class InProcess(Executor):
    def __init__(self, cpus: int | None = None) -> None:
        self.cpus = cpus or len(os.sched_getaffinity(0))

    def task(self, function: Callable[..., Any], *args: Any, returns: int = 1, here: bool = False) -> Any:
        return function(*args)

    def actor(self, cls: type, *args: Any, options: dict[str, Any] | None = None) -> Any:
        return cls(*args)

    def call(self, actor: Any, method: str, *args: Any, returns: int = 1) -> Any:
        return getattr(actor, method)(*args)

    def gather(self, results: list, desc: str, unit: str = "task") -> list:
        return list(results)


@cache
def _remote(function: Callable[..., Any]) -> Any:
    import ray

    return ray.remote(function)


def _logged(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a Ray worker whose log lines of this project reach the driver, as they would in
    process."""
    from pipeline.infrastructure.runtime import log_to_console

    log_to_console()
    return function(*args)


class OnRay(Executor):
    """The Ray instance of ``runtime.init_ray`` (started, or attached to ``RAY_ADDRESS``)."""

    def __init__(self) -> None:
        import ray

        from pipeline.infrastructure.runtime import init_ray

        init_ray()
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def task(self, function: Callable[..., Any], *args: Any, returns: int = 1, here: bool = False) -> Any:
        options: dict[str, Any] = {"num_returns": returns, "name": function.__name__}
        if here:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False
            )
        return _remote(_logged).options(**options).remote(function, *args)

    def actor(self, cls: type, *args: Any, options: dict[str, Any] | None = None) -> Any:
        return _remote(cls).options(**(options or {})).remote(*args)

    def call(self, actor: Any, method: str, *args: Any, returns: int = 1) -> Any:
        return getattr(actor, method).options(num_returns=returns).remote(*args)

    def gather(self, results: list, desc: str, unit: str = "task") -> list:
        from pipeline.infrastructure.runtime import gather

        return gather(results, desc, unit)
