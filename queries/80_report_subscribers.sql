-- Step 80: one carrier's report (contract §6, §9): that carrier's flagged
-- rows only, and nothing from the registry. ${SOURCE} is the carrier code,
-- ${AS_OF} the night D.
-- `reasons` is the List<Utf8> of the Parquet report; `reasons_csv` the
-- ';'-joined form written to flags.csv (it is not a Parquet column).
--
-- Enforcement timeline (§9). `previous_clock` holds the key and
-- first_flagged_on of every row of this carrier's report of the previous
-- published night (empty when there is none). A report written before
-- contract v2 has no first_flagged_on: its keys count as first flagged on
-- that report's night, ${PREVIOUS_NIGHT}. A key flagged there keeps its
-- clock; any other flagged key starts one tonight. All rows of a key share it.
-- Settings ([enforcement]): NOTIFY until day ${LOCK_ONE_WAY_AFTER_DAYS},
-- LOCK_ONE_WAY until day ${LOCK_TWO_WAY_AFTER_DAYS}, LOCK_TWO_WAY until day
-- ${TERMINATE_AFTER_DAYS}, then TERMINATE.
WITH clock AS (
    SELECT key, min(coalesce(first_flagged_on, DATE '${PREVIOUS_NIGHT}')) AS first_flagged_on
    FROM previous_clock
    GROUP BY key
),
flagged AS (
    SELECT f.msisdn, f.row_id, f.reasons, f.subscriber_type, f.status, f.activated_on,
           f.id_number_masked,
           coalesce(c.first_flagged_on, DATE '${AS_OF}') AS first_flagged_on
    -- The clock (one row per key flagged last night) is the hash table; the
    -- carrier's flagged rows stream past it.
    FROM clock c
    RIGHT JOIN (SELECT * FROM subscriber_flags
                WHERE carrier = '${SOURCE}' AND reasons IS NOT NULL) f
            ON c.key = f.msisdn
),
timed AS (
    -- days_flagged = D − first_flagged_on, in calendar days (dates as day numbers).
    SELECT *, CAST(CAST(DATE '${AS_OF}' AS INT) - CAST(first_flagged_on AS INT) AS INT) AS days_flagged
    FROM flagged
),
actions AS (
    SELECT *,
           CASE WHEN days_flagged >= ${TERMINATE_AFTER_DAYS}    THEN 'TERMINATE'
                WHEN days_flagged >= ${LOCK_TWO_WAY_AFTER_DAYS} THEN 'LOCK_TWO_WAY'
                WHEN days_flagged >= ${LOCK_ONE_WAY_AFTER_DAYS} THEN 'LOCK_ONE_WAY'
                ELSE 'NOTIFY' END AS required_action
    FROM timed
)
SELECT msisdn,
       string_to_array(reasons, ';') AS reasons,
       subscriber_type,
       status,
       activated_on,
       id_number_masked,
       first_flagged_on,
       days_flagged,
       required_action,
       -- The date from which the next action is required (none after TERMINATE).
       CAST(CASE required_action
              WHEN 'NOTIFY'       THEN CAST(first_flagged_on AS INT) + ${LOCK_ONE_WAY_AFTER_DAYS}
              WHEN 'LOCK_ONE_WAY' THEN CAST(first_flagged_on AS INT) + ${LOCK_TWO_WAY_AFTER_DAYS}
              WHEN 'LOCK_TWO_WAY' THEN CAST(first_flagged_on AS INT) + ${TERMINATE_AFTER_DAYS}
            END AS DATE) AS next_action_on,
       -- Overdue: the required action is not reflected in the status. A SIM
       -- that must be terminated should not be in the extract at all.
       CASE required_action
         WHEN 'LOCK_ONE_WAY' THEN status = 'active'
         WHEN 'LOCK_TWO_WAY' THEN status IN ('active', 'blocked_one_way')
         WHEN 'TERMINATE'    THEN TRUE
         ELSE FALSE
       END AS overdue,
       reasons AS reasons_csv
FROM actions
ORDER BY msisdn, row_id
