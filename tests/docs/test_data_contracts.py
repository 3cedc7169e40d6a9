"""The data contracts page (docs/reference/data-contracts.md) says what the code writes: each table's columns, in
order, with their types, and its schema version."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from pipeline.data import store
from pipeline.evaluate.embeddings import EMBEDDINGS_SCHEMA_VERSION, embeddings_table
from pipeline.pairs import shards
from tests.docs.blocks import DOCS

PAGE = (DOCS / "reference" / "data-contracts.md").read_text()


def _section(title: str) -> str:
    start = PAGE.index(f"## {title}\n")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:] if end < 0 else PAGE[start:end]


def _documented(title: str) -> list[tuple[str, str]]:
    return re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", _section(title), re.M)


def _written(schema: pa.Schema) -> list[tuple[str, str]]:
    def name(t: pa.DataType) -> str:
        if isinstance(t, pa.DictionaryType):
            return f"dictionary<{t.index_type}, {t.value_type}>"
        if isinstance(t, pa.FixedSizeListType):
            return f"fixed_size_list<{t.value_type}>"
        return str(t)

    return [(f.name, name(f.type)) for f in schema]


def _same(documented: list[tuple[str, str]], written: list[tuple[str, str]]) -> None:
    assert [n for n, _ in documented] == [n for n, _ in written]
    for (column, doc_type), (_, code_type) in zip(documented, written):
        if code_type.startswith("fixed_size_list<"):  # the page gives the size in words: [d], [output_dim]
            assert doc_type.startswith("fixed_size_list<"), column
        else:
            assert doc_type == code_type, column


def test_samples():
    _same(_documented("Samples"), _written(store.sample_schema((1, 28, 28), dtype=np.dtype(np.uint8))))
    assert f"schema\n**version {store.SampleStore.SCHEMA_VERSION}**" in _section("Samples")
    assert f"(version {store.FLOAT32_VERSION} stores" in _section("Samples")


def test_pairs():
    _same(_documented("Pairs"), _written(shards.PAIR_SCHEMA))
    assert f"**version {shards.SCHEMA_VERSION}**" in _section("Pairs")
    for source in shards.SOURCES:
        assert f"`{source}`" in _section("Pairs")


def test_embeddings():
    table = embeddings_table(np.arange(2), "test", np.zeros(2, np.int64), np.zeros((2, 2), np.float32))
    _same(_documented("Embeddings"), _written(table.schema))
    assert f"**version {EMBEDDINGS_SCHEMA_VERSION}**" in _section("Embeddings")


@pytest.mark.parametrize("title", ["Samples", "Pairs", "Embeddings"])
def test_every_contract_is_on_the_page(title):
    assert _documented(title)
