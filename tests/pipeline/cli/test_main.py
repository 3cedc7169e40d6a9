"""The ``drlim`` command in-process: help that helps, one-line errors with exit 2, validate prints the job."""

import pytest
import yaml

from pipeline.cli import build_parser, main
from tests.conftest import REPO

JOB = str(REPO / "jobs" / "mnist_4_9.yaml")

COMMANDS = ["run", "pairs", "tune", "submit", "status", "logs", "stop", "validate", "embed", "models", "report", "view"]


def test_top_level_help_lists_every_command_the_environment_and_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for word in [*COMMANDS, "DRLIM_DATA_ROOT", "MLFLOW_TRACKING_URI", "RAY_ADDRESS", "examples:"]:
        assert word in out, word


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_its_own_help(command, capsys):
    args = [command, "promote", "--help"] if command == "models" else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(args)
    assert info.value.code == 0 and "usage: drlim" in capsys.readouterr().out


def test_validate_prints_the_resolved_job_with_overrides(capsys):
    assert main(["validate", JOB, "--set", "train.epochs=3"]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    assert job["train"]["epochs"] == 3 and job["data"]["digits"] == [4, 9]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "nope.yaml"], "drlim: error: job file nope.yaml does not exist; the shipped jobs are in jobs/"),
        (["validate", JOB, "--set", "train.epoch=3"], "did you mean 'train.epochs'?"),
        (["models", "promote", "m", "1", "--alias", "v2"], "alias 'v2' is reserved by MLflow"),
        (
            ["embed", "--model", "models:/m@champion", "--input", "missing.npy"],
            "missing.npy does not exist; --input takes",
        ),
    ],
)
def test_user_errors_are_one_message_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("drlim: error:") and "Traceback" not in err


def test_a_full_disk_anywhere_in_a_run_is_one_line_and_exit_2(small_filesystem, monkeypatch, capsys):
    # The workdir's filesystem is full before the run: MLflow's store (SQLite: "database or disk is full") is the
    # first thing it writes, outside the stages' own atomic writes.
    import shutil

    (small_filesystem / "ballast").write_bytes(bytes(shutil.disk_usage(small_filesystem).free))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["run", JOB, "--workdir", str(small_filesystem)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"drlim: error: no space left on {small_filesystem} while writing ")
    assert err.endswith("; free space or move --workdir; finished stages are kept\n") and err.count("\n") == 1
