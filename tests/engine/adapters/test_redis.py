"""The Redis adapter against the real server on 127.0.0.1:6379, under a key prefix of its own."""

import uuid

import pytest
import redis

from core.errors import ConfigurationError, RemediationError
from engine.actions.adapters.redis_cache import RedisAdapter
from tests.peers import ensure_redis

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix():
    ensure_redis()
    tag = f"firstline-test-{uuid.uuid4().hex[:10]}"
    yield tag
    client = redis.Redis.from_url(URL)
    for key in client.scan_iter(match=f"{tag}*", count=500):
        client.delete(key)
    client.close()


def test_rebuild_cache_deletes_exactly_the_keys_under_the_prefix(prefix):
    client = redis.Redis.from_url(URL)
    client.mset({f"{prefix}:cache:page:{i}": "x" * 100 for i in range(1200)})
    client.set(f"{prefix}:sessions:1", "keep")
    client.set(f"{prefix}:cache*literal", "keep")  # not under `...:cache:`; a glob would have taken it
    adapter = RedisAdapter(URL, f"{prefix}:cache:")
    detail = adapter.execute("rebuild_cache", "cache", {})
    assert detail.startswith(f"rebuild_cache on cache: deleted 1200 keys under '{prefix}:cache:'; memory ")
    assert sorted(k.decode() for k in client.scan_iter(match=f"{prefix}*")) == [
        f"{prefix}:cache*literal", f"{prefix}:sessions:1"]
    assert adapter.memory()["used_memory"] > 0
    adapter.close()
    client.close()


def test_an_empty_prefix_is_refused_at_start_up():
    with pytest.raises(ConfigurationError, match="REDIS_KEY_PREFIX"):
        RedisAdapter(URL, "")


def test_an_unreachable_redis_is_a_failed_action():
    adapter = RedisAdapter("redis://127.0.0.1:1/0", "cache:")
    with pytest.raises(RemediationError, match="Redis"):
        adapter.execute("rebuild_cache", "cache", {})
    adapter.close()
