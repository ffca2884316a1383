-- First-contact resolution: resolved by the assistant's first answer (one answer, never "not fixed"), per day.
CREATE OR REPLACE VIEW metric_first_contact AS
SELECT day,
       count(*) FILTER (WHERE decided) AS decided_conversations,
       count(*) FILTER (WHERE first_contact) AS first_contact,
       count(*) FILTER (WHERE ai_resolved) AS ai_resolved
FROM conversation_outcomes GROUP BY day;
