"""The web layer: translates HTTP to calls on the engine and back. No rules, no SQL here."""

from web.app import create_app

__all__ = ["create_app"]
