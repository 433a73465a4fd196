-- Step 95: cleanup progress by key (contract §6) for one source
-- (${EXTRACT} ${SOURCE}): flagged keys now versus the source's previous
-- published run and its first (baseline) published run.
--
-- Run once per source, over that source's reports only (never over the
-- whole of `subscriber_flags` / `account_flags`): `now_keys`,
-- `previous_keys` and `baseline_keys` each hold the key column (msisdn or
-- account_number) of one report of that source: the one this run has just
-- written, and those of the two earlier publications (empty when there is
-- none). A report has one row per flagged row, so a key may repeat. One
-- aggregation per key tells in which of the three sets it is; it holds one
-- source's flagged keys at a time. (A sum over no key is NULL: read as 0.)
WITH all_keys AS (
    SELECT key, 1 AS now, 0 AS prev, 0 AS base FROM now_keys
    UNION ALL
    SELECT key, 0 AS now, 1 AS prev, 0 AS base FROM previous_keys
    UNION ALL
    SELECT key, 0 AS now, 0 AS prev, 1 AS base FROM baseline_keys
),
per_key AS (
    SELECT max(now) AS now, max(prev) AS prev, max(base) AS base
    FROM all_keys
    GROUP BY key
)
SELECT '${EXTRACT}'                                           AS extract,
       '${SOURCE}'                                            AS source,
       sum(now)                                               AS flagged_keys,
       sum(CASE WHEN now = 1 AND prev = 0 THEN 1 ELSE 0 END)  AS newly_flagged,
       sum(CASE WHEN prev = 1 AND now = 0 THEN 1 ELSE 0 END)  AS resolved,
       sum(base)                                              AS baseline_flagged,
       sum(CASE WHEN base = 1 AND now = 0 THEN 1 ELSE 0 END)  AS resolved_since_baseline
FROM per_key
