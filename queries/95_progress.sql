-- Step 95: cleanup progress by key (contract §6): flagged keys now versus the
-- source's previous published run and its first (baseline) published run.
-- previous_keys / baseline_keys (extract, source, key) are read from those
-- publications' reports (one row per flagged row, so a key may repeat);
-- a source with no earlier publication has none.
WITH previous AS (
    SELECT DISTINCT extract, source, key FROM previous_keys
),
first_run AS (
    SELECT DISTINCT extract, source, key FROM baseline_keys
),
current_keys AS (
    SELECT DISTINCT 'subscribers' AS extract, carrier AS source, msisdn AS key
    FROM subscriber_flags WHERE reasons IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'accounts' AS extract, bank AS source, account_number AS key
    FROM account_flags WHERE reasons IS NOT NULL
),
flagged_keys AS (
    SELECT extract, source, count(*) AS n FROM current_keys GROUP BY extract, source
),
newly AS (
    SELECT c.extract, c.source, count(*) AS n
    FROM current_keys c
    WHERE NOT EXISTS (SELECT 1 FROM previous p
                      WHERE p.extract = c.extract AND p.source = c.source AND p.key = c.key)
    GROUP BY c.extract, c.source
),
resolved AS (
    SELECT p.extract, p.source, count(*) AS n
    FROM previous p
    WHERE NOT EXISTS (SELECT 1 FROM current_keys c
                      WHERE c.extract = p.extract AND c.source = p.source AND c.key = p.key)
    GROUP BY p.extract, p.source
),
baseline AS (
    SELECT extract, source, count(*) AS n FROM first_run GROUP BY extract, source
),
baseline_resolved AS (
    SELECT b.extract, b.source, count(*) AS n
    FROM first_run b
    WHERE NOT EXISTS (SELECT 1 FROM current_keys c
                      WHERE c.extract = b.extract AND c.source = b.source AND c.key = b.key)
    GROUP BY b.extract, b.source
),
sources AS (
    SELECT extract, source FROM flagged_keys
    UNION SELECT extract, source FROM previous
    UNION SELECT extract, source FROM first_run
)
SELECT s.extract, s.source,
       coalesce(f.n, 0)  AS flagged_keys,
       coalesce(n.n, 0)  AS newly_flagged,
       coalesce(r.n, 0)  AS resolved,
       coalesce(b.n, 0)  AS baseline_flagged,
       coalesce(br.n, 0) AS resolved_since_baseline
FROM sources s
LEFT JOIN flagged_keys f       ON f.extract = s.extract  AND f.source = s.source
LEFT JOIN newly n              ON n.extract = s.extract  AND n.source = s.source
LEFT JOIN resolved r           ON r.extract = s.extract  AND r.source = s.source
LEFT JOIN baseline b           ON b.extract = s.extract  AND b.source = s.source
LEFT JOIN baseline_resolved br ON br.extract = s.extract AND br.source = s.source
ORDER BY s.extract, s.source
