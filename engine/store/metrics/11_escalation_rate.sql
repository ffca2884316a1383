-- Escalation rate: conversations with a business request that went to a person (the escalation desk), and
-- hand-offs to engineering, per day of the conversation's first message, over new conversations (pending left out).
CREATE OR REPLACE VIEW metric_escalation_rate AS
SELECT day,
       count(*) FILTER (WHERE outcome <> 'pending') AS new_conversations,
       count(*) FILTER (WHERE outcome <> 'pending' AND escalated_at IS NOT NULL) AS escalated,
       count(*) FILTER (WHERE outcome <> 'pending' AND handed_off_at IS NOT NULL) AS handed_off
FROM conversation_outcomes GROUP BY day;
