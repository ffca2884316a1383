"""The webhook adapter: each action is POSTed as JSON to a deploy system or orchestrator.

Body: `{"action", "target", "params", "undo"}`, strict JSON (no NaN or Infinity, which are not JSON: the router
refuses such parameters first, and this refuses them again). Any 2xx means done (its text is the detail);
anything else, or no answer within the timeout, is a failed action. A `user:password@` in the URL is sent as
HTTP Basic auth; every detail and error shows the URL without its password and query-string values.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.errors import RemediationError
from core.redaction import redacted_url, scrubbed, split_credentials
from engine.actions.catalogue import ACTIONS

DETAIL_CHARS = 200


class WebhookAdapter:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.shown = redacted_url(url)  # how the URL reads in details, logs and hand-offs: no password, no tokens
        self.request_url, self.authorization = split_credentials(url)  # user:password@ goes as Basic auth
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
        verb = "undo " + action if undo else action
        try:
            request = urllib.request.Request(self.request_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            if self.authorization:  # unredirected: not sent on to where a redirect points
                request.add_unredirected_header("Authorization", self.authorization)
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = scrubbed(response.read(DETAIL_CHARS).decode("utf-8", "replace").strip(), self.url)
                return f"{verb} on {target} via {self.shown}: {response.status} {text}".rstrip()
        except urllib.error.HTTPError as error:
            with error:  # the answer may echo the request's URL back
                text = scrubbed(error.read(DETAIL_CHARS).decode("utf-8", "replace").strip(), self.url)
            raise RemediationError(f"{self.shown} answered {error.code} to {verb} on {target}: {text}",
                                   action=action, target=target) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            # ValueError: a URL urllib cannot open ("unknown url type: '...'", which echoes it)
            raise RemediationError(f"{self.shown} did not take {verb} on {target}: {scrubbed(str(error), self.url)}",
                                   action=action, target=target) from None
