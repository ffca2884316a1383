-- AI resolution rate, per day of the conversation's first message (docs/metrics.md#ai-resolution-rate).
-- confirmed / decided_conversations: the user said it was fixed;
-- (confirmed + assumed) / decided_conversations, and / new_conversations.
CREATE OR REPLACE VIEW metric_ai_resolution AS
SELECT day,
       count(*) FILTER (WHERE outcome <> 'pending') AS new_conversations,
       count(*) FILTER (WHERE decided) AS decided_conversations,
       count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE outcome = 'assumed') AS assumed,
       count(*) FILTER (WHERE outcome = 'returned') AS returned,
       count(*) FILTER (WHERE outcome = 'pending') AS pending
FROM conversation_outcomes GROUP BY day;
