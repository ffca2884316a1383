"""Reaching users when a person answered and they had left: the e-mail (`mail`), the mail server (`smtp`), where
each user was last seen on the chat (`presence`) and the sender that works through the outbox (`sender`). Imports
the store only; the notices themselves are written by whoever causes them (the desk, engineering's hand-offs)."""
