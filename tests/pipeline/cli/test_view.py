"""``drlim view`` in-process: every bad input is one ``drlim: error:`` line with exit 2; --out writes one page."""

from __future__ import annotations

import socket

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.explore.page import read_page


def _embeddings(path):
    table = embeddings_table(np.arange(20), "input", np.arange(20) % 2, np.random.default_rng(0).random((20, 2)))
    pq.write_table(table, path)
    return path


def _error(capsys, args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("drlim: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_a_target_that_is_nothing_known_is_named(tmp_path, capsys):
    err = _error(capsys, ["view", str(tmp_path / "nothing")])
    assert "nothing: no such file or folder, and not a run id (32 hex digits) or a model URI" in err


def test_a_folder_without_embeddings_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no embeddings here")
    assert "holds no .parquet files of embeddings" in _error(capsys, ["view", str(tmp_path)])


def test_a_run_id_without_a_store_or_unknown_to_it_is_named(tmp_path, capsys):
    run = "0123456789abcdef0123456789abcdef"
    err = _error(capsys, ["view", run, "--workdir", str(tmp_path)])
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}, so no run {run}" in err
    from pipeline.infrastructure.tracking import Tracker

    Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}").check_server()  # an empty store
    err = _error(capsys, ["view", run, "--workdir", str(tmp_path)])
    assert f"no run {run} in sqlite:///{tmp_path / 'mlflow.db'}" in err and "check the id" in err


def test_a_port_in_use_is_named_with_the_fix(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _error(capsys, ["view", str(_embeddings(tmp_path / "e.parquet")), "--port", str(port)])
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port N" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["a", "b", "c"], "shows one map or two side by side, got 3 targets"), (["a", "--port", "70000"], "--port 70000")],
)
def test_bad_arguments_are_refused(extra, message, capsys):
    assert message in _error(capsys, ["view", *extra])


def test_out_writes_one_page_of_two_maps(tmp_path, capsys):
    first, second = _embeddings(tmp_path / "a.parquet"), _embeddings(tmp_path / "b.parquet")
    assert main(["view", str(first), str(second), "--out", str(tmp_path / "both.html")]) == 0
    assert "(40 points)" in capsys.readouterr().out
    maps = read_page((tmp_path / "both.html").read_text())
    assert [meta["title"] for meta, _ in maps] == ["a.parquet", "b.parquet"] and maps[0][0]["n"] == 20
