-- Proactive prevention rate, per day a fault was detected: faults fixed before their limit was hit / faults.
CREATE OR REPLACE VIEW metric_prevention AS
SELECT day, count(*) AS faults, count(*) FILTER (WHERE prevented) AS prevented,
       count(*) FILTER (WHERE fixed_at IS NOT NULL) AS fixed
FROM faults GROUP BY day;
