-- Customer satisfaction, per day of the rating: good (4 or 5 of 5) over rated; unrated conversations are not
-- counted (Zendesk's CSAT: good / (good + bad)). One rating per conversation, its latest.
CREATE OR REPLACE VIEW metric_csat AS
SELECT metric_day(f.created_at) AS day,
       count(*) AS rated,
       count(*) FILTER (WHERE f.rating >= 4) AS good,
       count(*) FILTER (WHERE f.rating <= 3) AS bad,
       avg(f.rating) AS mean_rating
FROM feedback f JOIN conversations c ON c.id = f.conversation_id
WHERE c.channel <> 'cli'
GROUP BY ALL;
