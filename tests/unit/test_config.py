import pytest

from atlas import config
from atlas.errors import ConfigError


@pytest.fixture
def env(monkeypatch):
    for name in (
        "ATLAS_PROJECT",
        "GOOGLE_CLOUD_PROJECT",
        "ATLAS_RETRIEVAL_URL",
        "ATLAS_LLM_CHAIN",
        "ATLAS_QDRANT_PATH",
        "ATLAS_QDRANT_URL",
        "ATLAS_LEASE_S",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATLAS_PROJECT", "p")
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "http://127.0.0.1:9/")
    return monkeypatch


def test_worker_settings_defaults(env):
    settings = config.load(config.WorkerSettings)
    assert settings.topic == "atlas-tasks" and settings.tasks_collection == "tasks"
    assert settings.retrieval_url == "http://127.0.0.1:9"
    assert [e.label for e in settings.llm_chain] == ["openai/gpt-4o-mini"]


def test_project_falls_back_to_google_cloud_project(env):
    env.delenv("ATLAS_PROJECT")
    env.setenv("GOOGLE_CLOUD_PROJECT", "from-gcp")
    assert config.load(config.CoreSettings).project == "from-gcp"


def test_missing_retrieval_url_names_the_variable(env):
    env.delenv("ATLAS_RETRIEVAL_URL")
    with pytest.raises(ConfigError, match="ATLAS_RETRIEVAL_URL"):
        config.load(config.WorkerSettings)


def test_bad_number_names_the_variable(env):
    env.setenv("ATLAS_LEASE_S", "forever")
    with pytest.raises(ConfigError, match="ATLAS_LEASE_S"):
        config.load(config.WorkerSettings)


def test_chain_that_is_not_json_names_the_variable(env):
    env.setenv("ATLAS_LLM_CHAIN", "[{oops")
    with pytest.raises(ConfigError, match="llm_chain"):
        config.load(config.WorkerSettings)


def test_chain_entry_without_base_url_names_the_entry(env):
    env.setenv("ATLAS_LLM_CHAIN", '[{"provider": "openai_compatible", "model": "llama3.1"}]')
    with pytest.raises(ConfigError, match=r"ATLAS_LLM_CHAIN \(0\).*openai_compatible \(llama3.1\) needs a base_url"):
        config.load(config.WorkerSettings)


def test_chain_entry_with_unknown_provider_is_rejected(env):
    env.setenv("ATLAS_LLM_CHAIN", '[{"provider": "skynet", "model": "m"}]')
    with pytest.raises(ConfigError, match="ATLAS_LLM_CHAIN"):
        config.load(config.WorkerSettings)


def test_chain_round_trips_through_env(env):
    entries = (config.ChainEntry(provider="openai_compatible", model="m", base_url="http://x/v1"),)
    env.setenv("ATLAS_LLM_CHAIN", config.chain_to_env(entries))
    assert config.load(config.WorkerSettings).llm_chain == entries


def test_retrieval_needs_a_folder_or_a_url(env, tmp_path):
    env.setenv("ATLAS_EMBEDDING_MODEL_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="ATLAS_QDRANT_PATH"):
        config.load(config.RetrievalSettings)
    env.setenv("ATLAS_QDRANT_URL", "https://qdrant.example:6333")
    assert config.load(config.RetrievalSettings).qdrant_url == "https://qdrant.example:6333"


def test_a_missing_project_names_both_variables_that_can_set_it(monkeypatch):
    monkeypatch.delenv("ATLAS_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigError, match=r"ATLAS_PROJECT or GOOGLE_CLOUD_PROJECT: Field required"):
        config.load(config.CliSettings)


def test_index_bucket_goes_with_the_embedded_index_only(env, tmp_path):
    env.delenv("ATLAS_INDEX_OBJECT", raising=False)
    env.delenv("ATLAS_INDEX_REFRESH_S", raising=False)
    env.setenv("ATLAS_EMBEDDING_MODEL_DIR", str(tmp_path))
    env.setenv("ATLAS_QDRANT_PATH", str(tmp_path / "index"))
    env.setenv("ATLAS_INDEX_BUCKET", "my-project-atlas-index")
    settings = config.load(config.RetrievalSettings)
    assert (settings.index_bucket, settings.index_object, settings.index_refresh_s) == (
        "my-project-atlas-index",
        "knowledge/shard.tar.gz",
        30.0,
    )
    env.delenv("ATLAS_QDRANT_PATH")
    env.setenv("ATLAS_QDRANT_URL", "https://qdrant.example:6333")
    with pytest.raises(ConfigError, match="ATLAS_INDEX_BUCKET.*ATLAS_QDRANT_URL"):
        config.load(config.RetrievalSettings)


def test_an_index_bucket_that_is_a_url_names_the_variable(env, tmp_path):
    env.setenv("ATLAS_EMBEDDING_MODEL_DIR", str(tmp_path))
    env.setenv("ATLAS_QDRANT_PATH", str(tmp_path / "index"))
    env.setenv("ATLAS_INDEX_BUCKET", "gs://my-project-atlas-index")
    with pytest.raises(ConfigError, match="ATLAS_INDEX_BUCKET"):
        config.load(config.RetrievalSettings)
