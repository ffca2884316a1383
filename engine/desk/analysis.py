"""The facts a decider reads before anything else: the request in the user's words, who asked, and, by category,
the measured usage and its trend (capacity), what similar accounts pay (pricing) and the policy it touches.

Every figure here is computed from stored data: telemetry samples, recorded accounts, the decision policy file.
Nothing is guessed; a figure that cannot be computed is left out and the reason is given instead.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from engine.infra.topology import Topology
from engine.infra.trends import least_squares
from engine.store.decisions import Account

SUMMARY_CHARS = 140  # one line on the queue
DAY_S = 86400.0
SENTENCE = re.compile(r"(?<=[.!?])\s+")
SIMILAR_SEATS = (0.5, 2.0)  # "similar accounts": the same plan, with between half and twice the seats


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The user's request as one line in their own words: whole sentences from the start while they fit,
    else the first sentence cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    line = ""
    for sentence in SENTENCE.split(flat):
        joined = f"{line} {sentence}".strip()
        if len(joined) > limit:
            break
        line = joined
    if line:
        return line
    cut = flat[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:-")
    return f"{cut}…"


def tenure_days(account: Account | None, now: float) -> float | None:
    if account is None or account.since is None:
        return None
    return max(0.0, (now - account.since) / DAY_S)


def describe_tenure(days: float | None) -> str:
    """"2 years 3 months", "5 months", "12 days"; "unknown" when not recorded."""
    if days is None:
        return "unknown"
    years, rest = divmod(int(days), 365)
    months = rest // 30
    if years:
        return f"{years} year{'s' * (years != 1)}" + (f" {months} month{'s' * (months != 1)}" if months else "")
    if months:
        return f"{months} month{'s' * (months != 1)}"
    return f"{int(days)} day{'s' * (int(days) != 1)}"


def account_facts(user_id: str, account: Account | None, now: float) -> dict[str, Any]:
    """{"user", "recorded", "organisation", "plan", "seats", "role", "since", "tenure_days", "tenure",
    "monthly_price", "price_per_seat"}; `recorded` is False (and the rest None) when the host app recorded none."""
    if account is None:
        return {"user": user_id, "recorded": False, "organisation": None, "plan": None, "seats": None, "role": None,
                "since": None, "tenure_days": None, "tenure": "unknown", "monthly_price": None,
                "price_per_seat": None}
    days = tenure_days(account, now)
    per_seat = account.monthly_price / account.seats if account.monthly_price is not None else None
    return {"user": user_id, "recorded": True, **asdict(account), "tenure_days": None if days is None else round(days),
            "tenure": describe_tenure(days), "price_per_seat": None if per_seat is None else round(per_seat, 2)}


@dataclass(frozen=True)
class Measure:
    """One capacity measure from telemetry: now, its least-squares growth, and when it reaches its limit."""

    service: str
    metric: str
    unit: str
    now: float | None
    limit: float
    share_of_limit: float | None  # now / limit
    growth_per_day: float | None  # fitted slope, in units a day
    days_to_limit: float | None  # at the fitted rate; None when not heading for it (or no trend)
    samples: int
    window_days: float
    note: str  # what the decider should read from it, in words
    with_request: float | None = None  # the value if load grows with the seats the user asks for (an estimate)
    worse_below: bool = False  # lower is worse (a hit ratio): no estimate, and not in `capacity_used`


def capacity_measures(measures: Sequence[tuple[str, str]], topology: Topology,
                      series: Mapping[tuple[str, str], Sequence[tuple[float, float]]], now: float,
                      added_seats: float | None, total_seats: int) -> list[Measure]:
    """Each declared (service, metric) from its samples [(epoch s, value)], fitted with the least-squares line
    self-healing uses (engine.infra.trends.least_squares, as Prometheus's predict_linear). `with_request` scales
    the value by (total_seats + added_seats) / total_seats: an estimate that assumes load grows with seats, shown
    as such, and only when both are known."""
    found = []
    for service, metric in measures:
        spec = topology.metrics.get(metric)
        limit = topology.services[service].limits.get(metric) if service in topology.services else None
        if spec is None or limit is None:
            continue
        samples = series.get((service, metric), ())
        found.append(_measure(service, metric, spec.unit, spec.worse == "below", limit, samples, now, added_seats,
                              total_seats))
    return found


def capacity_used(measures: Sequence[Measure]) -> float | None:
    """The highest share of its limit any measure reaches (with the request where that is estimated, else now),
    over measures where higher is worse; None with no telemetry. The decision policy's `capacity_used` fact."""
    shares = [(m.with_request if m.with_request is not None else m.now) / m.limit for m in measures
              if m.now is not None and m.limit and not m.worse_below]
    return round(max(shares), 3) if shares else None


def _measure(service: str, metric: str, unit: str, worse_below: bool, limit: float,
             samples: Sequence[tuple[float, float]], now: float, added_seats: float | None,
             total_seats: int) -> Measure:
    if not samples:
        return Measure(service, metric, unit, None, limit, None, None, None, 0, 0.0,
                       "no telemetry recorded yet for this measure", worse_below=worse_below)
    value = samples[-1][1]
    window = (samples[-1][0] - samples[0][0]) / DAY_S
    fit = least_squares(samples, now)
    growth = fit.slope * DAY_S if fit else None
    eta = fit.eta(limit, worse_below) if fit else None
    days = None if eta is None else eta / DAY_S
    projected = None
    if added_seats and total_seats > 0 and not worse_below:
        projected = round(value * (total_seats + added_seats) / total_seats, 3)
    share = value / limit if limit else None
    note = _measure_note(value, limit, worse_below, days, fit is not None)
    return Measure(service, metric, unit, round(value, 4), limit, None if share is None else round(share, 3),
                   None if growth is None else round(growth, 4), None if days is None else round(days, 1),
                   len(samples), round(window, 3), note, projected, worse_below)


def _measure_note(value: float, limit: float, worse_below: bool, days: float | None, fitted: bool) -> str:
    past = value < limit if worse_below else value > limit
    if past:
        return "past its limit now"
    if not fitted:
        return "one sample only: no trend yet"
    if days is None:
        return "not heading for its limit at the current rate"
    return f"reaches its limit in about {days:.1f} days at the current rate"


def pricing_facts(account: Account | None, others: Sequence[Any]) -> dict[str, Any]:
    """What the account pays beside similar accounts (the same plan, half to twice the seats): {"plan",
    "monthly_price", "price_per_seat", "similar": {"accounts", "median_monthly_price", "median_price_per_seat",
    "min_price_per_seat", "max_price_per_seat"} or None, "note"}."""
    if account is None:
        return {"plan": None, "monthly_price": None, "price_per_seat": None, "similar": None,
                "note": "no account recorded for this user (firstline account set USER --plan ... --price ...)"}
    # Seats are whole: half of 5 seats is 3 at least, twice 5 is 10 at most.
    low, high = math.ceil(account.seats * SIMILAR_SEATS[0]), math.floor(account.seats * SIMILAR_SEATS[1])
    similar = [o for o in others if o.plan.lower() == account.plan.lower() and low <= o.seats <= high]
    per_seat = [o.monthly_price / o.seats for o in similar if o.seats]
    mine = account.monthly_price / account.seats if account.monthly_price is not None else None
    summary = None
    if per_seat:
        summary = {"accounts": len(similar),
                   "median_monthly_price": statistics.median(o.monthly_price for o in similar),
                   "median_price_per_seat": round(statistics.median(per_seat), 2),
                   "min_price_per_seat": round(min(per_seat), 2), "max_price_per_seat": round(max(per_seat), 2)}
    seats = f"{low} to {high} seats" if low != high else f"{low} seat{'s' if low != 1 else ''}"
    note = (f"{len(similar)} similar account{'s' if len(similar) != 1 else ''} on {account.plan} with {seats}"
            if similar else f"no other priced account on {account.plan} with {seats}")
    return {"plan": account.plan, "monthly_price": account.monthly_price,
            "price_per_seat": None if mine is None else round(mine, 2), "similar": summary, "note": note}
