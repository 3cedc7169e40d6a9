"""``drlim embed``: embed any data the data stage reads with any model in the MLflow registry, through Ray Data.

1. the driver lists the input (a file, a folder of part files or a glob, local or a URI such as ``s3://...``),
   reads each file's header only (``predict.inspect_input``), plans the ids from prefix sums of the row
   counts in file order, and refuses before anything starts a sample shape the model's signature cannot take;
2. the files are embedded by ``EmbedFiles``: one per Ray Data actor, which loads the model once, then reads one
   whole file at a time, embeds it batch by batch and writes its part (``part-<file number>.parquet``, so the
   parts are in id order); the driver holds no features, no model and not torch. A small input (up to the data
   stage's ``runtime.INLINE_BYTES``) is embedded here by the same class, without starting Ray;
3. the output folder is written as a hidden temporary folder beside it and renamed once every part is there
   (``atomic.atomic_dir``): it is complete or absent. On a cluster it must be on a filesystem every node sees.

A file is one actor's work (it is read whole, as the data stage reads it): split a big input into part files to
use more actors.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.data.listing import SUFFIXES, list_source
from pipeline.embed.predict import InputFile, check_shape, embed_input, inspect_input, plan_ids
from pipeline.errors import DataError, DrlimError
from pipeline.infrastructure.atomic import atomic_dir, no_space_as_error
from pipeline.infrastructure.runtime import in_process, init_ray
from pipeline.infrastructure.tracking import ModelInput, Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedSummary:
    rows: int
    files: int  # input files with samples = part files written
    dim: int
    output: Path
    seconds: float  # from the first header read to the renamed folder (Ray's start-up included when it starts)
    actors: int  # 0: embedded in this process


def part_name(index: int, files: int) -> str:
    return f"part-{index:0{max(5, len(str(files - 1)))}d}.parquet"


class EmbedFiles:
    """Embeds whole input files with one model, loaded once: Ray Data's callable class (one per actor), or called
    here for a small input. ``__call__`` takes a batch of file numbers and writes each file's part."""

    def __init__(
        self,
        tracking_uri: str,
        model: ModelInput,
        model_uri: str,
        inputs: list[InputFile],
        directory: Path,
        batch_size: int | None,
        threads: int | None,
    ) -> None:
        if threads:  # as many torch threads as the actor has CPUs: the actors share the node's cores
            import torch

            torch.set_num_threads(threads)
        # Each actor would warn about the same missing requirements, and mapping the installed packages to say so
        # costs ~2 s of its start: the process checks them when it loads the model itself (threads is None).
        self.predict = Tracker(tracking_uri).load_model(model.uri, check_requirements=threads is None).predict
        self.model, self.model_uri, self.inputs = model, model_uri, inputs
        self.directory, self.batch_size = directory, batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, dims = [], []
        for index in batch["file"].tolist():
            table = embed_input(self.predict, self.inputs[index], self.model, self.model_uri, self.batch_size)
            self._write(table, part_name(index, len(self.inputs)))
            rows.append(table.num_rows)
            dims.append(table.schema.field("embedding").type.list_size)
        return {"file": batch["file"], "rows": np.array(rows, np.int64), "dim": np.array(dims, np.int64)}

    def _write(self, table: pa.Table, name: str) -> None:
        # No mkdir (unlike io.atomic_path): a late write after the driver gave up must not bring the folder back.
        tmp = self.directory / f".{name}.tmp"
        with no_space_as_error(self.directory, "the embeddings"):
            pq.write_table(table, tmp)
            os.replace(tmp, self.directory / name)


def list_inputs(source: str, storage_options: dict[str, Any] | None = None) -> list:
    """The files ``source`` names (relative local paths from the current directory)."""
    return list_source(
        source,
        "--input",
        Path.cwd(),
        storage_options,
        fix=f"--input takes a {'/'.join(SUFFIXES)} file, a folder of them or a glob, local or a URI (s3://...)",
    )


def inspect_inputs(files: list, key: str | None, label_column: str | None, scale_uint8: bool) -> list[InputFile]:
    """Every file's header facts (threads: on object storage each is a round trip), files without rows left out."""
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(files)))) as pool:
        found = list(pool.map(lambda f: inspect_input(f, key, label_column, scale_uint8), files))
    empty = [f.file.name for f in found if f.rows == 0]
    if empty:
        log.warning("Skipping %d input file(s) without rows: %s", len(empty), empty[:5])
    kept = [f for f in found if f.rows]
    if not kept:
        raise DataError(f"no samples in {len(files)} input file(s) (every one has 0 rows)")
    return plan_ids(kept)


def embed(
    tracker: Tracker,
    model_uri: str,
    source: str,
    output: Path,
    *,
    key: str | None = None,
    label_column: str | None = None,
    scale_uint8: bool = True,
    storage_options: dict[str, Any] | None = None,
    batch_size: int | None = None,
    use_ray: bool | None = None,
) -> EmbedSummary:
    """Embed every sample of ``source`` with ``model_uri`` into the Parquet folder ``output`` (the embeddings
    table: ids in file order, labels where the files have them). ``use_ray``: None = for inputs over
    ``runtime.INLINE_BYTES`` (``DRLIM_INLINE_BYTES``)."""
    start = time.perf_counter()
    if output.is_file():
        raise DataError(
            f"--output {output} is a file; drlim embed writes a folder of Parquet parts: name a folder, "
            f"or remove the file"
        )
    files = list_inputs(source, storage_options)
    inside = [
        f.name
        for f in files
        if isinstance(f.filesystem, pafs.LocalFileSystem) and Path(f.path).resolve().is_relative_to(output.resolve())
    ]
    if inside:  # the finished folder replaces --output as a whole
        raise DataError(
            f"--output {output} holds input files ({inside[0]}, ...) and would be replaced; write the "
            f"embeddings elsewhere"
        )
    model = tracker.model_input(model_uri)
    inputs = inspect_inputs(files, key, label_column, scale_uint8)
    for entry in inputs:  # the shapes the headers tell; the others are checked as each file is read
        if entry.sample_shape is not None:
            check_shape(entry.file.name, entry.sample_shape, model, model_uri)
    if use_ray is None:
        use_ray = not in_process(sum(f.file.size for f in inputs))
    rows = sum(f.rows for f in inputs)
    log.info("Embedding %d samples from %d file(s) with %s (%s)", rows, len(inputs), model_uri, model.uri)
    with atomic_dir(output, "the embeddings") as directory:
        args = (tracker.uri, model, model_uri, inputs, directory.resolve(), batch_size)
        done, actors = run_on_ray(*args) if use_ray else (EmbedFiles(*args, None)({"file": np.arange(len(inputs))}), 0)
        _check_parts(done, inputs, directory)
    return EmbedSummary(rows, len(inputs), int(done["dim"][0]), output, time.perf_counter() - start, actors)


def run_on_ray(
    tracking_uri: str,
    model: ModelInput,
    model_uri: str,
    inputs: list[InputFile],
    directory: Path,
    batch_size: int | None,
) -> tuple[dict[str, np.ndarray], int]:
    """``EmbedFiles`` over the files with Ray Data: one file per call, as many actors as the cluster has CPUs (at
    most one per file), each with an equal share of torch threads. Returns the calls' results and the actors."""
    import ray

    init_ray()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    actors = min(len(inputs), cpus)
    threads = max(1, cpus // actors)
    log.info("Ray Data: %d actor(s) of %d CPU(s) each", actors, threads)
    # A file's error as itself (not a UserCodeException without it); the dataset takes the context as it is made.
    context = ray.data.DataContext.get_current()
    wrapping, context.raise_original_map_exception = context.raise_original_map_exception, True
    try:
        files = ray.data.from_items([{"file": i} for i in range(len(inputs))], override_num_blocks=len(inputs))
        embedded = files.map_batches(
            EmbedFiles,
            fn_constructor_args=(tracking_uri, model, model_uri, inputs, directory, batch_size, threads),
            batch_size=1,
            batch_format="numpy",
            num_cpus=threads,
            udf_modifying_row_count=False,
            # One file in flight per actor: a file is seconds of work, and a queue would leave an actor idle at the
            # end while another works through two.
            compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
        )
        rows = embedded.take_all()
    except Exception as exc:  # a file's DataError (or a full disk) comes back as itself, one line
        cause = _drlim_cause(exc)
        if cause is None:
            raise
        # Ray Data appends its retry advice to the message: keep the error's own line.
        raise type(cause)(str(cause).splitlines()[0]) from None
    finally:
        context.raise_original_map_exception = wrapping
    return {k: np.array([r[k] for r in rows]) for k in ("file", "rows", "dim")}, actors


def _drlim_cause(exc: BaseException | None) -> DrlimError | None:
    """The ``DrlimError`` raised in an actor, out of Ray's wrapper (``RayTaskError(DataError)`` is a DataError
    whose text is the whole remote traceback; its ``cause`` is the error itself)."""
    for _ in range(8):
        if exc is None:
            return None
        cause = getattr(exc, "cause", None)
        if isinstance(cause, DrlimError):
            return cause
        if isinstance(exc, DrlimError) and cause is None:
            return exc
        exc = cause or exc.__cause__
    return None


def _check_parts(done: dict[str, np.ndarray], inputs: list[InputFile], directory: Path) -> None:
    """Every file's part is in ``directory`` with its rows, before the folder is published."""
    written = dict(zip(done["file"].tolist(), done["rows"].tolist()))
    for index, entry in enumerate(inputs):
        path = directory / part_name(index, len(inputs))
        if written.get(index) != entry.rows or not path.is_file():
            raise DataError(
                f"the part of {entry.file.name} is missing from {directory} ({path.name}); on a cluster "
                f"--output must be on a filesystem every node sees"
            )
    if len(set(done["dim"].tolist())) > 1:
        raise DataError(f"the model gave embeddings of different sizes {sorted(set(done['dim'].tolist()))}")
