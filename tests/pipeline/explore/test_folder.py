import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import DataError
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.explore.folder import read_embeddings


def test_every_part_of_a_folder_is_read_in_path_order_with_its_columns(tmp_path):
    rng = np.random.default_rng(0)
    parts = []
    for p in range(3):
        ids = np.arange(p * 50, (p + 1) * 50)
        embedding = rng.random((50, 2)).astype(np.float32)
        table = embeddings_table(ids, "input", ids % 10, embedding).append_column("score", pa.array(ids * 0.5))
        pq.write_table(table, tmp_path / f"part-{p:05d}.parquet", row_group_size=16)
        parts.append(embedding)
    (tmp_path / "_SUCCESS").write_text("")
    points = read_embeddings(tmp_path)
    assert points.ids.tolist() == list(range(150)) and points.labels.tolist() == [i % 10 for i in range(150)]
    assert np.array_equal(points.embedding, np.concatenate(parts))
    assert set(points.split) == {"input"} and all(t is None for t in points.transform)
    assert np.array_equal(points.metadata["score"], np.arange(150) * 0.5)


def test_a_folder_without_embeddings_is_refused_naming_what_it_needs(tmp_path):
    with pytest.raises(DataError, match="holds no .parquet files of embeddings"):
        read_embeddings(tmp_path)
    pq.write_table(pa.table({"id": [1, 2], "features": [[0.1, 0.2], [0.3, 0.4]]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x.parquet: no 'embedding' column \(it has \['id', 'features'\]\)"):
        read_embeddings(tmp_path)
    one_d = embeddings_table(np.arange(2), "input", np.zeros(2), np.zeros((2, 1), np.float32))
    pq.write_table(one_d, tmp_path / "x.parquet")
    with pytest.raises(DataError, match="not a fixed-size list of at least 2 floats"):
        read_embeddings(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="no such file or folder"):
        read_embeddings(tmp_path / "missing")
