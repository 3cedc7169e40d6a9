"""``drlim report``: run the paper's experiments (and the ten-digit map), and the classical baselines; write
``docs/results.md``.

Each experiment is a shipped job, run through the pipeline (reusing every finished stage in the working
directory, so a second report costs little). The baselines are fit on the same held-out samples and scored
with the same metrics (``pipeline.evaluate.score``): PCA maps unseen data like DrLIM; Isomap and LLE are
fit on the scored samples themselves (transductive). The page is generated, never edited by hand.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import JobConfig, load_job
from pipeline.errors import ConfigError
from pipeline.evaluate.scoring import HeldOut, score
from pipeline.explore.page import read_page, side_by_side, write_encoded
from pipeline.infrastructure.atomic import atomic_path
from pipeline.infrastructure.runtime import Runtime

log = logging.getLogger(__name__)

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"


@dataclass(frozen=True)
class Experiment:
    job: str
    title: str
    paper: str  # what the paper shows, in a sentence
    figure: str  # which of the run's plots to show


EXPERIMENTS = [
    Experiment(
        "mnist_4_9",
        "MNIST 4/9 with 5-NN pairs (paper section 4.1)",
        "3000 fours and 3000 nines, similar = 5 nearest neighbours in pixel space; the 2-D map is "
        "evaluated on the unseen test fours and nines.",
        "map_thumbnails",
    ),
    Experiment(
        "mnist_translated_knn",
        "Translated MNIST, 5-NN pairs only (section 4.2)",
        "The same digits plus copies shifted by -6, -3, +3, +6 px; with pixel-space neighbours alone the "
        "map organises the samples by shift, not by digit.",
        "map_transforms",
    ),
    Experiment(
        "mnist_translated_invariant",
        "Translated MNIST, the invariance recipe (section 4.2)",
        "Each sample is also similar to its own shifted copies and to the shifted copies of its 5 "
        "neighbours: the shifted copies of a digit land together.",
        "map_transforms",
    ),
    Experiment(
        "norb_airplane",
        "The airplane (section 4.3; synthetic stand-in for NORB)",
        "972 views (18 azimuths x 9 elevations x 6 lightings), similar = neighbouring views under any "
        "lighting; the 3-D map is a cylinder and ignores lighting.",
        "map_cylinder",
    ),
    Experiment(
        "mnist_all",
        "All ten MNIST digits, a neighbour-embedding loss (beyond the paper)",
        "60 000 training digits, similar = 5 nearest neighbours in pixel space, trained with a "
        "neighbour-embedding loss with a heavy-tailed similarity (1 + D^2/a)^-a instead of the paper's "
        "margin loss; the 2-D map is evaluated on the 10 000 unseen test digits. Settings were chosen "
        "with a seeded tenth of the training digits held out; the job then fits them on all 60 000.",
        "map_thumbnails",
    ),
]

# A section whose interactive map is also shown beside an earlier section's, linked by sample id.
SIDE_BY_SIDE = {"mnist_translated_invariant": "mnist_translated_knn"}

BASELINE_SAMPLE_LIMIT = 10_000  # Isomap and LLE are O(n^2) in memory


def baselines(data: HeldOut, dim: int) -> dict[str, tuple[np.ndarray, float, bool]]:
    """PCA, Isomap and LLE embeddings of the held-out samples: name -> (embedding, seconds, maps unseen data)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import Isomap, LocallyLinearEmbedding

    x = data.features.reshape(len(data.features), -1)
    methods = {
        "PCA": (PCA(n_components=dim, random_state=0), True),
        "Isomap (k=12)": (Isomap(n_neighbors=12, n_components=dim), False),
        "LLE (k=12)": (LocallyLinearEmbedding(n_neighbors=12, n_components=dim, random_state=0), False),
    }
    out = {}
    for name, (method, inductive) in methods.items():
        if len(x) > BASELINE_SAMPLE_LIMIT and not inductive:
            log.warning("Skipping %s: %d samples exceed %d", name, len(x), BASELINE_SAMPLE_LIMIT)
            continue
        start = time.perf_counter()
        out[name] = (method.fit_transform(x), time.perf_counter() - start, inductive)
    return out


COLUMNS = {
    "trustworthiness_5": "trust@5",
    "trustworthiness_12": "trust@12",
    "knn_accuracy_5": "5-NN acc.",
    "invariance_ratio": "invariance ratio",
    "azimuth_circular_correlation": "azimuth circ. corr.",
    "elevation_spearman": "elevation Spearman",
    "lighting_invariance_ratio": "lighting invariance",
}


def _table(rows: list[tuple[str, dict[str, float], str, str]]) -> list[str]:
    keys = [k for k in COLUMNS if any(k in m for _, m, _, _ in rows)]
    lines = [
        "| method | " + " | ".join(COLUMNS[k] for k in keys) + " | maps unseen data | seconds |",
        "|---" * (len(keys) + 3) + "|",
    ]
    for name, metrics, unseen, seconds in rows:
        cells = [f"{metrics[k]:.3f}" if k in metrics else "–" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {unseen} | {seconds} |")
    return lines


def training_summary(job: JobConfig) -> str:
    """The settings a section's figures come from, read from its job file (so the page never restates them)."""
    train, encoder = job.train, job.encoder

    def named(name: str, options: dict) -> str:
        return f"`{name}`" + (" (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")" if options else "")

    loss_options = {"margin": train.margin} if train.loss == "contrastive" else train.loss_options
    extras = [f"input noise {train.input_noise}"] if train.input_noise else []
    every = train.averaged_every(train.num_workers)
    averaged = f", weights averaged every {every} steps" if every else ""
    return ", ".join(
        [
            f"loss {named(train.loss, loss_options)}",
            f"encoder {named(encoder.name, encoder.options)}",
            f"{train.epochs} epochs of {train.batch_size} similar pairs per step and worker "
            f"({train.mode} mode, {train.num_workers} workers{averaged})",
            *extras,
        ]
    )


def interactive_maps(job: str, page: Path | None, images: Path, pages: dict[str, Path]) -> list[str]:
    """Copy a section's interactive map (the run's ``explorer.html``) beside its figure, and for a job in
    ``SIDE_BY_SIDE`` write both maps on one page; the Markdown that links them (``pages``: the copies so far)."""
    if page is None:
        return []
    pages[job] = images / f"{job}.html"
    shutil.copyfile(page, pages[job])
    links = [f"[{job}](images/results/{job}.html)"]
    other = SIDE_BY_SIDE.get(job)
    if other in pages:
        both = images / f"{other}_vs_{job}.html"
        maps = [m for name in (other, job) for m in read_page(pages[name].read_text(encoding="utf-8"))]
        write_encoded(both, side_by_side(maps), f"{other} | {job}")
        links.append(f"[{other} and {job} side by side, linked by sample](images/results/{both.name})")
    return [f"Interactive map (one HTML file; open it in a browser, it works offline): {' · '.join(links)}.", ""]


def _sections(page: str) -> dict[str, list[str]]:
    """The ``## `` sections of a results page by title, each its lines up to the next section."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in page.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        if current is not None:
            current.append(line)
    return sections


def report(runtime: Runtime, out: Path, jobs: list[str] | None = None) -> Path:
    """Run the experiments (all, or ``jobs``) and their baselines; write the Markdown page ``out``. With
    ``jobs``, the sections of the other experiments are kept from the page already at ``out``."""
    from pipeline.orchestration.run import run_job

    known = [e.job for e in EXPERIMENTS]
    unknown = sorted(set(jobs or ()) - set(known))
    if unknown:
        raise ConfigError(f"--jobs: no experiment {', '.join(unknown)}; choose from {known}")
    images = out.parent / "images" / "results"
    images.mkdir(parents=True, exist_ok=True)
    kept = _sections(out.read_text()) if jobs is not None and out.is_file() else {}
    lines = [
        "# Results: the paper's experiments, reproduced and measured, and all ten digits",
        "",
        "Generated by `drlim report` (do not edit by hand). Every DrLIM row is a full run of the job "
        "named in its section on this machine; the baselines are fit on the same samples and scored "
        "with the same code. Metrics: trustworthiness (pixel space vs map, on the test originals), "
        "leave-one-out 5-NN accuracy in the map, translation-invariance ratio (mean distance between "
        "copies of one digit / mean distance between random pairs; 0 = invariant), and for the airplane "
        "the Fisher-Lee circular correlation of the angle around the fitted axis with azimuth, the "
        "Spearman correlation of the position along it with elevation, and the lighting-invariance ratio.",
        "",
    ]
    fitted: dict[tuple[str, int], dict] = {}  # the translated experiments share their samples
    pages: dict[str, Path] = {}  # the interactive maps copied so far
    for exp in EXPERIMENTS:
        if jobs is not None and exp.job not in jobs:
            lines += kept.get(exp.title, [])
            continue
        job = load_job(JOBS_DIR / f"{exp.job}.yaml")
        log.info("Report: running %s", exp.job)
        summary = run_job(job, runtime)
        data = HeldOut.load(summary.store)
        seconds = sum(summary.seconds.values())
        rows = [(f"**DrLIM** (`{exp.job}`)", summary.metrics, "yes", f"{seconds:.0f} (all stages)")]
        key = (str(summary.store.location), job.encoder.output_dim)
        if key not in fitted:
            fitted[key] = baselines(data, job.encoder.output_dim)
        for name, (embedding, secs, inductive) in fitted[key].items():
            rows.append(
                (name, score(data, embedding, job.evaluate), "yes" if inductive else "no (fit on them)", f"{secs:.1f}")
            )
        figure = images / f"{exp.job}.png"
        if exp.figure in summary.files:
            shutil.copyfile(summary.files[exp.figure], figure)
        lines += [
            f"## {exp.title}",
            "",
            exp.paper,
            "",
            f"Trained: {training_summary(job)}.",
            "",
            f"Scored on {len(data.ids)} {data.split} samples. Command: `drlim run jobs/{exp.job}.yaml`.",
            "",
        ]
        lines += _table(rows)
        lines += ["", f"![{exp.title}](images/results/{figure.name})", ""]
        lines += interactive_maps(exp.job, summary.files.get("explorer"), images, pages)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return out
