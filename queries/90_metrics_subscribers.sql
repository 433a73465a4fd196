-- Step 90: per-carrier counts for carriers.json (contract §6). Rows, not keys.
-- Upper-case columns are flags_by_reason entries, one per reason code.
SELECT carrier AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status IN ('blocked_one_way', 'blocked_two_way') THEN 1 ELSE 0 END) AS flagged_blocked,
       sum(CASE WHEN deceased         THEN 1 ELSE 0 END) AS "DECEASED",
       sum(CASE WHEN dob_mismatch     THEN 1 ELSE 0 END) AS "DOB_MISMATCH",
       sum(CASE WHEN duplicate_msisdn THEN 1 ELSE 0 END) AS "DUPLICATE_MSISDN",
       sum(CASE WHEN id_not_found     THEN 1 ELSE 0 END) AS "ID_NOT_FOUND",
       sum(CASE WHEN legacy_id        THEN 1 ELSE 0 END) AS "LEGACY_ID",
       sum(CASE WHEN malformed_id     THEN 1 ELSE 0 END) AS "MALFORMED_ID",
       sum(CASE WHEN missing_id       THEN 1 ELSE 0 END) AS "MISSING_ID",
       sum(CASE WHEN name_mismatch    THEN 1 ELSE 0 END) AS "NAME_MISMATCH",
       sum(CASE WHEN over_limit       THEN 1 ELSE 0 END) AS "OVER_LIMIT"
FROM subscriber_flags
GROUP BY carrier
ORDER BY carrier
