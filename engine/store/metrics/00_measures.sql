-- Shared measures of every metric view (docs/metrics.md).

-- The moment the metrics are measured at, in epoch seconds: the caller's clock when it sets the DuckDB variable
-- `firstline_now` (the console, `firstline metrics` and the tests do), else the database's own clock.
CREATE OR REPLACE MACRO metric_now() AS coalesce(CAST(getvariable('firstline_now') AS DOUBLE), epoch(current_timestamp));

-- How long after the assistant's last answer a conversation with no further word from the user is assumed
-- resolved, and how long a user who comes back about the same problem takes a resolution back: 24 hours, in
-- seconds. (Intercom's Fin: customers "have at least 24 hours to respond to the last AI answer before it is
-- considered exiting"; docs/metrics.md.)
CREATE OR REPLACE MACRO metric_window_s() AS 86400.0;

-- The UTC calendar day of an epoch-seconds timestamp.
CREATE OR REPLACE MACRO metric_day(epoch_s) AS CAST(make_timestamp(CAST(epoch_s * 1000000 AS BIGINT)) AS DATE);

-- A share, or NULL when there is nothing to divide by (never a division by zero, never a made-up 0 %).
CREATE OR REPLACE MACRO metric_share(part, whole) AS CASE WHEN whole > 0 THEN part / whole END;

-- The business categories of the fixed taxonomy (core/taxonomy.py BUSINESS; a test keeps the two the same).
CREATE OR REPLACE MACRO metric_business_categories() AS ['hosting_capacity', 'pricing', 'policy', 'subscription_benefits'];
CREATE OR REPLACE MACRO metric_is_business(category) AS list_contains(metric_business_categories(), category);

