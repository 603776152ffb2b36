"""docker-compose files and the Dockerfile: valid by the Compose specification, and true to
Handbook's settings (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from handbook.config import Profile, load_settings

ROOT = Path(__file__).parent.parent
COMPOSE = ["docker-compose.yml", "docker-compose.cluster.yml"]


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def api_settings(compose: dict[str, Any]) -> Any:
    env = {k: str(v) for k, v in compose["services"]["api"]["environment"].items()}
    env["HANDBOOK_API_KEYS"] = "k1,k2"  # the file requires it from the shell
    return load_settings(environ=env)


@pytest.mark.parametrize("name", COMPOSE)
def test_compose_files_follow_the_compose_specification(name: str, tmp_path: Path) -> None:
    assert check_compose(ROOT / name).returncode == 0
    broken = tmp_path / name
    broken.write_text((ROOT / name).read_text().replace("healthcheck:", "healthchek:", 1))
    result = check_compose(broken)
    assert result.returncode == 1 and "healthchek" in result.stdout, "the check can fail"


@pytest.mark.parametrize("name", COMPOSE)
def test_compose_wires_the_api_to_its_services(name: str) -> None:
    compose = load(name)
    services = compose["services"]
    settings = api_settings(compose)
    assert settings.profile == Profile.PRODUCTION and settings.store.backend == "qdrant"
    assert settings.api.keys == ("k1", "k2")
    store_host = re.match(r"http://([\w-]+):6333$", settings.store.url or "")
    assert store_host and store_host.group(1) in services, "store.url names a Qdrant service"
    for host in (settings.chat.host, settings.extraction.host):
        assert host == "http://ollama:11434" and "ollama" in services
    api = services["api"]
    assert api["ports"] == ["8000:8000"] and "/healthz" in " ".join(api["healthcheck"]["test"])
    assert {dep for dep in api["depends_on"]} >= {store_host.group(1), "ollama"}
    data = next(v for v in api["volumes"] if v.endswith(":/data"))
    assert data.split(":")[0] in compose["volumes"] and str(settings.home) == "/data"
    pulled = re.findall(r"ollama pull (\S+)", " ".join(services["models"]["entrypoint"]))
    assert set(pulled) == {settings.chat.model, settings.extraction.model}, (
        "the setup job pulls exactly the models the production profile uses"
    )


def test_cluster_variant_shards_and_replicates_over_its_nodes() -> None:
    compose = load("docker-compose.cluster.yml")
    settings = api_settings(compose)
    nodes = [name for name in compose["services"] if name.startswith("qdrant-")]
    assert len(nodes) == 3
    for name in nodes:
        node = compose["services"][name]
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert f"http://{name}:6335" in node["command"]
        if name != "qdrant-1":
            assert node["command"][node["command"].index("--bootstrap") + 1] == (
                "http://qdrant-1:6335"
            )
    shards, replicas = settings.store.shards, settings.store.replication_factor
    assert shards is not None and replicas is not None
    assert 2 <= replicas <= len(nodes) and shards >= len(nodes)
    assert settings.store.write_consistency_factor <= replicas  # type: ignore[operator]


def test_dockerfile_installs_the_pinned_api_and_serves_it() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in text and "[st,graph,api]" in text
    assert 'CMD ["handbook", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    for folder in re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE):
        assert (ROOT / folder / "__init__.py").is_file() or (ROOT / folder).is_dir()
    packages = {
        "handbook",
        "ingestion",
        "retrieval",
        "generation",
        "finetune",
        "eval",
        "app",
        "api",
        "cli",
    }
    assert packages <= set(re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE))
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:  # fmt: skip
        for name in COMPOSE:
            env = {"HANDBOOK_API_KEYS": "k1", "PATH": "/usr/bin:/bin"}
            result = subprocess.run(
                ["docker", "compose", "-f", name, "config", "-q"], cwd=ROOT, env=env
            )
            assert result.returncode == 0
