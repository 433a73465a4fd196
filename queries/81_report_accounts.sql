-- Step 81: one bank's report (contract §6, §9), reviewed by the State Bank:
-- that bank's flagged rows only, and nothing from the registry. ${SOURCE}
-- is the bank code, ${AS_OF} the night D.
--
-- Enforcement timeline (§9), as step 80: `previous_clock` holds the key and
-- first_flagged_on of every row of this bank's report of the previous
-- published night (a report written before contract v2 counts as
-- ${PREVIOUS_NIGHT} for every key). NOTIFY until day ${SUSPEND_AFTER_DAYS},
-- then SUSPEND (online transactions suspended), which has no next action.
WITH clock AS (
    SELECT key, min(coalesce(first_flagged_on, DATE '${PREVIOUS_NIGHT}')) AS first_flagged_on
    FROM previous_clock
    GROUP BY key
),
flagged AS (
    SELECT f.account_number, f.row_id, f.reasons, f.holder_type, f.status, f.opened_on,
           f.id_number_masked,
           coalesce(c.first_flagged_on, DATE '${AS_OF}') AS first_flagged_on
    FROM clock c
    RIGHT JOIN (SELECT * FROM account_flags
                WHERE bank = '${SOURCE}' AND reasons IS NOT NULL) f
            ON c.key = f.account_number
),
timed AS (
    SELECT *, CAST(CAST(DATE '${AS_OF}' AS INT) - CAST(first_flagged_on AS INT) AS INT) AS days_flagged
    FROM flagged
),
actions AS (
    SELECT *,
           CASE WHEN days_flagged >= ${SUSPEND_AFTER_DAYS} THEN 'SUSPEND'
                ELSE 'NOTIFY' END AS required_action
    FROM timed
)
SELECT account_number,
       string_to_array(reasons, ';') AS reasons,
       holder_type,
       status,
       opened_on,
       id_number_masked,
       first_flagged_on,
       days_flagged,
       required_action,
       CAST(CASE required_action
              WHEN 'NOTIFY' THEN CAST(first_flagged_on AS INT) + ${SUSPEND_AFTER_DAYS}
            END AS DATE) AS next_action_on,
       CASE required_action
         WHEN 'SUSPEND' THEN status = 'active'
         ELSE FALSE
       END AS overdue,
       reasons AS reasons_csv
FROM actions
ORDER BY account_number, row_id
