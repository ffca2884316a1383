"""The queries behind the seed's success metrics, on the metric views (engine/store/metrics/*.sql).

A `Metric` is one line of the seed's table: its label, the view it reads, the SQL that gives its headline figure
over a period (`:since`, a 'YYYY-MM-DD' date, is its one parameter) and the SQL that gives its trend per day (for
charts). The SQL is what the analysts' console opens, so the figure on a tile, on the command line and in the
console is one query; `engine.analytics.metrics` reads and presents them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFoundError


@dataclass(frozen=True)
class Metric:
    """One line of the seed's table.

    `unit` is `share` (a fraction 0-1, shown as a percentage), `minutes` (from seconds) or `count`. `sql` returns
    one row with `value` and, for shares, `numerator` and `denominator`; `daily_sql` returns `day, value` rows
    (and `series` when the chart has several lines)."""

    key: str
    label: str
    view: str
    unit: str
    sql: str
    daily_sql: str
    about: str


def _share(view: str, part: str, whole: str, extra: str = "") -> str:
    return (f"SELECT metric_share({part}, {whole}) AS value, {part} AS numerator, {whole} AS denominator{extra}\n"
            f"FROM {view} WHERE day >= CAST(:since AS DATE)")


def _daily_share(view: str, part: str, whole: str) -> str:
    return (f"SELECT day, metric_share({part}, {whole}) AS value\nFROM {view} WHERE day >= CAST(:since AS DATE)\n"
            "GROUP BY day ORDER BY day")


RESOLVED = "sum(confirmed) + sum(assumed)"
# Every UTC day of the period, so that a day with nothing counted shows as 0 in a chart of counts, not as a gap.
DAYS = ("(SELECT CAST(range AS DATE) AS day\n      FROM range(CAST(:since AS DATE), "
        "CAST(metric_day(metric_now()) AS DATE) + 1, INTERVAL 1 DAY)) d")


def _daily_count(view: str, column: str) -> str:
    return (f"SELECT d.day, coalesce(sum(v.{column}), 0) AS value\nFROM {DAYS}\nLEFT JOIN {view} v USING (day)\n"
            "GROUP BY d.day ORDER BY d.day")

TTR_QUANTILE = ("SELECT quantile_cont(resolution_s, {q}) / 60 AS value, count(*) AS denominator\n"
                "FROM metric_time_to_resolution WHERE day >= CAST(:since AS DATE)")
TTR_DAILY = ("SELECT day, quantile_cont(resolution_s, {q}) / 60 AS value\nFROM metric_time_to_resolution "
             "WHERE day >= CAST(:since AS DATE)\nGROUP BY day ORDER BY day")

METRICS: tuple[Metric, ...] = (
    Metric("ai_resolution_rate", "AI resolution rate (confirmed + assumed)", "metric_ai_resolution", "share",
           _share("metric_ai_resolution", RESOLVED, "sum(decided_conversations)", ", sum(pending) AS pending"),
           _daily_share("metric_ai_resolution", RESOLVED, "sum(decided_conversations)"),
           "conversations the assistant resolved, confirmed by the user or assumed after 24 h of silence, over "
           "decided conversations (pending and out-of-scope left out)"),
    Metric("ai_resolution_confirmed", "AI resolution rate (confirmed only)", "metric_ai_resolution", "share",
           _share("metric_ai_resolution", "sum(confirmed)", "sum(decided_conversations)"),
           _daily_share("metric_ai_resolution", "sum(confirmed)", "sum(decided_conversations)"),
           "conversations where the user said the fix worked, over decided conversations"),
    Metric("ai_resolution_all", "AI resolution rate (of all new conversations)", "metric_ai_resolution", "share",
           _share("metric_ai_resolution", RESOLVED, "sum(new_conversations)"),
           _daily_share("metric_ai_resolution", RESOLVED, "sum(new_conversations)"),
           "confirmed + assumed over every conversation not pending, out-of-scope ones included"),
    Metric("time_to_resolution_median", "Time to resolution, median", "metric_time_to_resolution", "minutes",
           TTR_QUANTILE.format(q=0.5), TTR_DAILY.format(q=0.5),
           "first message to resolution, over the conversations the assistant resolved"),
    Metric("time_to_resolution_p90", "Time to resolution, 90th percentile", "metric_time_to_resolution", "minutes",
           TTR_QUANTILE.format(q=0.9), TTR_DAILY.format(q=0.9),
           "nine in ten resolved conversations were resolved within this"),
    Metric("first_contact_resolution", "First-contact resolution", "metric_first_contact", "share",
           _share("metric_first_contact", "sum(first_contact)", "sum(decided_conversations)"),
           _daily_share("metric_first_contact", "sum(first_contact)", "sum(decided_conversations)"),
           "resolved by the first answer, never reported not fixed, over decided conversations"),
    Metric("csat", "User satisfaction (CSAT)", "metric_csat", "share",
           _share("metric_csat", "sum(good)", "sum(rated)"),
           _daily_share("metric_csat", "sum(good)", "sum(rated)"),
           "ratings of 4 or 5 over conversations rated; unrated ones are not counted"),
    Metric("proactive_prevention_rate", "Proactive prevention rate", "metric_prevention", "share",
           _share("metric_prevention", "sum(prevented)", "sum(faults)"),
           _daily_share("metric_prevention", "sum(prevented)", "sum(faults)"),
           "faults fixed before their metric crossed its limit, over faults the monitor detected"),
    Metric("escalation_rate", "Escalation rate (business decisions)", "metric_escalation_rate", "share",
           _share("metric_escalation_rate", "sum(escalated)", "sum(new_conversations)"),
           _daily_share("metric_escalation_rate", "sum(escalated)", "sum(new_conversations)"),
           "conversations whose request went to a person on the escalation desk, over new conversations"),
    Metric("false_escalation_rate", "False escalation rate", "metric_false_escalations", "share",
           _share("metric_false_escalations", "sum(false_escalations)", "sum(escalations)",
                  ", sum(marked_not_business) AS marked_not_business, "
                  "sum(technical_sent_to_person) AS technical_sent_to_person"),
           _daily_share("metric_false_escalations", "sum(false_escalations)", "sum(escalations)"),
           "escalations a decider marked as not a business decision, or of a technical category, over escalations"),
    Metric("handoffs_to_engineering", "Hand-offs to engineering", "metric_handoffs", "count",
           "SELECT coalesce(sum(handoffs), 0) AS value, coalesce(sum(from_conversations), 0) AS from_conversations,"
           " coalesce(sum(from_monitor), 0) AS from_monitor\nFROM metric_handoffs WHERE day >= CAST(:since AS DATE)",
           _daily_count("metric_handoffs", "handoffs"),
           "problems passed to engineers: from users' conversations and from the monitor"),
    Metric("escalations_by_category", "Escalations by category", "metric_escalations_by_category", "count",
           "SELECT category, sum(raised) AS raised, sum(approved) AS approved, sum(rejected) AS rejected,\n"
           "       sum(expired) AS expired, sum(waiting) AS waiting, sum(agreed) AS agreed,\n"
           "       sum(disagreed) AS disagreed, sum(no_recommendation) AS no_recommendation\n"
           "FROM metric_escalations_by_category WHERE day >= CAST(:since AS DATE)\nGROUP BY category ORDER BY category",
           f"SELECT d.day, c.series, coalesce(sum(v.raised), 0) AS value\nFROM {DAYS}\n"
           "CROSS JOIN (SELECT unnest(metric_business_categories()) AS series) c\n"
           "LEFT JOIN metric_escalations_by_category v ON v.day = d.day AND v.category = c.series\n"
           "GROUP BY d.day, c.series ORDER BY d.day, c.series",
           "business requests raised per category, with how they ended and whether the decision followed the "
           "desk's recommendation"),
    Metric("learned_rules", "Learned rules promoted / retired", "metric_learned_rules", "count",
           "SELECT coalesce(sum(promoted), 0) AS value, coalesce(sum(retired), 0) AS retired,\n"
           "       coalesce(sum(proposed), 0) AS proposed, coalesce(sum(rejected), 0) AS rejected\n"
           "FROM metric_learned_rules WHERE day >= CAST(:since AS DATE)",
           _daily_count("metric_learned_rules", "promoted"),
           "rules learned from resolutions that a curator promoted to active, and those retired"),
)
BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The metric named `key`; NotFoundError listing the known ones otherwise."""
    if key not in BY_KEY:
        raise NotFoundError(f"no metric named {key!r}; the metrics are: {', '.join(BY_KEY)}")
    return BY_KEY[key]
