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
-- A full join of both reports' distinct keys marks each key with the
-- reports it is in. The keys no longer flagged (in the previous report only) are
-- then looked up among the source's rows: they are the hash table, the
-- source's rows stream past it. (Four EXCEPT and INTERSECT did the same
-- with a hash table of a whole report each, the keys no longer flagged
-- computed three times.) Keys are compared as distinct values, as EXCEPT
-- did; a report's key is never null. (One aggregation over a UNION ALL of
-- both reports' keys, marked with literals, would do the same; the cluster
-- engine's scheduler lost track of that plan and never finished it.)
WITH now_distinct AS (
    SELECT DISTINCT key FROM now_keys
),
previous_distinct AS (
    SELECT DISTINCT key FROM previous_keys
),
per_key AS (
    SELECT coalesce(n.key, p.key) AS key,
           CASE WHEN n.key IS NULL THEN 0 ELSE 1 END AS in_now,
           CASE WHEN p.key IS NULL THEN 0 ELSE 1 END AS in_previous
    FROM now_distinct n
    FULL JOIN previous_distinct p ON n.key = p.key
),
unflagged AS (
    SELECT key FROM per_key WHERE in_now = 0
),
still_present AS (
    SELECT DISTINCT u.key
    FROM ${FLAGS} f
    JOIN unflagged u ON f.${KEY} = u.key
    WHERE f.${SOURCE_COLUMN} = '${SOURCE}'
)
SELECT k.key AS ${KEY},
       CASE WHEN k.in_now = 1        THEN 'NEW'       -- flagged now, not before
            WHEN s.key IS NOT NULL   THEN 'RESOLVED'  -- flagged before, not now, still there
            ELSE 'GONE'                               -- flagged before, not now, gone
       END AS change
FROM per_key k
LEFT JOIN still_present s ON k.key = s.key
WHERE k.in_now <> k.in_previous
ORDER BY change, ${KEY}
