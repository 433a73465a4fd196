-- Step 96: one source's delta list (contract §10), ${EXTRACT} ${SOURCE}:
-- one row per key whose state changed since the source's report of the
-- previous published night, with its change:
--   NEW       flagged now, not flagged in the previous report (every
--             flagged key on a source's first report);
--   RESOLVED  flagged in the previous report, still among the accepted rows
--             of the extract used now, not flagged now;
--   GONE      flagged in the previous report, no longer among the accepted
--             rows of the extract used now.
-- Inputs: `now_keys` and `previous_keys` (the key column of this run's
-- report and of the previous one; a key repeats once per flagged row) and
-- ${FLAGS} (every accepted row of the extracts used now, flagged or not).
-- ${KEY} is the report's key column (msisdn or account_number),
-- ${SOURCE_COLUMN} the flag table's source column.
WITH present_keys AS (
    SELECT ${KEY} AS key FROM ${FLAGS} WHERE ${SOURCE_COLUMN} = '${SOURCE}'
),
-- EXCEPT and INTERSECT compare distinct keys.
new_keys AS (
    SELECT key FROM now_keys
    EXCEPT
    SELECT key FROM previous_keys
),
unflagged AS (
    SELECT key FROM previous_keys
    EXCEPT
    SELECT key FROM now_keys
),
resolved_keys AS (
    SELECT key FROM unflagged
    INTERSECT
    SELECT key FROM present_keys
),
gone_keys AS (
    SELECT key FROM unflagged
    EXCEPT
    SELECT key FROM resolved_keys
)
SELECT key AS ${KEY}, change
FROM (
    SELECT key, 'NEW' AS change FROM new_keys
    UNION ALL
    SELECT key, 'RESOLVED' AS change FROM resolved_keys
    UNION ALL
    SELECT key, 'GONE' AS change FROM gone_keys
) d
ORDER BY change, key
