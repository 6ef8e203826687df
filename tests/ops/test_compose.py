"""docker/: the compose file validates with the real `docker compose` (v2), and says what
the issue asks of it; the Dockerfile builds a non-root image with its static files.

This machine has the Docker client and no engine. `make test` installs the compose plugin
first (docker/install-compose-plugin.sh); `docker compose ... config` needs no engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DUMMY = {
    "SECRET_KEY": "dummy-secret-key-for-validation-only",
    "POSTGRES_PASSWORD": "dummy-password",
    "DB_OWNER_PASSWORD": "dummy-owner-password",
    "DB_APP_PASSWORD": "dummy-app-password",
    "QDRANT_API_KEY": "dummy-qdrant-key",
    "VLLM_MODEL": "/models/dummy-model",
}
LONG_RUNNING = {"postgres", "redis", "qdrant", "vllm", "web", "worker-ingest", "worker-default"}


def _compose_missing() -> str:
    if shutil.which("docker") is None:
        return "the docker client is not installed on this machine"
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return (
            "`docker compose` (v2 plugin) is not installed: run docker/install-compose-plugin.sh "
            f"(make test does); docker said: {probe.stderr.strip()[:200]}"
        )
    return ""


@pytest.fixture(scope="module")
def compose() -> None:
    missing = _compose_missing()
    if missing:
        print(f"SKIP: {missing}")
        pytest.skip(missing)


def _config(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in DUMMY}
    return subprocess.run(
        # --env-file: a developer's docker/.env must not fill in what the test leaves out.
        ["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE), "config"]
        + ["--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def config(compose) -> dict:
    done = _config(DUMMY)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_file_validates_with_docker_compose_config(config):
    assert set(config["services"]) == LONG_RUNNING | {"migrate", "beat"}


@pytest.mark.parametrize("missing", sorted(DUMMY))
def test_compose_refuses_to_start_without_a_required_secret(compose, missing):
    done = _config({k: v for k, v in DUMMY.items() if k != missing})
    assert done.returncode != 0
    assert missing in done.stderr


def test_every_service_has_a_health_check(config):
    for name, service in config["services"].items():
        check = service.get("healthcheck") or {}
        if name == "migrate":  # one-shot: compose waits for it to complete instead
            continue
        assert check.get("test") and not check.get("disable"), name


def test_web_runs_gunicorn_with_threads_for_streamed_answers(config):
    web = config["services"]["web"]
    assert web["command"][:3] == ["gunicorn", "--config", "docker/gunicorn.conf.py"]
    conf: dict = {}
    exec(compile((ROOT / "docker/gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), conf)  # noqa: S102
    assert conf["worker_class"] == "gthread" and conf["threads"] > 1


def test_workers_consume_both_queues_and_can_be_scaled(config):
    services = config["services"]
    queues = {}
    for name in ("worker-ingest", "worker-default"):
        command = services[name]["command"]
        queues[name] = command[command.index("-Q") + 1]
        # --scale needs replicas that do not clash: no fixed name, no published port.
        assert "container_name" not in services[name] and not services[name].get("ports")
        assert "%h" in command[command.index("-n") + 1]
    assert queues == {"worker-ingest": "ingest", "worker-default": "default"}
    assert "beat" in services["beat"]["command"]


def test_app_services_reach_every_part_by_configuration(config):
    env = config["services"]["web"]["environment"]
    assert env["QDRANT_URL"] == "http://qdrant:6333"
    assert env["LOCAL_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert env["DATABASE_URL"].endswith("@postgres:5432/enclave")
    assert env["ENCLAVE_DEV"] == "false"
    for name in ("web", "worker-ingest", "worker-default", "beat", "migrate"):
        assert config["services"][name]["image"] == config["services"]["web"]["image"]


def test_vllm_serves_the_configured_model_on_a_reserved_gpu(config):
    vllm = config["services"]["vllm"]
    assert vllm["entrypoint"] == ["vllm", "serve"]
    assert vllm["command"][0] == DUMMY["VLLM_MODEL"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_dockerfile_runs_as_a_non_root_user_with_cached_wheels_and_a_torch_variant():
    text = (ROOT / "docker/Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "ARG TORCH_VARIANT=cpu" in text
    assert "--mount=type=cache,target=/root/.cache/pip" in text
    assert "collectstatic" in text
    assert '"docker/gunicorn.conf.py"' in text


def test_only_migrate_connects_as_the_owner_of_the_tables(config):
    """Issue 15: the app's role must not own the audit table (it could drop its triggers)."""
    services = config["services"]
    owner = services["migrate"]["environment"]
    assert owner["DATABASE_URL"].startswith("postgres://enclave_owner:dummy-owner-password@")
    assert owner["DATABASE_APP_ROLE"] == "enclave_app"
    for name in ("web", "worker-ingest", "worker-default", "beat"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert url.startswith("postgres://enclave_app:dummy-app-password@"), name
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] == "postgres"
    init = [v["source"] for v in postgres["volumes"] if "initdb.d" in v["target"]]
    assert [Path(source).name for source in init] == ["db-init.sh"]
