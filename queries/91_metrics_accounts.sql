-- Step 91: per-bank counts for banks.json (contract §6). Rows, not keys.
-- Upper-case columns are flags_by_reason entries, one per reason code.
SELECT bank AS source,
       count(*) AS total,
       sum(CASE WHEN NOT in_scope THEN 1 ELSE 0 END) AS out_of_scope,
       sum(CASE WHEN reasons IS NOT NULL THEN 1 ELSE 0 END) AS flagged,
       sum(CASE WHEN in_scope AND reasons IS NULL THEN 1 ELSE 0 END) AS clean,
       sum(CASE WHEN reasons IS NOT NULL AND status = 'suspended' THEN 1 ELSE 0 END) AS flagged_blocked,
       sum(CASE WHEN deceased           THEN 1 ELSE 0 END) AS "DECEASED",
       sum(CASE WHEN dob_mismatch       THEN 1 ELSE 0 END) AS "DOB_MISMATCH",
       sum(CASE WHEN duplicate_account  THEN 1 ELSE 0 END) AS "DUPLICATE_ACCOUNT",
       sum(CASE WHEN id_not_found       THEN 1 ELSE 0 END) AS "ID_NOT_FOUND",
       sum(CASE WHEN legacy_id          THEN 1 ELSE 0 END) AS "LEGACY_ID",
       sum(CASE WHEN malformed_id       THEN 1 ELSE 0 END) AS "MALFORMED_ID",
       sum(CASE WHEN missing_id         THEN 1 ELSE 0 END) AS "MISSING_ID",
       sum(CASE WHEN name_mismatch      THEN 1 ELSE 0 END) AS "NAME_MISMATCH",
       sum(CASE WHEN no_biometric       THEN 1 ELSE 0 END) AS "NO_BIOMETRIC",
       sum(CASE WHEN otp_phone_mismatch THEN 1 ELSE 0 END) AS "OTP_PHONE_MISMATCH",
       sum(CASE WHEN otp_phone_missing  THEN 1 ELSE 0 END) AS "OTP_PHONE_MISSING"
FROM account_flags
GROUP BY bank
ORDER BY bank
