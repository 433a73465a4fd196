-- Step 90: one carrier's counts for carriers.json (contract §6). Rows, not keys.
-- Run once per carrier (${SOURCE}), as that carrier's report is written. The
-- flags table is stored in one folder per carrier, so the filter on carrier
-- reads that folder alone, and the counts need no grouping: a GROUP BY
-- carrier over every carrier's rows hashed the carrier code of each of them
-- (a tenth of publish's CPU at 10M persons). A carrier with no row gets
-- one row of zeros (count 0, sums NULL read as 0).
-- Upper-case columns are flags_by_reason entries, one per reason code,
-- rendered from the one list (jobs/contract/reasons.rs):
-- sum(CASE WHEN <column> THEN 1 ELSE 0 END) AS "<CODE>".
SELECT '${SOURCE}' AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status IN ('blocked_one_way', 'blocked_two_way') THEN 1 ELSE 0 END) AS flagged_blocked,
       ${SUBSCRIBER_REASON_COUNTS}
FROM subscriber_flags
WHERE carrier = '${SOURCE}'
