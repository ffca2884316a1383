-- One row per user conversation: how it ended, by the definitions in docs/metrics.md.
--   outcome: confirmed | assumed | pending | returned | handed_off | escalated | unresolved | out_of_scope
-- Conversations of `firstline ask` (channel 'cli', a curator's tries) and conversations the assistant never
-- answered are left out. A conversation starts with the user's first message the assistant decided on (the
-- decision's time less its latency: reading the messages table as well cost a third of the time).
-- Each table is read once and grouped by conversation before the joins, and returns are found by a join on a
-- hash of (user, playbook): grouping after the joins, and a window over the two strings, each took twice as
-- long or more at a million conversations (bench/metrics_scale.py).
CREATE OR REPLACE VIEW conversation_outcomes AS
WITH -- Every decision once, marked as the assistant's own answer (a resolve that was no hand-off to engineering).
marked AS (
    SELECT d.conversation_id, d.created_at, d.latency_ms, d.decision, d.category, d.playbook,
           h.created_at AS handed_off_at,
           d.decision = 'resolve' AND h.decision_id IS NULL AS answer
    FROM decisions d LEFT JOIN handoffs h ON h.decision_id = d.id
),
decided AS (
    SELECT conversation_id,
           count(*) FILTER (WHERE answer) AS answers,
           max(created_at) FILTER (WHERE answer) AS last_answer_at,
           arg_max(playbook, created_at) FILTER (WHERE answer) AS answer_playbook,
           arg_max(category, created_at) FILTER (WHERE answer) AS answer_category,
           -- a decision is stored when its reply is ready; its message came latency_ms before
           min(created_at - latency_ms / 1000.0) AS first_message_at, max(created_at) AS last_decision_at,
           arg_min(category, created_at) AS first_category, arg_min(playbook, created_at) AS first_playbook,
           -- declined, or not understood as anything in scope ("hello"): no support request at all
           bool_and(decision = 'decline' OR category = 'out_of_scope') AS all_declined,
           min(handed_off_at) AS handed_off_at
    FROM marked GROUP BY conversation_id
),
escalated AS (
    SELECT conversation_id, min(created_at) AS escalated_at FROM escalations GROUP BY conversation_id
),
verdicts AS (
    SELECT conversation_id, max(said_at) FILTER (WHERE verdict = 'fixed') AS fixed_at,
           max(said_at) FILTER (WHERE verdict IN ('not_fixed', 'partly')) AS not_fixed_at,
           count(*) FILTER (WHERE verdict IN ('not_fixed', 'partly')) AS not_fixed
    FROM user_verdicts GROUP BY conversation_id
),
joined AS (
    SELECT c.id AS conversation_id, c.user_id, c.channel, d.first_message_at,
           d.answers, d.last_answer_at, d.last_decision_at, d.all_declined,
           coalesce(d.answer_playbook, d.first_playbook) AS playbook,
           coalesce(d.answer_category, d.first_category) AS category,
           d.handed_off_at, e.escalated_at, v.fixed_at, v.not_fixed_at, coalesce(v.not_fixed, 0) AS not_fixed,
           f.rating,
           -- confirmed: the user said the last answer fixed it, and took nothing back after
           (v.fixed_at >= d.last_answer_at AND (v.not_fixed_at IS NULL OR v.not_fixed_at < v.fixed_at))
               AS said_fixed,
           -- nothing asked or judged after the last answer: the user left it there
           (d.last_answer_at IS NOT NULL AND d.last_decision_at <= d.last_answer_at
            AND (v.not_fixed_at IS NULL OR v.not_fixed_at < d.last_answer_at)) AS left_at_answer
    FROM conversations c JOIN decided d ON d.conversation_id = c.id LEFT JOIN escalated e ON e.conversation_id = c.id
    LEFT JOIN verdicts v ON v.conversation_id = c.id LEFT JOIN feedback f ON f.conversation_id = c.id
    WHERE c.channel <> 'cli'
),
-- A resolution is taken back when the same user opens another conversation about the same problem (playbook)
-- within the window after it.
keyed AS (
    SELECT *, hash(user_id, playbook) AS problem, coalesce(fixed_at, last_answer_at) AS resolution_point
    FROM joined
),
came_back AS (
    SELECT DISTINCT r.conversation_id
    FROM keyed r JOIN keyed l ON l.problem = r.problem
    WHERE (r.said_fixed OR r.left_at_answer) AND l.conversation_id <> r.conversation_id
      AND l.first_message_at > r.resolution_point AND l.first_message_at <= r.resolution_point + metric_window_s()
),
judged AS (
    SELECT k.*, b.conversation_id IS NOT NULL AS came_back
    FROM keyed k LEFT JOIN came_back b USING (conversation_id)
)
SELECT conversation_id, user_id, channel, metric_day(first_message_at) AS day, category, playbook, outcome,
       outcome IN ('confirmed', 'assumed') AS ai_resolved,
       outcome NOT IN ('pending', 'out_of_scope') AS decided,
       first_message_at, coalesce(answers, 0) AS answers, not_fixed,
       CASE outcome WHEN 'confirmed' THEN fixed_at WHEN 'assumed' THEN last_answer_at END AS resolved_at,
       CASE outcome WHEN 'confirmed' THEN fixed_at WHEN 'assumed' THEN last_answer_at END - first_message_at
           AS resolution_s,
       outcome IN ('confirmed', 'assumed') AND answers = 1 AND not_fixed = 0 AS first_contact,
       handed_off_at, escalated_at, came_back, rating
FROM (
    SELECT *, CASE
            WHEN handed_off_at IS NOT NULL THEN 'handed_off'
            WHEN said_fixed AND came_back THEN 'returned'
            WHEN said_fixed THEN 'confirmed'
            WHEN escalated_at IS NOT NULL THEN 'escalated'
            WHEN coalesce(all_declined, false) THEN 'out_of_scope'
            -- the assistant spoke last (an answer, a question) or the user just said it is not fixed: wait
            WHEN metric_now() < greatest(last_decision_at, coalesce(not_fixed_at, 0)) + metric_window_s()
                THEN 'pending'
            -- silence after an answer, from a user who never said it failed: Fin's "exits without requesting
            -- further assistance" (one who said "still broken" and went quiet is not assumed satisfied)
            WHEN left_at_answer AND not_fixed = 0 AND came_back THEN 'returned'
            WHEN left_at_answer AND not_fixed = 0 THEN 'assumed'
            ELSE 'unresolved'
        END AS outcome
    FROM judged
);
