-- Step 95: cleanup progress by key (contract §6): flagged keys now versus the
-- source's previous published run and its first (baseline) published run.
-- previous_keys / baseline_keys (extract, source, key) are read from those
-- publications' reports (one row per flagged row, so a key may repeat); a
-- source with no earlier publication has none. One aggregation per key
-- tells in which of the three sets it is.
WITH all_keys AS (
    SELECT 'subscribers' AS extract, carrier AS source, msisdn AS key, 1 AS now, 0 AS prev, 0 AS base
    FROM subscriber_flags WHERE reasons IS NOT NULL
    UNION ALL
    SELECT 'accounts' AS extract, bank AS source, account_number AS key, 1 AS now, 0 AS prev, 0 AS base
    FROM account_flags WHERE reasons IS NOT NULL
    UNION ALL
    SELECT extract, source, key, 0 AS now, 1 AS prev, 0 AS base FROM previous_keys
    UNION ALL
    SELECT extract, source, key, 0 AS now, 0 AS prev, 1 AS base FROM baseline_keys
),
per_key AS (
    SELECT extract, source, max(now) AS now, max(prev) AS prev, max(base) AS base
    FROM all_keys
    GROUP BY extract, source, key
)
SELECT extract, source,
       sum(now)                                               AS flagged_keys,
       sum(CASE WHEN now = 1 AND prev = 0 THEN 1 ELSE 0 END)  AS newly_flagged,
       sum(CASE WHEN prev = 1 AND now = 0 THEN 1 ELSE 0 END)  AS resolved,
       sum(base)                                              AS baseline_flagged,
       sum(CASE WHEN base = 1 AND now = 0 THEN 1 ELSE 0 END)  AS resolved_since_baseline
FROM per_key
GROUP BY extract, source
ORDER BY extract, source
