"""The fixed category taxonomy: what the system handles, what a person decides, what it declines."""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """What Firstline did with a message (the `decision` of the published `ask --json` contract)."""

    RESOLVE = "resolve"  # acted on (or handed to engineering, with `handoff` among the actions)
    CLARIFY = "clarify"  # asked which problem it is, or what the problem is
    ESCALATE = "escalate"  # a business request: a person decides
    DECLINE = "decline"  # out of scope


class Kind(StrEnum):
    TECHNICAL = "technical"
    BUSINESS = "business"
    OUT_OF_SCOPE = "out_of_scope"


TECHNICAL = (
    "performance",
    "authentication",
    "data_sync",
    "feature_malfunction",
    "integration",
    "configuration",
    "account",
    "bug_error",
)
BUSINESS = ("hosting_capacity", "pricing", "policy", "subscription_benefits")
OUT_OF_SCOPE = "out_of_scope"
CATEGORIES = (*TECHNICAL, *BUSINESS, OUT_OF_SCOPE)


def kind_of(category: str) -> Kind:
    """Say whether a category is handled by the system, decided by a person, or declined."""
    if category in TECHNICAL:
        return Kind.TECHNICAL
    if category in BUSINESS:
        return Kind.BUSINESS
    if category == OUT_OF_SCOPE:
        return Kind.OUT_OF_SCOPE
    raise ValueError(f"unknown category {category!r}; expected one of: {', '.join(CATEGORIES)}")
