"""Consistency of the cluster and server set-ups in infra/ (nothing is started: no cloud, Docker or Kubernetes).

The manifests are parsed and cross-checked against each other, against the repository (files the Dockerfile
copies, the module and job file the RayJob runs, the CLI that parses the RayJob's arguments) and against Ray's
own cluster-launcher schema, so that a renamed file, a changed image, a public port or a missing secret key
shows up here instead of on a cluster.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
README = INFRA / "README.md"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
CLUSTER_YAML = INFRA / "ray" / "cluster.yaml"
RAYCLUSTER = INFRA / "k8s" / "raycluster.yaml"
RAYJOB = INFRA / "k8s" / "rayjob.yaml"
MLFLOW_SECRET = INFRA / "k8s" / "mlflow-secret.example.yaml"
SHARED_PVC = INFRA / "k8s" / "shared-pvc.yaml"
COMPOSE = INFRA / "mlflow" / "docker-compose.yaml"
BASIC_AUTH_INI = INFRA / "mlflow" / "basic_auth.ini"
ENV_EXAMPLE = INFRA / "mlflow" / ".env.example"
MLFLOW_DOCKERFILE = INFRA / "mlflow" / "Dockerfile"

YAML_FILES = sorted(p for root in (INFRA, REPO / "jobs") for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
JOB_FILES = sorted((REPO / "jobs").glob("*.yaml"))
PUBLIC_SERVICE_TYPES = {"LoadBalancer", "NodePort"}


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def documents(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def only_document(path: Path) -> dict:
    docs = documents(path)
    assert len(docs) == 1, f"{rel(path)}: expected one YAML document, found {len(docs)}"
    return docs[0]


def documented_image() -> str:
    """The image name infra/README.md tells people to build and push (``export IMAGE=...``)."""
    match = re.search(r"^export IMAGE=(\S+)", README.read_text(), re.MULTILINE)
    assert match, "infra/README.md no longer says `export IMAGE=...`"
    return match.group(1)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [
        (text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text.strip() else "")
        for text in (t.strip() for t in logical)
    ]


def dockerfile_args(path: Path) -> dict[str, str]:
    args = {}
    for instruction, rest in dockerfile_instructions(path):
        if instruction == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name.strip()] = value.strip().strip('"')
    return args


def base_image_ray_version() -> str:
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py311-cpu", dockerfile_args(DOCKERFILE)["BASE_IMAGE"])
    assert match, "BASE_IMAGE default must be rayproject/ray:X.Y.Z-py311-cpu"
    return match.group(1)


def ray_cluster_specs() -> list[tuple[str, dict]]:
    return [
        ("RayCluster", only_document(RAYCLUSTER)["spec"]),
        ("RayJob.rayClusterSpec", only_document(RAYJOB)["spec"]["rayClusterSpec"]),
    ]


def pod_specs(spec: dict) -> list[tuple[str, dict]]:
    pods = [("head", spec["headGroupSpec"]["template"]["spec"])]
    pods += [(group["groupName"], group["template"]["spec"]) for group in spec["workerGroupSpecs"]]
    return pods


def ray_container(pod: dict) -> dict:
    return pod["containers"][0]  # KubeRay: the first container runs Ray


# ---- (a) everything parses ------------------------------------------------------------------------------------


def test_the_yaml_files_are_found():
    names = {rel(p) for p in YAML_FILES}
    for path in (CLUSTER_YAML, RAYCLUSTER, RAYJOB, MLFLOW_SECRET, SHARED_PVC, COMPOSE, *JOB_FILES):
        assert rel(path) in names
    assert JOB_FILES, "no job files in jobs/"


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_parses(path):
    docs = documents(path)
    assert docs, f"{rel(path)} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs), f"{rel(path)}: every document must be a mapping"


# ---- (b) the shipped jobs are valid -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", JOB_FILES, ids=rel)
def test_job_validates(path):
    from pipeline.config import load_job

    job = load_job(path, [])
    assert job.name


# ---- (c) KubeRay manifests ------------------------------------------------------------------------------------


def test_k8s_kinds_and_api_version():
    for path, kind in ((RAYCLUSTER, "RayCluster"), (RAYJOB, "RayJob")):
        doc = only_document(path)
        assert doc["apiVersion"] == "ray.io/v1", rel(path)
        assert doc["kind"] == kind, rel(path)
        assert doc["metadata"]["name"]


def test_rayjob_lifecycle():
    spec = only_document(RAYJOB)["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] > 0


def test_rayjob_runtime_env_ships_the_image_project_dir():
    runtime_env = yaml.safe_load(only_document(RAYJOB)["spec"]["runtimeEnvYAML"])
    assert isinstance(runtime_env, dict)
    env_vars = runtime_env["env_vars"]
    assert env_vars and all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()), (
        "runtime_env env_vars must map names to strings"
    )
    workdirs = [rest for instruction, rest in dockerfile_instructions(DOCKERFILE) if instruction == "WORKDIR"]
    assert runtime_env["working_dir"] == workdirs[-1], (
        "the RayJob must ship the project folder of the image (the Dockerfile's WORKDIR) as working_dir"
    )


def test_rayjob_entrypoint_runs_the_cli_on_a_job_of_this_repo():
    from pipeline.cli import build_parser
    from pipeline.config import load_job

    argv = shlex.split(only_document(RAYJOB)["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "jobs.entry"]
    module = importlib.util.find_spec("jobs.entry")
    assert module is not None and Path(module.origin).resolve() == (REPO / "jobs" / "entry.py").resolve()
    args = build_parser().parse_args(argv[3:])  # jobs/entry.py hands its arguments to pipeline.cli.main
    assert args.command == "run"
    assert (REPO / args.job).is_file(), f"the RayJob runs {args.job}, which is not in the repository"
    job = load_job(REPO / args.job, args.overrides)
    assert job.train.use_gpu is True, "GPU workers start at zero: the RayJob must ask for GPUs (train.use_gpu=true)"
    env_data_root = yaml.safe_load(only_document(RAYJOB)["spec"]["runtimeEnvYAML"])["env_vars"].get("DRLIM_DATA_ROOT")
    for path in filter(None, (args.workdir, args.data_root, env_data_root)):
        assert PurePosixPath(path).is_absolute(), f"{path}: the job's paths must be absolute"
        for where, spec in ray_cluster_specs():
            for group, pod in pod_specs(spec):
                mounts = [m["mountPath"] for m in ray_container(pod).get("volumeMounts", [])]
                assert any(PurePosixPath(path).is_relative_to(m) for m in mounts), (
                    f"{where} {group}: {path} is on no mounted volume, so not every node sees it"
                )


def test_shared_volume_is_one_read_write_many_claim_on_every_pod():
    pvc = only_document(SHARED_PVC)
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]
    for where, spec in ray_cluster_specs():
        for group, pod in pod_specs(spec):
            claims = {
                v["name"]: v["persistentVolumeClaim"]["claimName"]
                for v in pod.get("volumes", [])
                if "persistentVolumeClaim" in v
            }
            mounted = {m["name"] for m in ray_container(pod).get("volumeMounts", [])}
            assert pvc["metadata"]["name"] in {claims[n] for n in mounted if n in claims}, (
                f"{where} {group} does not mount the PVC {pvc['metadata']['name']}"
            )


def test_k8s_clusters_autoscale_a_gpu_group_with_token_auth():
    for where, spec in ray_cluster_specs():
        assert spec["enableInTreeAutoscaling"] is True, where
        assert spec["authOptions"]["mode"] == "token", f"{where}: Ray token authentication must be on"

        def gpus(group: dict) -> int:
            return int(ray_container(group["template"]["spec"])["resources"]["limits"].get("nvidia.com/gpu", 0))

        gpu_groups = [g for g in spec["workerGroupSpecs"] if gpus(g) >= 1]
        assert gpu_groups, f"{where}: no worker group asks for nvidia.com/gpu"
        for group in gpu_groups:
            assert group["minReplicas"] == 0 <= group["replicas"] <= group["maxReplicas"], group["groupName"]
            assert group["maxReplicas"] >= 1
        for _, pod in pod_specs(spec):
            for env in ray_container(pod).get("env", []):
                assert not (env["name"] == "RAY_AUTH_MODE" and env.get("value") != "token"), where


def test_k8s_mlflow_settings_come_from_the_example_secret():
    secret = only_document(MLFLOW_SECRET)
    assert secret["kind"] == "Secret" and "example" in MLFLOW_SECRET.name
    keys = set(secret["stringData"])
    for where, spec in ray_cluster_specs():
        for group, pod in pod_specs(spec):
            env = {e["name"]: e for e in ray_container(pod).get("env", [])}
            assert "value" not in env["MLFLOW_TRACKING_URI"], f"{where} {group}: tracking URI must come from a Secret"
            for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys, f"{where} {group}: {name}"


def test_images_and_ray_version_match_the_documented_image():
    image = documented_image()
    readme = README.read_text()
    version = base_image_ray_version()
    for where, spec in ray_cluster_specs():
        assert str(spec["rayVersion"]) == version, f"{where}: rayVersion differs from the Dockerfile's Ray"
        for group, pod in pod_specs(spec):
            assert ray_container(pod)["image"] in (f"{image}:gpu", f"{image}:cpu"), f"{where} {group}"
    gpu_base = f"rayproject/ray:{version}-py311-cu128"
    assert gpu_base in readme, "infra/README.md must show how to build the CUDA variant of the image"


# ---- (d) Ray cluster launcher ---------------------------------------------------------------------------------


def test_cluster_launcher_config_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(yaml.safe_load(CLUSTER_YAML.read_text())))


def test_cluster_launcher_image_and_start_commands_are_consistent():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert config["docker"]["image"] == f"{documented_image()}:gpu"
    head = " ; ".join(config["head_start_ray_commands"])
    worker = " ; ".join(config["worker_start_ray_commands"])
    assert "ray start --head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert re.search(r"--dashboard-host[= ]127\.0\.0\.1\b", head), "the dashboard must listen on loopback only"
    assert not re.search(r"0\.0\.0\.0", head + worker)
    port = re.search(r"--port[= ](\d+)", head).group(1)
    assert f"--address=$RAY_HEAD_IP:{port}" in worker, "workers must join the port the head starts on"

    run_options = " ".join(config["docker"]["run_options"])
    assert "--env RAY_AUTH_MODE=token" in run_options
    token_path = re.search(r"--env RAY_AUTH_TOKEN_PATH=(\S+)", run_options).group(1)
    assert str(PurePosixPath(token_path).parent) in config["file_mounts"], (
        "the token file must come from a file mount that every node gets"
    )
    shared = re.search(r"-v (\S+):(\S+)", run_options)
    assert shared.group(1) == shared.group(2)
    assert any(
        f" {shared.group(1)})" in c or c.rstrip().endswith(f" {shared.group(1)}")
        for c in config["initialization_commands"]
    ), "the shared volume must be mounted on each host"


def test_cluster_launcher_gpu_workers_autoscale_from_zero():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    types = config["available_node_types"]
    gpu = [t for name, t in types.items() if name != config["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert gpu, "no GPU worker type"
    for node_type in gpu:
        assert node_type["min_workers"] == 0 < node_type["max_workers"] <= config["max_workers"]


# ---- (e) nothing public -----------------------------------------------------------------------------------------


def test_no_kubernetes_service_is_public():
    for path in (INFRA / "k8s").rglob("*.y*ml"):
        for doc in documents(path):
            if doc.get("kind") == "Service":
                assert doc["spec"].get("type", "ClusterIP") not in PUBLIC_SERVICE_TYPES, rel(path)
    for where, spec in ray_cluster_specs():
        head = spec["headGroupSpec"]
        assert head.get("serviceType", "ClusterIP") == "ClusterIP", where
        assert head.get("headService", {}).get("spec", {}).get("type", "ClusterIP") not in PUBLIC_SERVICE_TYPES
        assert not head.get("enableIngress", False), where


def test_compose_publishes_only_mlflow_and_only_on_loopback():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = {}
    for name, service in services.items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert isinstance(port, dict) or str(port).count(":") == 2, f"{name}: {port} binds every interface"
            assert host_ip == "127.0.0.1", f"{name}: {port} is published beyond loopback"
            published.setdefault(name, []).append(port)
    assert set(published) == {"mlflow"}, f"only MLflow may be published, not {sorted(set(published) - {'mlflow'})}"


def test_compose_mlflow_runs_with_basic_auth_postgres_and_proxied_s3():
    compose = yaml.safe_load(COMPOSE.read_text())
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    option = {command[i]: command[i + 1] for i in range(2, len(command) - 1) if command[i].startswith("--")}
    assert option["--app-name"] == "basic-auth"
    assert option["--backend-store-uri"].startswith("postgresql://")
    assert option["--artifacts-destination"].startswith("s3://")
    assert "--serve-artifacts" in command and option["--host"] == "0.0.0.0"
    env = mlflow["environment"]
    for name in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", env[name]), f"{name} must come from .env, not the file"
    mounts = dict(v.split(":")[:2][::-1] for v in mlflow["volumes"])  # container path -> source
    assert (COMPOSE.parent / mounts[env["MLFLOW_AUTH_CONFIG_PATH"]]).resolve() == BASIC_AUTH_INI.resolve()
    dockerfile = MLFLOW_DOCKERFILE.read_text()
    assert re.search(r"mlflow\[auth\]==", dockerfile), "the basic-auth app needs mlflow[auth] (Flask-WTF)"
    assert (COMPOSE.parent / mlflow["build"]["context"] / "Dockerfile").resolve() == MLFLOW_DOCKERFILE.resolve()


def test_basic_auth_ini_holds_no_secret_and_keeps_users_on_a_volume():
    ini = configparser.ConfigParser()
    ini.read(BASIC_AUTH_INI)
    section = ini["mlflow"]
    assert not section.get("admin_password"), "the admin password belongs in .env (MLFLOW_AUTH_ADMIN_PASSWORD)"
    assert section["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    db = section["database_uri"]
    assert db.startswith("sqlite:////")
    volumes = [
        v.split(":")[1]
        for v in yaml.safe_load(COMPOSE.read_text())["services"]["mlflow"]["volumes"]
        if not v.startswith(".")
    ]
    assert any(PurePosixPath(db.removeprefix("sqlite:///")).is_relative_to(v) for v in volumes), (
        "the user database must live on a named volume, or users vanish with the container"
    )


def test_env_example_defines_every_variable_the_compose_file_uses_with_placeholders():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    assert used <= set(example), f".env.example lacks {sorted(used - set(example))}"
    for name, value in example.items():
        if any(word in name for word in ("PASSWORD", "SECRET")):
            assert value.startswith("change-me"), f"{name} in .env.example must be a placeholder"


@pytest.mark.skipif(not (REPO / ".git").exists() or not shutil.which("git"), reason="not a git checkout")
def test_real_env_file_is_git_ignored():
    result = subprocess.run(["git", "check-ignore", "-q", "infra/mlflow/.env"], cwd=REPO)
    assert result.returncode == 0, "infra/mlflow/.env (the real secrets) must be git-ignored"


# ---- (f) the drlim image --------------------------------------------------------------------------------------


def copy_sources() -> list[str]:
    sources = []
    for instruction, rest in dockerfile_instructions(DOCKERFILE):
        if instruction in ("COPY", "ADD"):
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def test_dockerfile_copy_sources_exist_and_are_sent_in_the_build_context():
    sources = copy_sources()
    assert sources
    ignore = (DOCKERFILE.parent / f"{DOCKERFILE.name}.dockerignore").read_text().splitlines()
    included = {line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in [line.strip() for line in ignore], "the ignore file is an allow-list"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository root (the build context)"
        assert source.rstrip("/") in included, f"COPY {source}: excluded by {DOCKERFILE.name}.dockerignore"


def test_dockerfile_copies_every_package_pip_installs():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {s.rstrip("/") for s in copy_sources()}
    assert {"pyproject.toml", "README.md"} <= copied  # README.md: pyproject's `readme`
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied, f"package {pattern} is not copied into the image"


def test_dockerfile_torch_pin_satisfies_pyproject():
    import tomllib
    from packaging.requirements import Requirement

    args = dockerfile_args(DOCKERFILE)
    deps = {
        Requirement(d).name: Requirement(d)
        for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert deps["torch"].specifier.contains(args["TORCH_VERSION"])
    assert deps["torchvision"].specifier.contains(args["TORCHVISION_VERSION"])
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu"), "the default (cpu) image must get CPU-only torch"


def test_readme_names_only_infra_files_that_exist():
    for path in sorted(set(re.findall(r"infra/[\w./-]+\.(?:ya?ml|sh|ini|md|example)\b", README.read_text()))):
        if path.endswith("compose.private.yaml"):  # the reader's own override, not shipped
            continue
        assert (REPO / path).exists(), f"infra/README.md names {path}, which does not exist"
