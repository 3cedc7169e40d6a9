import logging
import os
import stat
import threading
import time

import pytest

from pipeline.errors import NoSpaceError
from pipeline.infrastructure.atomic import atomic_dir, atomic_path, check_room, content_hash, exclusive, write_json


def test_atomic_path_publishes_only_on_success_with_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_atomic_dir_replaces_whole_directory_only_on_success(tmp_path):
    target = tmp_path / "stage"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]


def test_content_hash_ignores_key_order_and_write_json_roundtrips(tmp_path):
    assert content_hash({"a": 1, "b": [2]}) == content_hash({"b": [2], "a": 1}) != content_hash({"a": 2, "b": [2]})
    write_json(tmp_path / "m.json", {"x": 1})
    assert (tmp_path / "m.json").read_text().strip() == '{\n  "x": 1\n}'


def test_a_full_disk_while_writing_is_one_error_and_leaves_nothing_behind(small_filesystem):
    target = small_filesystem / "stage"
    with pytest.raises(NoSpaceError) as info, atomic_dir(target, "the pair set") as tmp:
        (tmp / "shard-0.parquet").write_bytes(bytes(3 * 2**20))
    assert str(info.value).startswith(f"no space left on {small_filesystem} while writing the pair set (")
    assert list(small_filesystem.iterdir()) == []
    with pytest.raises(NoSpaceError, match="while writing .*out.bin"), atomic_path(small_filesystem / "out.bin") as tmp:
        tmp.write_bytes(bytes(3 * 2**20))
    assert list(small_filesystem.iterdir()) == []


def test_the_rest_of_a_stage_is_refused_when_its_first_shard_shows_it_will_not_fit(small_filesystem):
    mb = 2**20
    check_room(small_filesystem, mb // 2, 100, 400, "the pair set")  # 1.5 MB more: fits in 2 MB
    check_room(small_filesystem, 0, 0, 400, "the pair set")  # nothing to go by
    with pytest.raises(NoSpaceError) as info:
        check_room(small_filesystem, mb, 100, 400, "the pair set")  # 3 MB more
    assert str(info.value) == (
        f"no space left on {small_filesystem} while writing the pair set (needs ~1.0 MB more, "
        f"2.0 MB free); free space or move --workdir; finished stages are kept"
    )


def test_runs_take_turns_at_a_lock_and_the_later_one_says_it_waits(tmp_path, caplog):
    order = []
    holding = threading.Event()

    def first() -> None:
        with exclusive(tmp_path, "pairs-abc", "first waits"):
            holding.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with (
        caplog.at_level(logging.INFO, logger="pipeline.infrastructure.atomic"),
        exclusive(tmp_path, "pairs-abc", "second waits"),
    ):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert [r.getMessage() for r in caplog.records] == ["second waits"]
    with exclusive(tmp_path, "pairs-abc", "nobody holds it"):  # released by both, nothing logged
        pass
    assert len(caplog.records) == 1
