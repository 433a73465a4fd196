-- Step 91: per-bank counts for banks.json (contract §6). Rows, not keys.
-- Upper-case columns are flags_by_reason entries, one per reason code,
-- rendered from the one list (jobs/contract/reasons.rs):
-- sum(CASE WHEN <column> THEN 1 ELSE 0 END) AS "<CODE>".
SELECT bank AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status = 'suspended' THEN 1 ELSE 0 END) AS flagged_blocked,
       ${ACCOUNT_REASON_COUNTS}
FROM account_flags
GROUP BY bank
ORDER BY bank
