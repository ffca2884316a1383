-- Faults the monitor detected, as incidents: the signals on any service while they keep coming less than 30
-- minutes apart. One fault shows on several services at once (an exhausted database pool raises errors and
-- latency on every caller), and the root cause is fixed once; so a fault is the incident, not each symptom.
-- A fault is prevented when a remediation of one of its signals succeeded before any of its signals crossed a
-- limit (a threshold breach or a firing alert: the point users feel it).
CREATE OR REPLACE VIEW faults AS
WITH gaps AS (
    SELECT id, observed_at, service, metric, kind,
           observed_at - lag(observed_at) OVER (ORDER BY observed_at, id) AS gap_s
    FROM signals
),
incidents AS (
    SELECT *, sum(CASE WHEN gap_s IS NULL OR gap_s > 1800 THEN 1 ELSE 0 END)
              OVER (ORDER BY observed_at, id ROWS UNBOUNDED PRECEDING) AS incident
    FROM gaps
),
fault AS (
    SELECT incident, min(observed_at) AS detected_at, arg_min(kind, observed_at) AS first_kind,
           min(observed_at) FILTER (WHERE kind IN ('threshold', 'alert')) AS limit_hit_at,
           count(*) AS signals, string_agg(DISTINCT service, ', ' ORDER BY service) AS services
    FROM incidents GROUP BY incident
),
fixed AS (
    SELECT i.incident, min(r.finished_at) AS fixed_at, count(*) AS remediations
    FROM incidents i JOIN remediations r ON r.signal_id = i.id
    WHERE r.status = 'succeeded'
    GROUP BY i.incident
)
SELECT 'fault-' || f.incident AS fault_id, metric_day(f.detected_at) AS day, f.services, f.signals, f.first_kind,
       f.detected_at, f.limit_hit_at, x.fixed_at, coalesce(x.remediations, 0) AS remediations,
       x.fixed_at IS NOT NULL AND (f.limit_hit_at IS NULL OR x.fixed_at < f.limit_hit_at) AS prevented
FROM fault f LEFT JOIN fixed x USING (incident);
