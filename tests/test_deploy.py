"""The nightly-job files under deploy/ are checked offline, against their published schemas where
one exists, plus the security properties a reviewer would look for.

* GitHub workflow: check-jsonschema's vendored copy of the SchemaStore github-workflow schema (run
  as its CLI, in a subprocess whose sockets are disabled, so a download could not go unnoticed).
* Kubernetes: kubernetes-validate's bundled OpenAPI schemas, strict (unknown fields are errors).
* Dockerfile: parsed by dockerfile-parse; the build context by docker-py's .dockerignore matcher.
* crontab: croniter.
No docker engine, cluster or network is needed.
"""
from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
WORKFLOW = DEPLOY / "github-actions" / "attest-nightly.yml"
K8S = DEPLOY / "kubernetes" / "cronjob.yaml"
CRON = DEPLOY / "cron" / "attest.cron"
README = ROOT / "README.md"


def readme_section() -> str:
    """The README's section "Running it every night", up to the next top-level heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Running it every night\n")
    end = text.find("\n## ", start + 3)
    return text[start:end if end != -1 else None]

ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# Config keys whose value is a credential, wherever they appear (kms_key_id and *_path are not).
SECRET_KEY = re.compile(r"(^|_)(token|api_key|app_key|webhook_url|routing_key|password|secret|"
                        r"private_key|client_secret)$")
# What real credentials look like: none of these may appear in a file under deploy/.
LITERAL_SECRET = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|"
    r"hooks\.slack\.com/services/T[A-Z0-9]+/|AKIA[0-9A-Z]{16}|SSWS\s+[A-Za-z0-9_-]{20,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# The sections another change is adding to the config model right now.
CONCURRENT_SECTIONS = {"store", "store_options", "signing", "alerts"}
UID = 10001


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt of a validator to reach the network fails the test instead of succeeding."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network access attempted during an offline test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ---------------------------------------------------------------- helpers

def k8s_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(K8S.read_text(encoding="utf-8")) if d]


def k8s_doc(kind: str) -> dict[str, Any]:
    found = [d for d in k8s_docs() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {K8S.name}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    return k8s_doc("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    containers = pod_spec()["containers"]
    assert len(containers) == 1
    return containers[0]


def configmap_config() -> dict[str, Any]:
    return yaml.safe_load(k8s_doc("ConfigMap")["data"]["config.yaml"])


def walk(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every leaf of a YAML value with its key path."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in walk(v, path + (k,))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in walk(v, path + (i,))]
    return [(path, value)]


def secret_leaves(config: dict[str, Any]) -> list[tuple[tuple, Any]]:
    return [(p, v) for p, v in walk(config) if isinstance(p[-1], str) and SECRET_KEY.search(p[-1])]


def env_refs(config: dict[str, Any]) -> set[str]:
    return {m for _, v in walk(config) if isinstance(v, str)
            for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", v)}


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 (PyYAML) reads the key `on` as True; GitHub reads it as "on".
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["scan"]["steps"]


def step_using(action: str) -> dict[str, Any]:
    found = [s for s in workflow_steps() if s.get("uses", "").startswith(action + "@")]
    assert len(found) == 1, f"expected one step using {action}"
    return found[0]


def scan_step() -> dict[str, Any]:
    found = [s for s in workflow_steps() if "attest scan" in s.get("run", "")]
    assert len(found) == 1
    return found[0]


def dockerfile():
    from dockerfile_parse import DockerfileParser
    return DockerfileParser(str(DOCKERFILE), env_replace=False)


def instructions(name: str) -> list[str]:
    return [i["value"] for i in dockerfile().structure if i["instruction"] == name]


def final_stage() -> list[dict[str, Any]]:
    structure = dockerfile().structure
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


# A guard for the check-jsonschema subprocess: the same socket refusal, then its CLI.
CHECK_JSONSCHEMA = (
    "import socket, sys\n"
    "def refuse(*a, **k):\n"
    "    raise OSError('network access attempted during an offline test')\n"
    "socket.socket.connect = refuse\n"
    "socket.create_connection = refuse\n"
    "socket.getaddrinfo = refuse\n"
    "sys.argv = ['check-jsonschema'] + sys.argv[1:]\n"
    "from check_jsonschema import main\n"
    "main()\n"
)


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHECK_JSONSCHEMA, *args],
                          capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- GitHub Actions workflow

@pytest.mark.parametrize("schema", ["vendor.github-workflows",
                                    "custom.github-workflows-require-timeout"])
def test_workflow_matches_the_github_workflow_schema(schema: str) -> None:
    result = check_jsonschema("--builtin-schema", schema, str(WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_workflow_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """The check above has teeth: a misspelt job key fails it (offline, with the same guard)."""
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("timeout-minutes:", "timeout:"),
                      encoding="utf-8")
    result = check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'timeout' was unexpected" in result.stdout


def test_the_offline_guard_blocks_a_schema_download(tmp_path: Path) -> None:
    """A remote schema cannot be fetched under the guard, so the passes above used the vendored one."""
    result = check_jsonschema("--no-cache", "--schemafile",
                              "https://json.schemastore.org/github-workflow.json", str(WORKFLOW))
    assert result.returncode != 0
    assert "ok -- validation done" not in result.stdout


def test_workflow_runs_nightly_and_on_demand_never_twice_at_once() -> None:
    from croniter import croniter
    wf = workflow()
    crons = [entry["cron"] for entry in wf["on"]["schedule"]]
    assert len(crons) == 1 and croniter.is_valid(crons[0]), crons
    assert crons[0].split()[2:] == ["*", "*", "*"], "the scan runs every day"
    assert "workflow_dispatch" in wf["on"]
    assert wf["concurrency"]["group"]
    assert wf["concurrency"]["cancel-in-progress"] is False, "a cancelled scan leaves no bundle"
    assert wf["jobs"]["scan"]["timeout-minutes"] <= 120


def test_workflow_permissions_are_oidc_and_read_only() -> None:
    wf = workflow()
    assert wf["permissions"] == {"id-token": "write", "contents": "read"}
    assert "permissions" not in wf["jobs"]["scan"], "the job must not widen them"


def test_every_action_is_pinned_to_a_commit() -> None:
    uses = [s["uses"] for s in workflow_steps() if "uses" in s]
    assert {u.split("@")[0] for u in uses} >= {
        "actions/checkout", "actions/setup-python", "aws-actions/configure-aws-credentials",
        "actions/upload-artifact"}
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a commit"
    text = WORKFLOW.read_text(encoding="utf-8")
    for ref in uses:   # each pin says which release it is
        assert re.search(re.escape(ref) + r" # v\d+\.\d+\.\d+", text), ref


def test_aws_access_is_an_oidc_role_from_a_repository_variable() -> None:
    step = step_using("aws-actions/configure-aws-credentials")
    assert re.fullmatch(r"\$\{\{ vars\.[A-Z0-9_]+ \}\}", step["with"]["role-to-assume"])
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])
    steps = workflow_steps()
    assert steps.index(step) < steps.index(scan_step()), "credentials before the scan"


def test_scan_step_fails_the_job_on_a_regression() -> None:
    step = scan_step()
    assert step["run"].split() == ["attest", "scan", "--config", "attest/config.yaml",
                                   "--fail-on", "regression", "--log-format", "json"]
    assert "continue-on-error" not in step and "if" not in step


def test_scan_secrets_come_from_repository_secrets() -> None:
    env = scan_step()["env"]
    for name, value in env.items():
        assert re.fullmatch(r"\$\{\{ secrets\.[A-Z0-9_]+ \}\}", value), f"{name}: {value}"
    # The workflow's own GITHUB_TOKEN cannot read org settings: the org token is its own secret.
    assert env["GITHUB_TOKEN"] == "${{ secrets.ATTEST_GITHUB_TOKEN }}"
    # Every ${ENV} the example config refers to is provided.
    assert env_refs(configmap_config()) <= set(env)


def test_attest_is_installed_from_source_not_the_unrelated_pypi_name() -> None:
    """`attest` on PyPI is another project (a 2012 test framework): never `pip install attest`."""
    wf = workflow()
    install = [s["run"] for s in workflow_steps() if "pip install" in s.get("run", "")]
    assert len(install) == 1
    assert not re.search(r"pip install[^\n]*\sattest(\s|$|==)", install[0])
    assert wf["env"]["ATTEST_PIP_SPEC"].startswith("attest @ git+https://")
    assert step_using("actions/setup-python")["with"]["python-version"] in {"3.11", "3.12", "3.13"}


def test_report_is_uploaded_even_when_the_scan_fails() -> None:
    step = step_using("actions/upload-artifact")
    assert step["if"] == "always()"
    steps = workflow_steps()
    assert steps.index(step) > steps.index(scan_step())
    paths = step["with"]["path"].split()
    assert "attest/evidence/*/report.html" in paths
    assert 1 <= step["with"]["retention-days"] <= 90


# ---------------------------------------------------------------- Kubernetes

def test_k8s_file_holds_the_expected_documents_in_one_namespace() -> None:
    docs = k8s_docs()
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "ConfigMap", "Secret",
                                         "CronJob"]
    namespace = k8s_doc("Namespace")["metadata"]["name"]
    assert {d["metadata"].get("namespace") for d in docs[1:]} == {namespace}
    assert k8s_doc("Namespace")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"


def _k8s_versions() -> list[str]:
    from kubernetes_validate.utils import latest_version
    return sorted({"1.30", ".".join(latest_version().split(".")[:2])})


@pytest.mark.parametrize("version", _k8s_versions())
def test_every_k8s_document_matches_the_kubernetes_schema(version: str) -> None:
    import kubernetes_validate
    for doc in k8s_docs():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_strict_k8s_schema_rejects_a_misspelt_field() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError
    cronjob = copy.deepcopy(k8s_doc("CronJob"))
    ctx = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    ctx["securityContext"]["readOnlyRootFileSystem"] = ctx["securityContext"].pop(
        "readOnlyRootFilesystem")
    with pytest.raises(ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(cronjob, "1.30", strict=True)


def test_cronjob_never_overlaps_never_retries_and_is_bounded() -> None:
    spec = k8s_doc("CronJob")["spec"]
    from croniter import croniter
    assert croniter.is_valid(spec["schedule"])
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 6 * 3600
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0, "a retry would write a second bundle for the night"
    assert 0 < job["activeDeadlineSeconds"] <= 4 * 3600
    pod = pod_spec()
    assert pod["restartPolicy"] == "Never"
    assert 0 < pod["terminationGracePeriodSeconds"] <= 300


def test_pod_runs_as_the_images_non_root_user_with_nothing_extra() -> None:
    pod = pod_spec()
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == ctx["fsGroup"] == UID
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    c = container()["securityContext"]
    assert c["readOnlyRootFilesystem"] is True
    assert c["allowPrivilegeEscalation"] is False
    assert c["capabilities"] == {"drop": ["ALL"]}
    assert c.get("privileged", False) is False


def test_only_emptydirs_and_the_read_only_config_are_writable_or_mounted() -> None:
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    assert set(mounts) == {"/etc/attest", "/work", "/tmp"}
    for path in ("/work", "/tmp"):
        vol = volumes[mounts[path]["name"]]
        assert "emptyDir" in vol and vol["emptyDir"].get("sizeLimit"), path
        assert not mounts[path].get("readOnly", False)
    config = mounts["/etc/attest"]
    assert config["readOnly"] is True
    assert volumes[config["name"]]["configMap"]["name"] == k8s_doc("ConfigMap")["metadata"]["name"]
    assert container()["workingDir"] == "/work"


def test_config_is_named_by_attest_config_and_stages_bundles_on_the_emptydir() -> None:
    env = {e["name"]: e for e in container()["env"]}
    assert env["ATTEST_CONFIG"]["value"] == "/etc/attest/config.yaml"
    assert "config.yaml" in k8s_doc("ConfigMap")["data"]
    assert configmap_config()["output_dir"].startswith("/work/")
    args = container()["args"]
    assert args[0] == "scan" and "--fail-on" in args and "--config" not in args


def test_container_has_resource_requests_and_limits() -> None:
    resources = container()["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    mem = {k: resources[k]["memory"] for k in ("requests", "limits")}
    to_mi = {"Mi": 1, "Gi": 1024}
    req, lim = (int(v[:-2]) * to_mi[v[-2:]] for v in (mem["requests"], mem["limits"]))
    assert req <= lim


def test_image_is_a_versioned_placeholder_not_latest() -> None:
    image = container()["image"]
    assert re.fullmatch(r"[\w.-]+(/[\w.-]+)+:\d+\.\d+\.\d+", image), image


def test_service_account_is_annotated_for_irsa() -> None:
    sa = k8s_doc("ServiceAccount")
    assert pod_spec()["serviceAccountName"] == sa["metadata"]["name"]
    role = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role)


def test_every_secret_reaches_the_pod_through_a_secret_key_ref() -> None:
    secret = k8s_doc("Secret")
    env = {e["name"]: e for e in container()["env"]}
    refs = env_refs(configmap_config())
    assert refs, "the example config refers to its secrets"
    for name in refs:
        key_ref = env[name]["valueFrom"]["secretKeyRef"]
        assert key_ref["name"] == secret["metadata"]["name"]
        assert key_ref["key"] in secret["stringData"]
    # no credential is passed as a plain value
    for name, entry in env.items():
        if SECRET_KEY.search(name.lower()):
            assert "valueFrom" in entry, name


def test_example_secret_holds_only_placeholders() -> None:
    secret = k8s_doc("Secret")
    assert "data" not in secret
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}
    assert "placeholder" in " ".join(secret["metadata"]["annotations"]).lower()


def test_configmap_secrets_are_only_env_references() -> None:
    config = configmap_config()
    leaves = secret_leaves(config)
    assert {p[-1] for p, _ in leaves} >= {"token", "api_key", "app_key", "webhook_url",
                                          "routing_key"}
    for path, value in leaves:
        assert isinstance(value, str) and ENV_REF.fullmatch(value), f"{'.'.join(map(str, path))}"
    assert CONCURRENT_SECTIONS <= set(config), "store, signing and alerts are configured"
    assert config["store"].startswith("s3://")
    assert config["store_options"]["object_lock"]["mode"] in {"COMPLIANCE", "GOVERNANCE"}
    assert re.fullmatch(r"arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}",
                        config["signing"]["kms_key_id"])


def test_configmap_config_passes_attests_own_validator(tmp_path: Path, monkeypatch) -> None:
    """The whole file is validated by attest itself (unknown keys, types, literal secrets)."""
    from attest.config import load_config
    config = configmap_config()
    for name in env_refs(config):
        monkeypatch.setenv(name, "https://hooks.slack.com/services/T0/B0/x" if "URL" in name
                           else "test-value")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_config(path)
    assert loaded.model.store and loaded.model.signing.kms_key_id and loaded.model.alerts.slack
    assert str(loaded.output_dir) == config["output_dir"]
    for source in ("aws", "github", "okta", "datadog"):
        assert loaded.section(source) is not None, source


# ---------------------------------------------------------------- Dockerfile and build context

def test_base_image_is_a_python_slim_image_pinned_by_digest() -> None:
    images = dockerfile().parent_images
    assert len(images) >= 1
    for image in images:
        assert re.fullmatch(r"python:3\.1[12](\.\d+)?-slim(-[a-z]+)?@sha256:[0-9a-f]{64}", image), image
    assert len(set(images)) == 1, "every stage builds on the same pinned image"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "docker buildx imagetools inspect" in text, "the file says how to refresh the digest"
    assert "docker-library/repo-info" in text, "and where the digest came from"


def test_image_runs_attest_as_a_fixed_non_root_uid() -> None:
    final = final_stage()
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")
    assert user[0].isdigit() and int(user[0]) != 0, "numeric, so runAsNonRoot can check it"
    assert int(user[0]) == UID == pod_spec()["securityContext"]["runAsUser"]
    if len(user) > 1:
        assert int(user[1]) == pod_spec()["securityContext"]["runAsGroup"]
    assert final[-1]["instruction"] in {"CMD", "ENTRYPOINT"}
    last_user = max(i for i, ins in enumerate(final) if ins["instruction"] == "USER")
    assert not any(ins["instruction"] == "RUN" for ins in final[last_user:]), "nothing runs as root after USER"


def test_entrypoint_is_attest_with_the_nightly_scan_as_default() -> None:
    entry = instructions("ENTRYPOINT")
    cmd = instructions("CMD")
    assert json.loads(entry[-1]) == ["attest"], "exec form, so attest is PID 1 and gets the signal"
    assert json.loads(cmd[-1]) == ["scan", "--config", "/etc/attest/config.yaml",
                                   "--log-format", "json"]
    workdirs = [i["value"] for i in final_stage() if i["instruction"] == "WORKDIR"]
    assert workdirs[-1] == "/work"


def test_image_installs_attest_from_the_repository_without_a_cache() -> None:
    runs = instructions("RUN")
    assert any(re.search(r"pip install --no-cache-dir \.$", r) for r in runs), runs
    assert not any(re.search(r"\.\[[^\]]*\]", r) for r in runs), "no extras in the image"
    assert not instructions("ADD"), "COPY only: ADD could fetch URLs or unpack archives"


def test_image_bakes_in_no_secret() -> None:
    df = dockerfile()
    names = set(df.envs) | set(df.args) | set(df.labels)
    for name in names:
        assert not re.search(r"token|secret|password|api_?key|app_?key|credential", name, re.I), name
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not LITERAL_SECRET.search(text)
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def _context(root: Path) -> set[str]:
    from docker.utils.build import exclude_paths
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return set(exclude_paths(str(root), patterns))


@pytest.mark.writes_invalid_results   # placeholder files named like a bundle's
def test_dockerignore_keeps_state_and_keys_out_of_the_build_context(tmp_path: Path) -> None:
    for rel in (".git/config", ".venv/bin/python", "evidence/20261122T021700Z/results.json",
                "attest-demo/evidence/x.json", "attest/__pycache__/cli.cpython-312.pyc",
                "config.yaml", "exceptions.yaml", "secrets/github-app.pem", ".env",
                "tests/test_x.py", "attest-export-2026.zip",
                "pyproject.toml", "README.md", "attest/cli.py", "controls/catalog/aws.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    context = _context(tmp_path)
    for rel in (".git/config", ".venv/bin/python", "evidence/20261122T021700Z/results.json",
                "attest-demo/evidence/x.json", "attest/__pycache__/cli.cpython-312.pyc",
                "config.yaml", "exceptions.yaml", "secrets/github-app.pem", ".env",
                "tests/test_x.py", "attest-export-2026.zip"):
        assert rel not in context, rel
    for rel in ("pyproject.toml", "README.md", "attest/cli.py", "controls/catalog/aws.yaml"):
        assert rel in context, rel


def test_build_context_holds_everything_pip_install_needs() -> None:
    """Every file of every package pyproject.toml lists (and its package data) is in the context,
    plus pyproject.toml and the README it names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    context = _context(ROOT)
    needed = {"pyproject.toml", project["project"]["readme"]}
    from setuptools import find_packages
    found = project["tool"]["setuptools"]["packages"]["find"]
    for package in find_packages(where=str(ROOT), include=found["include"]):
        folder = ROOT / package.replace(".", "/")
        for f in folder.iterdir():
            if f.is_file() and f.suffix != ".pyc":
                needed.add(f.relative_to(ROOT).as_posix())
    for package, globs in project["tool"]["setuptools"]["package-data"].items():
        for pattern in globs:
            for f in (ROOT / package).glob(pattern):
                needed.add(f.relative_to(ROOT).as_posix())
    assert any(n.endswith(".j2") for n in needed) and any(n.endswith(".yaml") for n in needed)
    missing = sorted(needed - context)
    assert not missing, f".dockerignore drops files the install needs: {missing}"


# ---------------------------------------------------------------- cron

def cron_jobs() -> list[str]:
    lines = [ln for ln in CRON.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return [ln for ln in lines if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", ln)]


def test_cron_line_is_a_valid_nightly_schedule() -> None:
    from croniter import croniter
    jobs = cron_jobs()
    assert len(jobs) == 1
    fields = jobs[0].split(None, 5)
    assert croniter.is_valid(" ".join(fields[:5])), fields[:5]
    assert fields[2:5] == ["*", "*", "*"], "every day"
    assert "%" not in fields[5], "cron turns % into a newline"


def test_cron_command_locks_names_its_config_and_fails_on_regression() -> None:
    command = cron_jobs()[0].split(None, 5)[5]
    assert re.search(r"flock -n \S+", command), "a still-running scan makes the next one skip"
    assert re.search(r"ATTEST_CONFIG=/\S+\.yaml", command)
    assert re.search(r"attest scan --fail-on regression", command)
    assert ">>" in command and "2>&1" in command, "output is kept"


# ---------------------------------------------------------------- docs

def _blocks(lang: str) -> list[str]:
    text = readme_section()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_section_is_titled_and_walks_through_every_step() -> None:
    text = readme_section()
    assert text.startswith("## Running it every night\n")
    for needle in ("--object-lock-enabled-for-bucket", "put-object-lock-configuration",
                   "put-public-access-block", "put-bucket-encryption",
                   "--key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY", "attest permissions aws",
                   "attest store check", "attest keys public", "attest verify s3://",
                   "deploy/github-actions/attest-nightly.yml", "deploy/kubernetes/cronjob.yaml",
                   "deploy/cron/attest.cron"):
        assert needle in text, needle


def test_readme_store_policy_grants_exactly_what_the_store_needs() -> None:
    """The README shows the policy `attest permissions store` generates for its example (which
    tests/test_store.py checks against every S3 call the store makes)."""
    from attest.s3store import store_policy
    policies = [json.loads(b) for b in _blocks("json")]
    store = [p for p in policies if any("s3:PutObject" in s["Action"] for s in p["Statement"])]
    assert len(store) == 1
    kms = next(s["Resource"] for s in store[0]["Statement"] if "kms:Sign" in s["Action"])
    assert store[0] == store_policy("s3://acme-attest-evidence/soc2", kms)
    lock = next(s for s in store[0]["Statement"] if s["Action"] == ["s3:DeleteObject"])
    assert lock["Resource"].endswith("/soc2/.attest.lock"), "DeleteObject only on the lock object"


def test_readme_config_keeps_secrets_as_env_references() -> None:
    configs = [yaml.safe_load(b) for b in _blocks("yaml")]
    configs = [c for c in configs if isinstance(c, dict) and "store" in c]
    assert configs, "the section shows a config with a store"
    for config in configs:
        for path, value in secret_leaves(config):
            assert isinstance(value, str) and ENV_REF.fullmatch(value), ".".join(map(str, path))
        assert env_refs(config) <= set(scan_step()["env"]), "the workflow provides every secret"


@pytest.mark.parametrize("path", [DOCKERFILE, WORKFLOW, K8S, CRON, README,
                                  DEPLOY / "README.md", ROOT / ".dockerignore"],
                         ids=lambda p: p.name)
def test_no_literal_credential_in_deploy_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not LITERAL_SECRET.search(text), LITERAL_SECRET.search(text)


# ---------------------------------------------------------------- Kubernetes: the sharded night

INDEXED = DEPLOY / "kubernetes" / "indexed-job.yaml"


def indexed_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(INDEXED.read_text(encoding="utf-8")) if d]


def indexed_cronjob(name: str) -> dict[str, Any]:
    found = [d for d in indexed_docs() if d["kind"] == "CronJob" and d["metadata"]["name"] == name]
    assert len(found) == 1, name
    return found[0]


def shard_job() -> dict[str, Any]:
    return indexed_cronjob("attest-shards")["spec"]["jobTemplate"]["spec"]


def merge_job() -> dict[str, Any]:
    return indexed_cronjob("attest-merge")["spec"]["jobTemplate"]["spec"]


def test_indexed_job_file_holds_a_volume_and_two_cronjobs_in_the_namespace() -> None:
    docs = indexed_docs()
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("PersistentVolumeClaim", "attest-work"), ("CronJob", "attest-shards"),
        ("CronJob", "attest-merge")]
    assert {d["metadata"]["namespace"] for d in docs} == {k8s_doc("Namespace")["metadata"]["name"]}
    assert docs[0]["spec"]["accessModes"] == ["ReadWriteMany"], "pods on different nodes share it"


@pytest.mark.parametrize("version", _k8s_versions())
def test_every_indexed_job_document_matches_the_kubernetes_schema(version: str) -> None:
    import kubernetes_validate
    for doc in indexed_docs():
        kubernetes_validate.validate(doc, version, strict=True)


def test_shards_are_an_indexed_job_whose_index_chooses_the_shard() -> None:
    from attest.errors import UsageError
    from attest.shards import ShardSpec
    job = shard_job()
    n = job["completions"]
    assert job["completionMode"] == "Indexed" and job["parallelism"] == n >= 2
    assert "backoffLimit" not in job and job["backoffLimitPerIndex"] <= 1, \
        "a failed shard never fails the others (a shard is visible only once complete)"
    c, = job["template"]["spec"]["containers"]
    assert c["args"][:3] == ["scan", "--shard", f"$(JOB_COMPLETION_INDEX)/{n}"]
    index = {e["name"]: e for e in c["env"]}["JOB_COMPLETION_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    # every index Kubernetes hands out (0..N-1) is a shard attest accepts, and only those
    assert [ShardSpec.parse(f"{i}/{n}").index for i in range(n)] == list(range(n))
    with pytest.raises(UsageError):
        ShardSpec.parse(f"{n}/{n}")


def test_the_merge_waits_for_the_shards_on_the_shared_volume_then_seals_once() -> None:
    shards, merge = indexed_cronjob("attest-shards")["spec"], indexed_cronjob("attest-merge")["spec"]
    assert shards["schedule"] == merge["schedule"] and shards["timeZone"] == merge["timeZone"]
    for spec in (shards, merge):
        assert spec["concurrencyPolicy"] == "Forbid"
    job = merge_job()
    assert job["backoffLimit"] == 0 and "completionMode" not in job
    c, = job["template"]["spec"]["containers"]
    args = c["args"]
    assert args[0] == "merge" and "--fail-on" in args
    wait = int(args[args.index("--wait") + 1])
    assert 0 < wait <= shard_job()["activeDeadlineSeconds"] < job["activeDeadlineSeconds"], \
        "the merge waits as long as a shard may run, and has time left to seal"
    claim = indexed_docs()[0]["metadata"]["name"]
    for spec in (shard_job(), job):
        pod = spec["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert volumes[mounts["/work"]["name"]]["persistentVolumeClaim"]["claimName"] == claim
        assert volumes[mounts["/etc/attest"]["name"]]["configMap"]["name"] == \
            k8s_doc("ConfigMap")["metadata"]["name"]
        assert mounts["/etc/attest"]["readOnly"] is True
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert configmap_config()["output_dir"].startswith("/work/"), "the shards are on the volume"


@pytest.mark.parametrize("job", ["attest-shards", "attest-merge"])
def test_indexed_job_pods_are_locked_down_like_the_cronjob(job: str) -> None:
    pod = indexed_cronjob(job)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == k8s_doc("ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == ctx["fsGroup"] == UID
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    c, = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc.get("privileged", False) is False
    for kind in ("requests", "limits"):
        assert {"cpu", "memory", "ephemeral-storage"} <= set(c["resources"][kind]), kind
    assert c["image"] == container()["image"]
    env = {e["name"]: e for e in c["env"]}
    assert env["ATTEST_CONFIG"]["value"] == "/etc/attest/config.yaml"
    secret = k8s_doc("Secret")
    for name in env_refs(configmap_config()):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    for name, entry in env.items():
        if SECRET_KEY.search(name.lower()):
            assert "valueFrom" in entry, name
    assert not LITERAL_SECRET.search(INDEXED.read_text(encoding="utf-8"))


def test_readme_shows_the_sharded_night() -> None:
    text = readme_section()
    assert "### Beyond one machine" in text
    for needle in ("attest scan --shard I/N", "attest merge", "deploy/kubernetes/indexed-job.yaml",
                   "JOB_COMPLETION_INDEX", "sha256(unit) mod N"):
        assert needle in text, needle
