-- Learned rules per day: versions proposed, promoted to active, put in shadow, retired and rejected (each status
-- change is a version of the rule, learned_rules keeps them all).
CREATE OR REPLACE VIEW metric_learned_rules AS
SELECT metric_day(at_s) AS day,
       count(*) FILTER (WHERE status = 'proposed') AS proposed,
       count(*) FILTER (WHERE status = 'active') AS promoted,
       count(*) FILTER (WHERE status = 'shadow') AS shadowed,
       count(*) FILTER (WHERE status = 'retired') AS retired,
       count(*) FILTER (WHERE status = 'rejected') AS rejected
FROM learned_rules GROUP BY ALL;
