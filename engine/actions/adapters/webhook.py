"""The webhook adapter: each action is POSTed as JSON to a deploy system or orchestrator.

Body: `{"action", "target", "params", "undo"}`, strict JSON (no NaN or Infinity, which are not JSON: the router
refuses such parameters first, and this refuses them again). Any 2xx means done (its text is the detail);
anything else, or no answer within the timeout, is a failed action.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.errors import RemediationError
from engine.actions.catalogue import ACTIONS

DETAIL_CHARS = 200


class WebhookAdapter:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def supports(self, action: str) -> bool:
        return action in ACTIONS

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        return self._post(action, target, params, undo=False)

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return self._post(action, target, params, undo=True)

    def close(self) -> None:
        return None

    def _post(self, action: str, target: str, params: Mapping[str, Any], undo: bool) -> str:
        try:
            body = json.dumps({"action": action, "target": target, "params": dict(params), "undo": undo},
                              allow_nan=False).encode()
        except (TypeError, ValueError) as error:  # NaN or Infinity, or a value JSON has no form for
            raise RemediationError(f"refusing to post {action} on {target}: its params are not plain JSON ({error})",
                                   action=action, target=target) from None
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        verb = "undo " + action if undo else action
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = response.read(DETAIL_CHARS).decode("utf-8", "replace").strip()
                return f"{verb} on {target} via {self.url}: {response.status} {text}".rstrip()
        except urllib.error.HTTPError as error:
            with error:
                text = error.read(DETAIL_CHARS).decode("utf-8", "replace").strip()
            raise RemediationError(f"{self.url} answered {error.code} to {verb} on {target}: {text}",
                                   action=action, target=target) from None
        except (urllib.error.URLError, OSError) as error:
            raise RemediationError(f"{self.url} did not take {verb} on {target}: {error}", action=action,
                                   target=target) from None
