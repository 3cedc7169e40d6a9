import errno
import sqlite3

import pytest

from pipeline.errors import (
    DataError,
    NoSpaceError,
    StageError,
    is_no_space,
    is_permanent,
    mount_point,
    no_space,
)


def test_no_space_names_the_filesystem_what_was_written_the_shortfall_and_the_fix(small_filesystem):
    error = no_space(small_filesystem / "samples" / "abc" / "shard.parquet", "the sample store", 5 * 2**20)
    assert isinstance(error, NoSpaceError)
    assert str(error) == (
        f"no space left on {small_filesystem} while writing the sample store (needs ~3.0 MB "
        f"more, 2.0 MB free); free space or move --workdir; finished stages are kept"
    )
    assert "(needs ~12 MB more, 0.5 MB free)" in str(no_space(small_filesystem, "x", 12.5 * 2**20, 2**19))
    assert "needs" not in str(no_space(small_filesystem, "x"))  # unknown need: only what is free
    assert mount_point(small_filesystem / "not" / "yet") == small_filesystem


def test_a_full_disk_is_recognised_however_a_library_reports_it(small_filesystem):
    with pytest.raises(OSError) as written:
        (small_filesystem / "big").write_bytes(bytes(3 * 2**20))
    (small_filesystem / "big").unlink()
    database = sqlite3.connect(small_filesystem / "full.db")
    database.execute("create table t (b blob)")
    with pytest.raises(sqlite3.OperationalError) as stored:
        for _ in range(5):
            database.execute("insert into t values (?)", (bytes(2**20),))
            database.commit()
    database.close()
    for exc in (written.value, stored.value, RuntimeError("[Errno 28] No space left on device")):
        assert is_no_space(exc), exc
    assert not is_no_space(OSError(errno.EACCES, "Permission denied"))


def test_only_errors_a_restart_cannot_cure_are_permanent():
    for permanent in (DataError("bad"), StageError("stale"), OSError(errno.ENOSPC, "No space left on device")):
        assert is_permanent(permanent)
    for passing in (RuntimeError("worker lost"), ConnectionError("reset"), OSError(errno.EIO, "I/O error")):
        assert not is_permanent(passing)
