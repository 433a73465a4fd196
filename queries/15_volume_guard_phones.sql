-- Step 15 for a carrier's upload: the volume guard (contract §8) with the
-- msisdn as the key. It counts exactly what queries/15_volume_guard.sql
-- counts (read that file first), only faster:
--
--   * A curated msisdn is always 84 followed by 9 digits (contract §3: a row
--     whose msisdn does not normalise so is a row-level reject, and is not
--     among the accepted rows), and so is every key of a carrier's report
--     (the msisdns of its accepted rows). Two such keys are equal exactly
--     when their numbers are, so every key is grouped as one number: the
--     engine's fastest grouping.
--   * One bit mask per key instead of two flags: bit 1 when the reference
--     has it, bit 2 when the upload or the report keeps it.
--
-- ${ROW_KEY} is msisdn, ${REPORT_KEY} the report's key column.
WITH all_keys AS (
    SELECT CAST(${ROW_KEY} AS BIGINT) AS number, 1 AS seen FROM reference_rows
    UNION ALL
    SELECT CAST(${ROW_KEY} AS BIGINT) AS number, 2 AS seen FROM upload_rows
    UNION ALL
    SELECT CAST(${REPORT_KEY} AS BIGINT) AS number, 2 AS seen FROM flagged_keys
),
per_key AS (
    SELECT bit_or(seen) AS seen
    FROM all_keys
    GROUP BY number
)
SELECT coalesce(sum(seen & 1), 0)                           AS reference_keys,
       coalesce(sum(CASE WHEN seen = 1 THEN 1 ELSE 0 END), 0) AS lost_keys
FROM per_key
