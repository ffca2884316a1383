-- The generated event store of bench/metrics_scale.py: {n} conversations of {users} users over {days} days from
-- {start} (epoch s). u(salt) is a uniform number in [0, 1) from the row number, the same on every run.
CREATE TEMP TABLE gen AS
SELECT i, 'c' || i AS cid, 'u' || (i % {users}) AS uid,
       {start} + ((hash(i, 1) % 1000000) / 1000000.0) * {days} * 86400.0 AS t0,
       1 + CAST(((hash(i, 2) % 1000000) / 1000000.0) * 4 AS INTEGER) AS msgs,
       (hash(i, 3) % 1000000) / 1000000.0 AS kind, (hash(i, 4) % 1000000) / 1000000.0 AS said,
       (hash(i, 5) % 1000000) / 1000000.0 AS rated
FROM range({n}) r(i);
INSERT INTO conversations SELECT cid, uid, CASE WHEN kind < 0.02 THEN 'cli' ELSE 'web' END, t0 FROM gen;
INSERT INTO messages SELECT cid || '-m' || k, cid, uid, 'user', 'text', t0 + k * 60 FROM gen, range(msgs) m(k);
-- kind: below 0.70 an answer, 0.78 a clarification then an answer, 0.86 a hand-off, 0.93 a business request,
-- else out of scope
INSERT INTO decisions
SELECT cid || '-d0', cid || '-m0', cid, uid,
       CASE WHEN kind < 0.70 THEN 'resolve' WHEN kind < 0.78 THEN 'clarify' WHEN kind < 0.86 THEN 'resolve'
            WHEN kind < 0.93 THEN 'escalate' ELSE 'decline' END,
       CASE WHEN kind < 0.86 THEN 'performance' WHEN kind < 0.93 THEN 'pricing' ELSE 'out_of_scope' END,
       CASE WHEN kind < 0.86 THEN 'playbook_' || (i % 40) WHEN kind < 0.93 THEN 'discount' END,
       'answer', 0.8, 'v1', false, 'reply', '[]', 5.0, t0 + 1
FROM gen;
INSERT INTO decisions
SELECT cid || '-d1', cid || '-m1', cid, uid, 'resolve', 'performance', 'playbook_' || (i % 40), 'answer', 0.9, 'v1',
       false, 'reply', '[]', 5.0, t0 + 61
FROM gen WHERE kind >= 0.70 AND kind < 0.78;
INSERT INTO handoffs SELECT cid || '-h', cid || '-d0', cid, uid, 'engineering', 's', '{{}}', 'open', t0 + 1
FROM gen WHERE kind >= 0.78 AND kind < 0.86;
INSERT INTO user_verdicts
SELECT cid || '-v', cid, uid, 'playbook_' || (i % 40),
       CASE WHEN said < 0.5 THEN 'fixed' WHEN said < 0.6 THEN 'not_fixed' ELSE 'partly' END, t0 + 300
FROM gen WHERE kind < 0.78 AND said < 0.7;
INSERT INTO feedback SELECT cid || '-f', cid, uid, 1 + CAST(rated * 15 AS INTEGER) % 5, '', t0 + 400
FROM gen WHERE rated < 0.33;
INSERT INTO escalations (id, decision_id, conversation_id, user_id, category, summary, status, created_at)
SELECT cid || '-e', cid || '-d0', cid, uid, ['pricing', 'policy', 'hosting_capacity', 'subscription_benefits'][1 + i % 4],
       's', CASE WHEN said < 0.5 THEN 'approved' WHEN said < 0.8 THEN 'rejected' WHEN said < 0.9 THEN 'expired'
                 ELSE 'open' END, t0 + 1
FROM gen WHERE kind >= 0.86 AND kind < 0.93;
INSERT INTO escalation_events
SELECT cid || '-ev', cid || '-e', t0 + 7200, 'dana', 'decided', CASE WHEN said < 0.5 THEN 'approved' ELSE 'rejected' END,
       'r', json_object('recommended', CASE WHEN rated < 0.7 THEN 'approved' ELSE 'rejected' END)
FROM gen WHERE kind >= 0.86 AND kind < 0.93 AND said < 0.8;
-- one fault per 200 conversations, half of them predicted, most fixed
INSERT INTO signals
SELECT 's' || i, t0, 'svc' || (i % 12), 'cpu_pct', CASE WHEN said < 0.5 THEN 'trend' ELSE 'threshold' END, 'hard', 80,
       90, NULL, NULL, NULL, NULL, ''
FROM gen WHERE i % 200 = 0;
INSERT INTO remediations (id, signal_id, action, target, params, adapter, status, detail, started_at, finished_at)
SELECT 'r' || i, 's' || i, 'restart', 'svc' || (i % 12), '{{}}', 'sim',
       CASE WHEN rated < 0.8 THEN 'succeeded' ELSE 'failed' END, '', t0 + 30, t0 + 90
FROM gen WHERE i % 200 = 0;
DROP TABLE gen;
-- @rows: rows per table, read back through the analysts' console
SELECT (SELECT count(*) FROM conversations) AS conversations, (SELECT count(*) FROM messages) AS messages,
       (SELECT count(*) FROM decisions) AS decisions, (SELECT count(*) FROM user_verdicts) AS user_verdicts,
       (SELECT count(*) FROM feedback) AS feedback, (SELECT count(*) FROM handoffs) AS handoffs,
       (SELECT count(*) FROM escalations) AS escalations, (SELECT count(*) FROM signals) AS signals,
       (SELECT count(*) FROM remediations) AS remediations;
-- @baseline: the plain count the metrics are compared with
SELECT count(*) FROM conversations;
