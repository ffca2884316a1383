-- Hand-offs to engineering per day: from users' conversations (the assistant could not fix it) and from the
-- monitor (a confirmed fault with no automated remedy, or one that failed).
CREATE OR REPLACE VIEW metric_handoffs AS
SELECT metric_day(h.created_at) AS day,
       count(*) AS handoffs,
       count(*) FILTER (WHERE h.conversation_id <> '') AS from_conversations,
       count(*) FILTER (WHERE h.conversation_id = '') AS from_monitor
FROM handoffs h LEFT JOIN conversations c ON c.id = h.conversation_id
WHERE coalesce(c.channel, '') <> 'cli'
GROUP BY ALL;
