import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.data.listing import local_file
from pipeline.embed import stage as embed_stage
from pipeline.embed.predict import embed_input, inspect_input
from pipeline.embed.stage import embed
from pipeline.errors import DataError
from pipeline.evaluate.embeddings import EMBEDDINGS_SCHEMA_VERSION
from pipeline.infrastructure.tracking import ModelInput, Tracker

SHAPE = (1, 2, 3)  # what the test model takes: 6 values a sample


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small MLP saved as drlim logs its models (pt2, with a signature), loaded by path; and the same in torch."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).eval()
    example = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    with torch.no_grad():
        signature = infer_signature(example, net(torch.from_numpy(example)).numpy())
    path = tmp_path_factory.mktemp("model") / "mlp"
    mlflow.pytorch.save_model(
        net,
        str(path),
        signature=signature,
        input_example=example,
        serialization_format="pt2",
        pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
    )

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.asarray(x, np.float32).reshape(len(x), *SHAPE))).numpy()

    return type("Model", (), {"uri": str(path), "predict": staticmethod(predict)})


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _read(folder):
    table = pq.read_table(folder)
    return table, np.stack(table.column("embedding").to_numpy(zero_copy_only=False))


def _parts(folder, sizes, sample_files, d=6, seed=0):
    """Parquet part files of ``sizes`` rows (features, label); returns the concatenated features and labels."""
    xs, labels = [], []
    for i, n in enumerate(sizes):
        x = np.random.default_rng(seed + i).random((n, d), dtype=np.float32)
        label = (np.arange(n) + i) % 3
        sample_files.write_parquet(folder / f"part-{i:05d}.parquet", x, label=label)
        xs.append(x)
        labels.append(label)
    return np.concatenate(xs), np.concatenate(labels)


def test_a_parquet_folder_embeds_like_predict_on_the_concatenated_features(tmp_path, model, tracker, sample_files):
    x, labels = _parts(tmp_path / "parts", [5, 0, 7, 4], sample_files)
    (tmp_path / "parts" / "_SUCCESS").write_text("")  # bookkeeping files are skipped, empty parts too
    done = embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "out", use_ray=False, batch_size=3)
    assert (done.rows, done.files, done.dim) == (16, 3, 3)
    table, emb = _read(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    assert table.column("id").to_pylist() == list(range(16))  # prefix sums in file order
    assert table.column("label").to_pylist() == labels.tolist()
    assert set(table.column("split").to_pylist()) == {"input"}
    assert table.schema.metadata[b"drlim.schema_version"] == str(EMBEDDINGS_SCHEMA_VERSION).encode()
    np.testing.assert_allclose(emb, model.predict(x), rtol=1e-5, atol=1e-6)


def test_npy_and_npz_inputs_are_reshaped_and_uint8_scaled(tmp_path, model, tracker):
    raw = np.random.default_rng(1).integers(0, 256, (9, 2, 3), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", raw)
    embed(tracker, model.uri, str(tmp_path / "u8.npy"), tmp_path / "a", use_ray=False)
    table, emb = _read(tmp_path / "a")
    assert table.column("label").to_pylist() == [-1] * 9
    np.testing.assert_allclose(emb, model.predict(raw / 255.0), rtol=1e-5, atol=1e-6)

    embed(tracker, model.uri, str(tmp_path / "u8.npy"), tmp_path / "b", use_ray=False, scale_uint8=False)
    np.testing.assert_allclose(_read(tmp_path / "b")[1], model.predict(raw.astype(np.float32)), rtol=1e-5, atol=1e-5)

    x = np.random.default_rng(2).random((4, 6))  # float64, flat: cast and reshaped to (1, 2, 3)
    np.savez(tmp_path / "two.npz", pixels=x, other=x, y=np.arange(4))
    with pytest.raises(DataError, match=r"holds arrays \['other', 'pixels', 'y'\]; choose the features with --key"):
        embed(tracker, model.uri, str(tmp_path / "two.npz"), tmp_path / "c", use_ray=False)
    with pytest.raises(DataError, match=r"has no array 'nope'"):
        embed(tracker, model.uri, str(tmp_path / "two.npz"), tmp_path / "c", use_ray=False, key="nope")
    embed(tracker, model.uri, str(tmp_path / "two.npz"), tmp_path / "c", use_ray=False, key="pixels", label_column="y")
    table, emb = _read(tmp_path / "c")
    assert table.column("label").to_pylist() == [0, 1, 2, 3]
    np.testing.assert_allclose(emb, model.predict(x), rtol=1e-5, atol=1e-6)


def test_labels_are_kept_when_integers_and_an_explicit_label_column_must_exist(tmp_path, model, tracker, sample_files):
    x = np.random.default_rng(3).random((3, 6), dtype=np.float32)
    sample_files.write_parquet(tmp_path / "names.parquet", x, label=pa.array(["a", "b", "c"]), k=np.array([4, 5, 6]))
    embed(tracker, model.uri, str(tmp_path / "names.parquet"), tmp_path / "a", use_ray=False)
    assert _read(tmp_path / "a")[0].column("label").to_pylist() == [-1, -1, -1]  # a default never fails a file
    embed(tracker, model.uri, str(tmp_path / "names.parquet"), tmp_path / "b", use_ray=False, label_column="k")
    assert _read(tmp_path / "b")[0].column("label").to_pylist() == [4, 5, 6]
    with pytest.raises(DataError, match=r"names.parquet has no column 'y' for --label-column; it holds \['features'"):
        embed(tracker, model.uri, str(tmp_path / "names.parquet"), tmp_path / "c", use_ray=False, label_column="y")


@pytest.mark.parametrize("kind", ["npy", "fixed-size list", "list"])
def test_a_shape_the_model_cannot_take_is_one_line_naming_the_file_and_shapes(tmp_path, model, tracker, kind):
    path = tmp_path / ("in.npy" if kind == "npy" else "in.parquet")
    x = np.zeros((3, 5), np.float32)
    if kind == "npy":
        np.save(path, x)
    else:  # a fixed-size list's width is in the footer; a plain list's is found when the file is read
        column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 5) if kind != "list" else pa.array(x.tolist())
        pq.write_table(pa.table({"features": column}), path)
    with pytest.raises(DataError) as info:
        embed(tracker, model.uri, str(path), tmp_path / "out", use_ray=False)
    message = str(info.value)
    assert message == (
        f"{path}: each sample has 5 values (shape [5]), but {model.uri} takes [1, 2, 3] (6 values); "
        f"give features of that size (a Parquet list column or an (n, ...) array), or the model "
        f"trained on these"
    )
    assert not (tmp_path / "out").exists()


def test_the_output_folder_is_complete_or_absent(tmp_path, model, tracker, sample_files, monkeypatch):
    _parts(tmp_path / "parts", [3, 4, 5], sample_files)
    embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "out", use_ray=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

    calls = []

    def fail_on_the_third(predict, entry, *args, **kwargs):
        calls.append(entry.file.name)
        if len(calls) == 3:
            raise DataError(f"{entry.file.name}: broken")
        return embed_input(predict, entry, *args, **kwargs)

    monkeypatch.setattr(embed_stage, "embed_input", fail_on_the_third)
    with pytest.raises(DataError, match="part-00002.parquet: broken"):
        embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "out", use_ray=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before  # the last good one stays
    calls.clear()
    with pytest.raises(DataError, match="broken"):
        embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "new", use_ray=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]  # no "new", no hidden temporary folder
    with pytest.raises(DataError, match="holds input files .* and would be replaced"):
        embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path, use_ray=False)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not numpy"), "not a readable NumPy file"),
        (lambda p: np.save(p, np.arange(3.0)), "must hold one sample per row, shaped (n, ...)"),
        (lambda p: np.save(p, np.array(["a", "b"])[:, None]), "must be numbers"),
        (lambda p: np.save(p, np.full((1, 2, 3), np.nan)), "NaN or infinite"),
    ],
)
def test_bad_inputs_say_what_is_wrong(tmp_path, model, tracker, make, message):
    path = tmp_path / "in.npy"
    make(path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        embed(tracker, model.uri, str(path), tmp_path / "out", use_ray=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_command_embeds_a_folder_and_says_where(tmp_path, model, sample_files, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _parts(tmp_path / "parts", [2, 3], sample_files)
    assert main(["embed", "--model", model.uri, "--input", "parts", "--output", "emb.parquet"]) == 0
    assert "wrote 5 embeddings (3-d) of 2 file(s) to emb.parquet/" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "emb.parquet").num_rows == 5
    (tmp_path / "file.parquet").write_bytes(b"x")
    assert main(["embed", "--model", model.uri, "--input", "parts", "--output", "file.parquet"]) == 2
    assert "--output file.parquet is a file" in capsys.readouterr().err


def test_a_folder_on_object_storage_embeds_like_a_local_one(tmp_path, model, tracker, s3_server):
    import io

    import pyarrow.fs as pafs

    s3 = pafs.S3FileSystem(**s3_server)
    x = np.random.default_rng(5).random((7, 6), dtype=np.float32)
    pq.write_table(
        pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x[:4].ravel()), 6)}),
        "drlim/embed/a.parquet",
        filesystem=s3,
    )
    buffer = io.BytesIO()
    np.savez(buffer, features=x[4:].reshape(3, 2, 3), label=np.array([7, 8, 9]))
    with s3.open_output_stream("drlim/embed/b.npz") as out:  # read through zipfile over a seekable S3 file
        out.write(buffer.getvalue())
    embed(tracker, model.uri, "s3://drlim/embed", tmp_path / "out", storage_options=s3_server, use_ray=False)
    table, emb = _read(tmp_path / "out")
    assert table.column("label").to_pylist() == [-1] * 4 + [7, 8, 9]
    np.testing.assert_allclose(emb, model.predict(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=r"^--input: s3://drlim/nothing does not exist; --input takes"):
        embed(tracker, model.uri, "s3://drlim/nothing", tmp_path / "none", storage_options=s3_server)


def test_ray_data_actors_embed_like_the_process_and_report_a_files_error_in_one_line(
    tmp_path, model, tracker, sample_files, ray_local
):
    x, labels = _parts(tmp_path / "parts", [6, 5, 7], sample_files)
    done = embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "out", use_ray=True)
    assert (done.rows, done.actors) == (18, 2)
    table, emb = _read(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(18)) and table.column("label").to_pylist() == labels.tolist()
    np.testing.assert_allclose(emb, model.predict(x), rtol=1e-5, atol=1e-6)

    # A plain list column's width is only seen when an actor reads the file: its error still comes back as itself.
    pq.write_table(pa.table({"features": pa.array(np.zeros((2, 4)).tolist())}), tmp_path / "parts" / "part-9.parquet")
    with pytest.raises(DataError, match=r"part-9.parquet: each sample has 4 values \(shape \[4\]\)") as info:
        embed(tracker, model.uri, str(tmp_path / "parts"), tmp_path / "bad", use_ray=True)
    assert "\n" not in str(info.value) and not (tmp_path / "bad").exists()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_a_library_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "x.npy"
    path.write_bytes(b"\x93NUMPY" + blob)
    try:
        entry = inspect_input(local_file(path), None, None)
        table = embed_input(lambda x: x.reshape(len(x), -1), entry, ModelInput("m", None, "float32"), "m")
    except DataError:
        return
    assert table.num_rows == entry.rows
