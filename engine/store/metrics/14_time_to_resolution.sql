-- Time to resolution: one row per conversation the assistant resolved, from the user's first message to the
-- resolution (the user's "it works" when confirmed, the last answer when assumed), in seconds. Medians and
-- percentiles are taken over these rows (docs/metrics.md#time-to-resolution).
CREATE OR REPLACE VIEW metric_time_to_resolution AS
SELECT day, conversation_id, category, outcome, resolution_s
FROM conversation_outcomes WHERE ai_resolved;
