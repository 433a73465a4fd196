-- Step 90: per-carrier counts for carriers.json (contract §6). Rows, not keys.
-- Upper-case columns are flags_by_reason entries, one per reason code,
-- rendered from the one list (jobs/contract/reasons.rs):
-- sum(CASE WHEN <column> THEN 1 ELSE 0 END) AS "<CODE>".
SELECT carrier AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status IN ('blocked_one_way', 'blocked_two_way') THEN 1 ELSE 0 END) AS flagged_blocked,
       ${SUBSCRIBER_REASON_COUNTS}
FROM subscriber_flags
GROUP BY carrier
ORDER BY carrier
