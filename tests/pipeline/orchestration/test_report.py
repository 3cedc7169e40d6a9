import numpy as np
import pytest

from pipeline.config import EncoderConfig, EvaluateConfig, JobConfig, TrainConfig
from pipeline.errors import ConfigError
from pipeline.evaluate import HeldOut, score
from pipeline.orchestration.report import EXPERIMENTS, JOBS_DIR, _sections, _table, baselines, report, training_summary


def test_every_experiment_is_a_shipped_job():
    assert [e.job for e in EXPERIMENTS] == [
        "mnist_4_9",
        "mnist_translated_knn",
        "mnist_translated_invariant",
        "norb_airplane",
        "mnist_all",
    ]
    assert all((JOBS_DIR / f"{e.job}.yaml").is_file() for e in EXPERIMENTS)


def test_baselines_are_scored_with_the_pipelines_metrics_and_tabulated():
    rng = np.random.default_rng(0)
    n = 60
    data = HeldOut(
        "test",
        np.arange(3 * n),
        rng.random((3 * n, 1, 6, 6), dtype=np.float32),
        np.tile(np.arange(n) % 2, 3),
        np.tile(np.arange(n), 3),
        np.array([None] * n + ["shift_x=1"] * n + ["shift_x=-1"] * n, dtype=object),
        {},
    )
    fitted = baselines(data, dim=2)
    assert list(fitted) == ["PCA", "Isomap (k=12)", "LLE (k=12)"]
    assert [inductive for _, _, inductive in fitted.values()] == [True, False, False]
    cfg = EvaluateConfig()
    rows = [(name, score(data, z, cfg), "yes", "0.1") for name, (z, _, _) in fitted.items()]
    assert {"trustworthiness_5", "knn_accuracy_5", "invariance_ratio"} <= set(rows[0][1])
    rows.append(("partial", {"trustworthiness_5": 0.5}, "no", "1"))
    table = _table(rows)
    assert table[0].startswith("| method | trust@5 | trust@12 | 5-NN acc. | invariance ratio |")
    assert table[-1] == "| partial | 0.500 | – | – | – | no | 1 |"


def test_a_page_splits_into_its_sections_and_joins_back():
    page = "# Results\n\nintro\n\n## A\n\ntext\n| t |\n\n## B (c)\n\nmore\n"
    sections = _sections(page)
    assert list(sections) == ["A", "B (c)"]
    assert sections["A"] == ["## A", "", "text", "| t |", ""]
    assert "\n".join(["# Results", "", "intro", ""] + sections["A"] + sections["B (c)"]) + "\n" == page


def test_an_unknown_experiment_is_refused_naming_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"--jobs: no experiment mnist_5; choose from \['mnist_4_9', "):
        report(None, tmp_path / "results.md", ["mnist_4_9", "mnist_5"])
    assert not (tmp_path / "results.md").exists()


def test_a_section_states_the_training_settings_of_its_job_file():
    job = JobConfig(
        train=TrainConfig(loss="neg", loss_options={"dof": 0.5}, epochs=7, input_noise=0.2),
        encoder=EncoderConfig(name="mlp", options={"hidden": 32}),
    )
    assert training_summary(job) == (
        "loss `neg` (dof 0.5), encoder `mlp` (hidden 32), 7 epochs of 64 similar pairs "
        "per step and worker (batch mode, 2 workers), input noise 0.2"
    )
    assert training_summary(JobConfig()).startswith("loss `contrastive` (margin 1.0), encoder `lenet`, 30 epochs")
    local = JobConfig(train=TrainConfig(local_steps=16))
    assert "(batch mode, 2 workers, weights averaged every 16 steps)" in training_summary(local)


def test_a_section_links_its_interactive_map_and_the_translated_pair_side_by_side(tmp_path):
    from pipeline.explore import MapPoints, read_page, write_page
    from pipeline.orchestration.report import interactive_maps

    runs, images = tmp_path / "runs", tmp_path / "images"
    runs.mkdir(), images.mkdir()
    points = MapPoints(np.zeros((4, 2)), np.arange(4), thumbnails=np.zeros((4, 2, 2)), title="knn")
    knn = write_page(runs / "knn.html", [points])
    invariant = write_page(runs / "invariant.html", [MapPoints(np.ones((4, 2)), np.arange(4), title="invariant")])
    pages: dict = {}
    assert interactive_maps("mnist_4_9", None, images, pages) == []  # a run without a page: no link
    lines = interactive_maps("mnist_translated_knn", knn, images, pages)
    assert "[mnist_translated_knn](images/results/mnist_translated_knn.html)" in lines[0]
    assert (images / "mnist_translated_knn.html").read_bytes() == knn.read_bytes()
    lines = interactive_maps("mnist_translated_invariant", invariant, images, pages)
    both = "mnist_translated_knn_vs_mnist_translated_invariant.html"
    assert f"side by side, linked by sample](images/results/{both})" in lines[0]
    assert [meta["title"] for meta, _ in read_page((images / both).read_text())] == ["knn", "invariant"]
