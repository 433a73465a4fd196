-- Step 97: one source's enforcement counts (contract §9, §10) for
-- carriers.json / banks.json, ${EXTRACT} ${SOURCE}, over the report this run
-- has just written (`now_report`: one row per flagged row) and its delta
-- list (`now_delta`).
-- Upper-case columns are required_action entries, one per action of the
-- extract kind (rendered from the one list, jobs/contract/reasons.rs):
-- sum(CASE WHEN required_action = '<ACTION>' THEN 1 ELSE 0 END) AS "<ACTION>".
-- `due` counts the rows whose action is not NOTIFY (compliance's denominator).
SELECT '${EXTRACT}' AS extract,
       '${SOURCE}'  AS source,
       r.*,
       d.gone
FROM (
    SELECT sum(CASE WHEN overdue THEN 1 ELSE 0 END)                     AS overdue,
           sum(CASE WHEN required_action <> 'NOTIFY' THEN 1 ELSE 0 END) AS due,
           ${ACTION_SUMS}
    FROM now_report
) r
CROSS JOIN (
    SELECT sum(CASE WHEN change = 'GONE' THEN 1 ELSE 0 END) AS gone
    FROM now_delta
) d
