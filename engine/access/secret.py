"""The server's own secret: it signs the chat's sessions (the cookie, and the widget frame's X-Firstline-Session)
and the links in notification e-mails (engine/notify/links.py). The web app and the outbox's sender read it from
here, so a link made by `firstline notify send` on the data folder opens on the server that uses the same folder.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from core.errors import ConfigurationError

KEY_FILE = "secret_key"


def server_secret(configured: str, data_dir: Path) -> str:
    """`configured` (the secret_key setting) when set; else the random key kept in `data_dir`, made on first use
    (readable by its owner only). ConfigurationError when the kept file is empty."""
    if configured:
        return configured
    path = data_dir / KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ConfigurationError(f"{path} holds no key: delete it (a new one is made at the next start) or set "
                                     "FIRSTLINE_SECRET_KEY", key="secret_key")
        return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key, encoding="utf-8")
    path.chmod(0o600)
    return key
