-- Faults the monitor detected: the signals on one service's metric, an episode while they keep coming less than
-- 30 minutes apart. A fault is prevented when a remediation of it succeeded before the metric crossed its limit
-- (a threshold breach or a firing alert: the point users feel it).
CREATE OR REPLACE VIEW faults AS
WITH gaps AS (
    SELECT id, observed_at, service, metric, kind,
           observed_at - lag(observed_at) OVER (PARTITION BY service, metric ORDER BY observed_at, id) AS gap_s
    FROM signals
),
episodes AS (
    SELECT *, sum(CASE WHEN gap_s IS NULL OR gap_s > 1800 THEN 1 ELSE 0 END)
              OVER (PARTITION BY service, metric ORDER BY observed_at, id ROWS UNBOUNDED PRECEDING) AS episode
    FROM gaps
),
fault AS (
    SELECT service, metric, episode, min(observed_at) AS detected_at, arg_min(kind, observed_at) AS first_kind,
           min(observed_at) FILTER (WHERE kind IN ('threshold', 'alert')) AS limit_hit_at
    FROM episodes GROUP BY service, metric, episode
),
fixed AS (
    SELECT e.service, e.metric, e.episode, min(r.finished_at) AS fixed_at, count(*) AS remediations
    FROM episodes e JOIN remediations r ON r.signal_id = e.id
    WHERE r.status = 'succeeded'
    GROUP BY e.service, e.metric, e.episode
)
SELECT f.service || '/' || f.metric || '/' || f.episode AS fault_id, metric_day(f.detected_at) AS day,
       f.service, f.metric, f.first_kind, f.detected_at, f.limit_hit_at, x.fixed_at,
       coalesce(x.remediations, 0) AS remediations,
       x.fixed_at IS NOT NULL AND (f.limit_hit_at IS NULL OR x.fixed_at < f.limit_hit_at) AS prevented
FROM fault f LEFT JOIN fixed x USING (service, metric, episode);
