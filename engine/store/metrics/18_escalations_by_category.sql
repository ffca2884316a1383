-- Business escalations by category and outcome, per day raised; `agreed` counts decisions that went the way the
-- desk recommended, `no_recommendation` decisions made with nothing to recommend.
CREATE OR REPLACE VIEW metric_escalations_by_category AS
WITH decided AS (
    SELECT escalation_id, arg_max(detail ->> 'recommended', at_s) AS recommended, arg_max(outcome, at_s) AS outcome
    FROM escalation_events WHERE kind = 'decided' GROUP BY escalation_id
)
SELECT metric_day(e.created_at) AS day, e.category,
       count(*) AS raised,
       count(*) FILTER (WHERE e.status = 'approved') AS approved,
       count(*) FILTER (WHERE e.status = 'rejected') AS rejected,
       count(*) FILTER (WHERE e.status = 'expired') AS expired,
       count(*) FILTER (WHERE e.status IN ('open', 'asked')) AS waiting,
       count(*) FILTER (WHERE e.status = 'withdrawn') AS withdrawn,
       count(*) FILTER (WHERE d.recommended IN ('approved', 'rejected') AND d.recommended = d.outcome) AS agreed,
       count(*) FILTER (WHERE d.recommended IN ('approved', 'rejected') AND d.recommended <> d.outcome) AS disagreed,
       count(*) FILTER (WHERE d.escalation_id IS NOT NULL AND coalesce(d.recommended, '') NOT IN ('approved', 'rejected'))
           AS no_recommendation
FROM escalations e LEFT JOIN decided d ON d.escalation_id = e.id
GROUP BY ALL;
