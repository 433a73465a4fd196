-- Step 55: the repeated keys, over every row of `resolved` (the rows of one
-- key may belong to different persons, hence to different buckets: this
-- step is never split). Only the repeated keys are kept, so steps 50 and 60
-- hold them as small hash tables. Each view is materialised per run as the
-- table of the same name without `_v`.
--
-- Two aggregations, one over the subscriber rows and one over the account
-- rows, rather than one over (kind, source-or-NULL, key): the engine groups
-- plain key columns much faster than that computed, nullable mix (10M
-- persons: 9.1 + 10.5 s against 29.9 s).

-- DUPLICATE_MSISDN: the msisdn is in more than one subscriber row across all
-- carriers. Grouped as a number: a curated msisdn is always `84` and nine
-- digits (contract §3; rows that do not normalise are rejects), so two
-- msisdns are equal exactly when their numbers are, and the engine groups
-- and joins numbers much faster than text (10M persons, 4 GiB: this view
-- took 4.0 s on day 1 and 7.2 s on day 2 grouped as text, 1.5-2.5 s as
-- numbers).
CREATE OR REPLACE VIEW duplicate_msisdns_v AS
SELECT CAST(key AS BIGINT) AS msisdn_number
FROM resolved
WHERE kind = 'S'
GROUP BY CAST(key AS BIGINT)
HAVING count(*) > 1;

-- DUPLICATE_ACCOUNT: the account_number is in more than one row of one
-- bank's extract.
CREATE OR REPLACE VIEW duplicate_accounts_v AS
SELECT source, key
FROM resolved
WHERE kind = 'A'
GROUP BY source, key
HAVING count(*) > 1
