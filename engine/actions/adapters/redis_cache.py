"""The Redis adapter: rebuild_cache deletes the cache's keys under a prefix (SCAN, never KEYS) so they are
filled again from the source of truth, and reports memory before and after.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import redis

from core.errors import ConfigurationError, RemediationError

BATCH = 500
SOCKET_TIMEOUT_S = 10


class RedisAdapter:
    name = "redis"

    def __init__(self, url: str, prefix: str) -> None:
        if not prefix:
            # An empty prefix would match every key in the database.
            raise ConfigurationError("the redis adapter needs a non-empty FIRSTLINE_REDIS_KEY_PREFIX",
                                     key="redis_key_prefix")
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                           socket_connect_timeout=SOCKET_TIMEOUT_S)

    def supports(self, action: str) -> bool:
        return action == "rebuild_cache"

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        try:
            before = self.memory()
            deleted = self.delete_prefix(self.prefix)
            after = self.memory()
        except redis.RedisError as error:
            raise RemediationError(f"Redis: {error}", action=action, target=target) from None
        return (f"rebuild_cache on {target}: deleted {deleted} keys under {self.prefix!r}; memory "
                f"{before['used_memory_human']} -> {after['used_memory_human']}")

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return None  # the cache refills itself; deleted keys are not restored

    def close(self) -> None:
        self.client.close()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with `prefix` (taken literally, not as a pattern); returns how many."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        deleted = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                deleted += self.client.unlink(*batch)
                batch = []
        if batch:
            deleted += self.client.unlink(*batch)
        return deleted

    def memory(self) -> dict[str, Any]:
        """Redis's own memory report (`INFO memory`)."""
        return self.client.info("memory")
