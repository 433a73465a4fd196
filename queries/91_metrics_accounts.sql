-- Step 91: one bank's counts for banks.json (contract §6). Rows, not keys.
-- Run once per bank (${SOURCE}), as that bank's report is written. The
-- flags table is stored in one folder per bank, so the filter on bank
-- reads that folder alone, and the counts need no grouping: a GROUP BY
-- bank over every bank's rows hashed the bank code of each of them
-- (a tenth of publish's CPU at 10M persons). A bank with no row gets
-- one row of zeros (count 0, sums NULL read as 0).
-- Upper-case columns are flags_by_reason entries, one per reason code,
-- rendered from the one list (jobs/contract/reasons.rs):
-- sum(CASE WHEN <column> THEN 1 ELSE 0 END) AS "<CODE>".
SELECT '${SOURCE}' AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status = 'suspended' THEN 1 ELSE 0 END) AS flagged_blocked,
       ${ACCOUNT_REASON_COUNTS}
FROM account_flags
WHERE bank = '${SOURCE}'
