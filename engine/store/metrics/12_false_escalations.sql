-- False escalations, per day an escalation was raised: requests sent to a person that were not business
-- decisions: those a decider marked so on the desk, and those whose own category is a technical one.
CREATE OR REPLACE VIEW metric_false_escalations AS
WITH marked AS (
    SELECT DISTINCT escalation_id FROM escalation_events WHERE kind = 'not_business'
)
SELECT metric_day(e.created_at) AS day,
       count(*) AS escalations,
       count(m.escalation_id) AS marked_not_business,
       count(*) FILTER (WHERE NOT metric_is_business(e.category))
           AS technical_sent_to_person,
       count(*) FILTER (WHERE m.escalation_id IS NOT NULL OR NOT metric_is_business(e.category))
           AS false_escalations
FROM escalations e LEFT JOIN marked m ON m.escalation_id = e.id
GROUP BY ALL;
