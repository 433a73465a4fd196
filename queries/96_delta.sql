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
--
-- One aggregation: every key of the two reports, marked with the reports
-- it is in and, for a key of the previous report, whether the source's
-- rows still have it. That last mark is a semi join: the previous report's
-- keys are the hash table, the source's rows stream past it. (Four EXCEPT
-- and INTERSECT did the same with a hash table of a whole report each, the
-- keys no longer flagged computed three times.) Keys are compared as
-- distinct values, as EXCEPT did; a report's key is never null.
WITH present_keys AS (
    SELECT ${KEY} AS key FROM ${FLAGS} WHERE ${SOURCE_COLUMN} = '${SOURCE}'
),
per_key AS (
    SELECT key, max(in_now) AS in_now, max(in_previous) AS in_previous, max(present) AS present
    FROM (
        SELECT key, 1 AS in_now, 0 AS in_previous, 0 AS present FROM now_keys
        UNION ALL
        SELECT key, 0 AS in_now, 1 AS in_previous, 0 AS present FROM previous_keys
        UNION ALL
        SELECT key, 0 AS in_now, 0 AS in_previous, 1 AS present
        FROM present_keys
        WHERE key IN (SELECT key FROM previous_keys)
    ) k
    GROUP BY key
)
SELECT key AS ${KEY},
       CASE WHEN in_now = 1  THEN 'NEW'       -- flagged now, not before
            WHEN present = 1 THEN 'RESOLVED'  -- flagged before, not now, still there
            ELSE 'GONE'                       -- flagged before, not now, gone
       END AS change
FROM per_key
WHERE in_now <> in_previous
ORDER BY change, key
