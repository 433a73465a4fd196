-- Step 55: the repeated keys, over every row of `resolved` (the rows of one
-- key may belong to different persons, hence to different buckets: this
-- step is never split), materialised per run as `duplicates`. Only the
-- repeated keys are kept, so steps 50 and 60 hold them as small hash tables.
--
--   kind 'S': DUPLICATE_MSISDN: the msisdn is in more than one subscriber
--             row across all carriers (source is NULL: any carrier);
--   kind 'A': DUPLICATE_ACCOUNT: the account_number is in more than one row
--             of one bank's extract (source is that bank).
--
-- One aggregation serves both, so the big table is read once.
CREATE OR REPLACE VIEW duplicates_v AS
SELECT kind, source, key
FROM (
    SELECT kind,
           CASE WHEN kind = 'A' THEN source END AS source,
           key
    FROM resolved
) r
GROUP BY kind, source, key
HAVING count(*) > 1
