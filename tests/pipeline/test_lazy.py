"""Package ``__init__`` files only re-export, lazily: importing a package or its light modules stays cheap."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

PACKAGES = ["encoders", "pipeline.data", "pipeline.pairs", "pipeline.train", "pipeline.evaluate"]
HEAVY = ("ray", "torch", "faiss", "mlflow", "pyarrow")


def _fresh_modules(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_resolves_and_none_is_shadowed_by_a_module(package):
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert not set(module.__all__) & submodules, "an export named like a module is shadowed once it is imported"
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_loading_a_job_imports_neither_ray_torch_nor_faiss():
    assert _fresh_modules("from pipeline.config import load_job; load_job('jobs/mnist_4_9.yaml')") == []


def test_packages_import_nothing_heavy_until_a_name_is_used():
    assert _fresh_modules("import encoders, pipeline.data, pipeline.pairs, pipeline.train, pipeline.evaluate") == []
    assert "torch" in _fresh_modules("from encoders import build_encoder")


def test_help_validate_and_a_run_of_a_bad_job_import_nothing_heavy():
    code = (
        "import contextlib, io\nfrom pipeline.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['validate', 'jobs/mnist_4_9.yaml']) == 0\n"
        "    assert main(['run', 'jobs/mnist_4_9.yaml', '--set', 'train.margn=2']) == 2\n"
        "    assert main(['tune', 'jobs/mnist_4_9.yaml', '--search', 'train.margin=[1,2]', '--set', 'x=1']) == 2\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert _fresh_modules(code) == []


def test_a_run_and_its_training_workers_leave_torchvision_until_an_image_model_or_rotation_needs_it():
    # torchvision costs every process ~1.5 s: the CLI of each run, each Ray Train worker and controller.
    probe = "import sys, pipeline.orchestration.run, pipeline.train.worker\nprint('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_the_pair_stage_driver_imports_neither_torch_nor_mlflow():
    # torch alone is ~650 MB of resident memory: drlim pairs keeps its driver under 1 GiB at any data size.
    code = (
        "import pipeline.cli, pipeline.orchestration.run\nfrom pipeline.data.stage import write_store\n"
        "from pipeline.pairs.stage import write_pair_set"
    )
    assert not {"torch", "mlflow"} & set(_fresh_modules(code))
