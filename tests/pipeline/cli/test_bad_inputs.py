"""The catalogue of bad inputs: each runs the real ``drlim`` entry point and must end in exit code 2 with one
``drlim: error:`` message that names the problem, the key / file / column / value, and (where there is one)
the fix. No traceback, and no Ray: job-file errors fail in ``validate``, data errors during ingest, before Ray
would start (``ray.init`` is refused for the duration of each case)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import yaml

from pipeline.cli import main
from pipeline.config import DataConfig
from pipeline.data import ingest
from pipeline.data.store import SampleStore

Setup = Callable[[Path, SimpleNamespace], None]  # (data root, builders from conftest) -> None

VALIDATE = ("validate", "{job}")
PAIRS = ("pairs", "{job}", "--workdir", "{tmp}/work", "--data-root", "{data}")
NO_DOWNLOAD = "data: {download: false}\n"


def files_job(path: str = "train.parquet", pairs: dict | None = None, **data) -> str:
    """A job reading the user's file ``path`` (relative: under the data root) with an MLP encoder."""
    source = "numpy" if path.endswith((".npy", ".npz")) else "parquet"
    job = {"data": {"source": source, "path": path, **data}, "encoder": {"name": "mlp"}, "pairs": pairs or {}}
    return yaml.safe_dump(job)


class RayStarted(Exception):
    """Raised instead of starting Ray: the case's error was not found before Ray would start."""


# --- how each bad input is made (under the data root) -------------------------------------------------------


def _nothing(root: Path, files: SimpleNamespace) -> None:
    pass


def _write(name: str, content: bytes) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)

    return setup


def _valid(name: str, d: int = 6) -> Setup:
    return lambda root, files: files.write_vectors(root / name, d=d)


def _truncated(name: str, keep: float = 0.5) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        path = files.write_vectors(root / name)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return setup


def _features(x: np.ndarray, **columns) -> Setup:
    return lambda root, files: files.write_parquet(root / "train.parquet", x, **columns)


def _table(**columns) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        root.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), root / "train.parquet")

    return setup


def _npz(**arrays: np.ndarray) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / "train.npz", **arrays)

    return setup


def _both(*setups: Setup) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        for each in setups:
            each(root, files)

    return setup


def _mnist(edit: Callable[[Path], None]) -> Setup:
    def setup(root: Path, files: SimpleNamespace) -> None:
        edit(files.write_mnist(root))

    return setup


def _cut(name: str, size: int) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes((folder / name).read_bytes()[:size])


def _magic(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(b"\x00\x00\x0d\x03" + (folder / name).read_bytes()[4:])


def _duplicate_columns(root: Path, files: SimpleNamespace) -> None:
    x = files.vectors()
    table = pa.Table.from_arrays(
        [files.feature_list(x), pa.array(np.arange(12)), pa.array(np.arange(12))], names=["features", "label", "label"]
    )
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "train.parquet")


NAN = np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]], np.float32)
INF = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, -np.inf]], np.float32)

# --- the catalogue ------------------------------------------------------------------------------------------

CASES = [
    # job files and overrides (drlim validate)
    pytest.param(
        "train: {epoch: 3}\n",
        _nothing,
        VALIDATE,
        ["unknown key 'train.epoch'", "did you mean 'train.epochs'?", "{job}"],
        id="unknown-key",
    ),
    pytest.param(
        "trainer: {epochs: 3}\n",
        _nothing,
        VALIDATE,
        ["unknown key 'trainer'", "did you mean 'train'?"],
        id="unknown-section",
    ),
    pytest.param(
        "train: {epochs: many}\n", _nothing, VALIDATE, ["train.epochs", "valid integer", "got 'many'"], id="wrong-type"
    ),
    pytest.param(
        "data: {digits: [1, 2], train_per_digit: 4}\npairs: {k: 8}\nevaluate: {validation: 0}\n",
        _nothing,
        VALIDATE,
        ["pairs.k", "k=8", "the job selects 8", "lower pairs.k or raise data.train_per_digit"],
        id="k-not-below-n-mnist",
    ),
    pytest.param(
        "data: {digits: [1, 2], train_per_digit: 4}\npairs: {k: 7}\nevaluate: {validation: 2}\n",
        _nothing,
        VALIDATE,
        ["pairs.k", "k=7", "the job selects 6 (after evaluate.validation)"],
        id="k-not-below-n-after-validation",
    ),
    pytest.param(
        "evaluate: {validation: 2.5}\n",
        _nothing,
        VALIDATE,
        ["evaluate.validation", "a fraction below 1 or a whole count of samples, got 2.5"],
        id="validation-not-a-count",
    ),
    pytest.param(
        "evaluate: {select: best, validation: 0}\n",
        _nothing,
        VALIDATE,
        ["evaluate.select: 'best' picks the epoch by its validation score", "set evaluate.validation"],
        id="select-best-without-validation",
    ),
    pytest.param(
        "train: {margin: 0}\n", _nothing, VALIDATE, ["train.margin", "greater than 0", "got 0"], id="margin-zero"
    ),
    pytest.param(
        "train: {margin: -1.5}\n",
        _nothing,
        VALIDATE,
        ["train.margin", "greater than 0", "got -1.5"],
        id="margin-negative",
    ),
    pytest.param(
        "encoder: {output_dim: 0}\n",
        _nothing,
        VALIDATE,
        ["encoder.output_dim", "greater than or equal to 1", "got 0"],
        id="output-dim-zero",
    ),
    pytest.param(
        "data: {digits: []}\n",
        _nothing,
        VALIDATE,
        ["data.digits", "at least one digit", "e.g. [4, 9]"],
        id="empty-digits",
    ),
    pytest.param(
        "train: {negatives_per_positive: -0.5}\n",
        _nothing,
        VALIDATE,
        ["train.negatives_per_positive", "greater than or equal to 0", "got -0.5"],
        id="negative-ratio",
    ),
    pytest.param(
        "train: {optimizer: adagrad}\n",
        _nothing,
        VALIDATE,
        ["train.optimizer", "unknown optimizer 'adagrad'", "choose one of ['adam', 'adamw', 'sgd']"],
        id="bad-enum",
    ),
    pytest.param(
        "pairs: {index: annoy}\n",
        _nothing,
        VALIDATE,
        ["pairs.index", "unknown index 'annoy'", "choose one of ['flat', 'hnsw', 'ivf']"],
        id="bad-enum-index",
    ),
    pytest.param(
        "train: {num_workers: 4}\npairs: {num_shards: 3}\n",
        _nothing,
        VALIDATE,
        [
            "train.num_workers",
            "each of the 4 workers reads its own pair shards",
            "pairs.num_shards is 3",
            "raise pairs.num_shards to at least 4",
        ],
        id="workers-exceed-pair-shards",
    ),
    pytest.param(
        "train: {prefetch: -1}\n",
        _nothing,
        VALIDATE,
        ["train.prefetch", "must be 'auto' or a number of steps from 0 to 64", "got -1"],
        id="negative-prefetch",
    ),
    pytest.param(
        "train: [unclosed\n",
        _nothing,
        VALIDATE,
        ["{job}", "not valid YAML", "expected ',' or ']'", "flow sequence at line 1, column 8", "fix the syntax"],
        id="yaml-syntax",
    ),
    pytest.param(
        "- train\n- pairs\n",
        _nothing,
        VALIDATE,
        ["{job}", "top level must be a mapping", "got list"],
        id="not-a-mapping",
    ),
    pytest.param(
        "{}\n",
        _nothing,
        (*VALIDATE, "--set", "train.epoch=3"),
        ["--set train.epoch=3", "unknown key 'train.epoch'", "did you mean 'train.epochs'?"],
        id="set-unknown-key",
    ),
    pytest.param(
        "{}\n",
        _nothing,
        (*VALIDATE, "--set", "train.margin=-1"),
        ["--set train.margin=-1", "train.margin", "greater than 0", "got -1"],
        id="set-bad-value",
    ),
    pytest.param(
        "{}\n",
        _nothing,
        (*VALIDATE, "--set", "data.digits=[1, 7"),
        ["override 'data.digits=[1, 7'", "'[1, 7' is not valid YAML", "close brackets"],
        id="set-bad-yaml-value",
    ),
    pytest.param(
        "{}\n",
        _nothing,
        (*VALIDATE, "--set", "train.epochs"),
        ["override 'train.epochs'", "section.key=value", "e.g. train.epochs=3"],
        id="set-without-value",
    ),
    pytest.param(
        "{}\n",
        _nothing,
        (*VALIDATE, "--set", "seed.x=1"),
        ["override 'seed.x=1'", "'seed' is a value, not a section", "seed=..."],
        id="set-into-a-value",
    ),
    pytest.param(
        "name: caf\xe9\n".encode("latin-1"),
        _nothing,
        VALIDATE,
        ["{job}", "cannot read the job file", "UnicodeDecodeError", "save it as UTF-8"],
        id="job-not-utf8",
    ),
    pytest.param(
        "train: {epochs: 3}\n",
        _nothing,
        ("validate", "{tmp}/jobs/missing.yaml"),
        ["job file {tmp}/jobs/missing.yaml does not exist", "jobs/*.yaml"],
        id="missing-job-file",
    ),
    pytest.param(
        "data: {source: parquet, path: ../outside.parquet}\n",
        _nothing,
        VALIDATE,
        [
            "data.path",
            "'../outside.parquet'",
            "climbs out of the data root",
            "use an absolute path if you really mean a file outside DATA_ROOT",
        ],
        id="path-escapes-root",
    ),
    pytest.param(
        "data: {source: numpy, path: a.npy, test_path: held/../../../b.npy}\n",
        _nothing,
        VALIDATE,
        ["data.test_path", "'held/../../../b.npy'", "climbs out of the data root", "absolute path"],
        id="test-path-escapes-root",
    ),
    pytest.param(
        "data: {source: parquet}\n",
        _nothing,
        (*VALIDATE, "--set", "data.path=../../etc/passwd.parquet"),
        ["data.path", "'../../etc/passwd.parquet'", "climbs out of the data root"],
        id="set-path-escapes",
    ),
    # MNIST (drlim pairs, download off)
    pytest.param(
        NO_DOWNLOAD,
        _nothing,
        PAIRS,
        ["MNIST not found", "{data}/MNIST/raw lacks train-images-idx3-ubyte", "--data-root", "data.download: true"],
        id="missing-data-root",
    ),
    pytest.param(
        NO_DOWNLOAD,
        _mnist(lambda folder: (folder / "t10k-labels-idx1-ubyte").unlink()),
        PAIRS,
        ["MNIST not found", "lacks t10k-labels-idx1-ubyte", "--data-root"],
        id="missing-mnist-file",
    ),
    pytest.param(
        NO_DOWNLOAD,
        _mnist(_cut("train-images-idx3-ubyte", 5000)),
        PAIRS,
        [
            "{data}/MNIST/raw/train-images-idx3-ubyte",
            "holds 4984 data bytes",
            "announces 31360",
            "truncated",
            "replace it with the original IDX file",
        ],
        id="truncated-idx",
    ),
    pytest.param(
        NO_DOWNLOAD,
        _mnist(_cut("train-labels-idx1-ubyte", 6)),
        PAIRS,
        [
            "{data}/MNIST/raw/train-labels-idx1-ubyte",
            "holds 6 bytes, less than the 8 of an IDX header",
            "truncated",
            "replace it",
        ],
        id="idx-shorter-than-header",
    ),
    pytest.param(
        NO_DOWNLOAD,
        _mnist(_magic("t10k-images-idx3-ubyte")),
        PAIRS,
        [
            "{data}/MNIST/raw/t10k-images-idx3-ubyte",
            "not an IDX file of 3-D unsigned bytes",
            "magic 0x00000d03",
            "replace it",
        ],
        id="corrupt-idx-magic",
    ),
    # your own files (drlim pairs)
    pytest.param(
        files_job(),
        _nothing,
        PAIRS,
        [
            "data.path",
            "{data}/train.parquet does not exist",
            "relative paths are read from the data root",
            "--data-root",
        ],
        id="missing-data-file",
    ),
    pytest.param(
        files_job(),
        _write("train.parquet", b"this is not parquet\n" * 10),
        PAIRS,
        ["{data}/train.parquet", "not a readable Parquet file", "re-export it"],
        id="not-parquet",
    ),
    pytest.param(
        files_job(),
        _truncated("train.parquet"),
        PAIRS,
        ["{data}/train.parquet", "not a readable Parquet file", "re-export it"],
        id="truncated-parquet",
    ),
    pytest.param(
        files_job("train.csv"),
        _write("train.csv", b"1,2\n3,4\n"),
        PAIRS,
        ["{data}/train.csv", "unsupported file type '.csv'", "use one of ['.parquet', '.npy', '.npz']"],
        id="unsupported-file-type",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((0, 3)), label=np.zeros(0, np.int64)),
        PAIRS,
        ["{data}/train.parquet", "no samples (0 rows)", "point data.path"],
        id="no-rows",
    ),
    pytest.param(
        files_job(label_column=None),
        _table(features=pa.array([[1.0, 2.0], [3.0]])),
        PAIRS,
        [
            "{data}/train.parquet",
            "column 'features' rows differ in length (row 1 has 1 values",
            "every sample needs the same number",
        ],
        id="ragged-features",
    ),
    pytest.param(
        files_job(label_column=None),
        _table(features=pa.array([["a"], ["b"]])),
        PAIRS,
        ["{data}/train.parquet", "column 'features' must hold numbers, got lists of string"],
        id="non-numeric-features",
    ),
    pytest.param(
        files_job(label_column=None),
        _table(features=pa.array([[1.0, None], [2.0, 3.0]])),
        PAIRS,
        ["{data}/train.parquet", "column 'features' has 1 missing (null) values inside its lists"],
        id="null-inside-features",
    ),
    pytest.param(
        files_job(test_path="test.parquet"),
        _both(_valid("train.parquet"), _valid("test.parquet", d=4)),
        PAIRS,
        ["{data}/test.parquet", "shape (4,)", "{data}/train.parquet have (6,)", "all files need the same features"],
        id="test-file-unlike-training-file",
    ),
    pytest.param(
        files_job(feature_column="pixels"),
        _valid("train.parquet"),
        PAIRS,
        ["{data}/train.parquet", "no column 'pixels'", "its columns are ['features', 'label']", "data.feature_column"],
        id="missing-feature-column",
    ),
    pytest.param(
        files_job(label_column="digit"),
        _valid("train.parquet"),
        PAIRS,
        ["{data}/train.parquet", "no column 'digit'", "data.label_column"],
        id="missing-label-column",
    ),
    pytest.param(
        files_job(feature_shape=[1, 2, 2]),
        _valid("train.parquet"),
        PAIRS,
        [
            "{data}/train.parquet",
            "data.feature_shape [1, 2, 2] holds 4 values",
            "each sample has 6",
            "fix data.feature_shape",
        ],
        id="wrong-feature-shape",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((3, 2)), label=pa.array([[1], [2], [3]])),
        PAIRS,
        [
            "{data}/train.parquet",
            "label column 'label' must hold integers",
            "got list<element: int64>",
            "data.label_column",
        ],
        id="label-column-of-lists",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((3, 2)), label=pa.array(["4", "9", "4"])),
        PAIRS,
        ["{data}/train.parquet", "label column 'label' must hold integers", "got string"],
        id="label-column-of-strings",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((3, 2)), label=pa.array([0.5, 1.0, 2.0])),
        PAIRS,
        ["{data}/train.parquet", "label column 'label' must hold integers", "0.5"],
        id="fractional-labels",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((3, 2)), label=pa.array([0, None, 1])),
        PAIRS,
        ["{data}/train.parquet", "label column 'label' has 1 missing (null) labels"],
        id="null-labels",
    ),
    pytest.param(
        files_job(),
        _features(np.zeros((3, 2)), label=np.array([0, 1, 2**40])),
        PAIRS,
        ["{data}/train.parquet", "label column 'label' holds values outside -1..2147483647"],
        id="label-beyond-int32",
    ),
    pytest.param(
        files_job(label_column=None),
        _features(NAN),
        PAIRS,
        [
            "{data}/train.parquet",
            "'features'",
            "1 samples have NaN or infinite features (first rows: [1])",
            "clean the source data",
        ],
        id="nan-features",
    ),
    pytest.param(
        files_job(label_column=None),
        _features(INF),
        PAIRS,
        ["{data}/train.parquet", "1 samples have NaN or infinite features (first rows: [2])"],
        id="infinite-features",
    ),
    pytest.param(
        files_job(label_column=None),
        _features(np.array([[1.0, 1e39]])),
        PAIRS,
        ["{data}/train.parquet", "beyond float32's range", "rescale"],
        id="features-beyond-float32",
    ),
    pytest.param(
        files_job(),
        _duplicate_columns,
        PAIRS,
        ["{data}/train.parquet", "column(s) ['label'] appear more than once"],
        id="duplicate-columns",
    ),
    pytest.param(
        files_job(label_column=None),
        _features(np.zeros((2, 3))),
        (*PAIRS, "--set", "data.path=train.csv"),
        ["data.path", "{data}/train.csv does not exist"],
        id="set-data-path-missing",
    ),
    pytest.param(
        files_job("train.npy"),
        _truncated("train.npy"),
        PAIRS,
        ["{data}/train.npy", "not a readable NumPy file", "numpy.save"],
        id="truncated-npy",
    ),
    pytest.param(
        files_job("train.npz"),
        _truncated("train.npz", keep=0.8),
        PAIRS,
        ["{data}/train.npz", "not a readable NumPy file"],
        id="truncated-npz",
    ),
    pytest.param(
        files_job("train.npz", feature_column="images"),
        _valid("train.npz"),
        PAIRS,
        ["{data}/train.npz", "no array 'images'", "it holds ['features', 'label']", "data.feature_column"],
        id="npz-without-the-array",
    ),
    pytest.param(
        files_job("train.npz"),
        _npz(features=np.zeros((4, 3)), label=np.arange(5)),
        PAIRS,
        ["{data}/train.npz", "5 labels for 4 samples", "arrays 'label', 'features'", "one entry per sample"],
        id="npz-label-count-mismatch",
    ),
    pytest.param(
        files_job("train.npz"),
        _write("train.npz", b"PK\x03\x04 not really a zip"),
        PAIRS,
        ["{data}/train.npz", "not a readable NumPy file"],
        id="npz-not-a-zip",
    ),
    pytest.param(
        files_job(pairs={"sources": ["prior"], "prior": {"same": ["object"]}}),
        _valid("train.parquet"),
        PAIRS,
        ["{data}/train.parquet", "pairs.prior names column(s) ['object']", "fix the rule"],
        id="prior-rule-missing-column",
    ),
    pytest.param(
        files_job(pairs={"k": 12}),
        _valid("train.parquet"),
        PAIRS,
        [
            "pairs.k=12",
            "there are 11 in {data}/train.parquet after 1 held out for validation (evaluate.validation)",
            "lower pairs.k",
        ],
        id="k-not-below-n-files",
    ),
]


@pytest.fixture
def no_ray(monkeypatch):
    def refuse(*args, **kwargs):
        raise RayStarted("the error was not found before Ray started")

    monkeypatch.setattr(ray, "init", refuse)
    yield
    assert not ray.is_initialized()


@pytest.mark.parametrize(("job", "setup", "args", "expected"), CASES)
def test_bad_input_is_refused_with_a_message_that_names_it(
    tmp_path, capsys, no_ray, sample_files, job, setup, args, expected
):
    names = {"tmp": tmp_path, "data": tmp_path / "data", "job": tmp_path / "job.yaml"}
    names["job"].write_bytes(job if isinstance(job, bytes) else job.encode())
    setup(names["data"], sample_files)
    code = main([arg.format(**names) for arg in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("drlim: error: ") and "Traceback" not in err, err
    for words in expected:
        assert words.format(**names) in err, (words, err)


def test_a_files_own_id_and_label_columns_do_not_shadow_the_stores(tmp_path, capsys, no_ray, sample_files):
    """Samples are numbered 0..n-1 in file order; a column named like a store column is not kept as metadata."""
    x = sample_files.vectors(n=6)
    sample_files.write_parquet(
        tmp_path / "data" / "train.parquet",
        x,
        id=np.array([7, 7, 7, 8, 8, 8]),
        label=np.arange(6),
        azimuth=np.arange(6.0),
    )
    job = tmp_path / "job.yaml"
    job.write_text(
        "data: {source: parquet, path: train.parquet, label_column: null}\nencoder: {name: mlp}\n"
        "evaluate: {validation: 0}\n"
    )
    with pytest.raises(RayStarted):  # ingest and the encoder check passed; the pair stage would start Ray now
        main(["pairs", str(job), "--workdir", str(tmp_path / "work"), "--data-root", str(tmp_path / "data")])
    [directory] = (tmp_path / "work" / "samples").iterdir()
    store = SampleStore.open(directory)
    assert store.corrupt_shards() == [] and store.metadata_columns == ["azimuth"]
    ids, features, labels = store.split("train")
    assert ids.tolist() == list(range(6)) and labels.tolist() == [-1] * 6
    np.testing.assert_array_equal(features, x)


def test_relative_paths_are_read_from_the_data_root_and_absolute_ones_from_anywhere(tmp_path, sample_files):
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    sample_files.write_vectors(root / "views" / "train.parquet", n=5)
    sample_files.write_vectors(elsewhere / "test.parquet", n=3)
    cfg = DataConfig(source="parquet", path="views/../views/train.parquet", test_path=str(elsewhere / "test.parquet"))
    assert ingest(cfg, root, tmp_path / "work").manifest["splits"] == {"test": 3, "train": 5}
