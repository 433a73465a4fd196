-- Step 75: one row per account row with its reasons, sorted ascending and
-- joined with ';' (NULL when the row is clean), for the person bucket of
-- step 60. The buckets' rows together are materialised per run as
-- `account_flags`; reports and metrics read it.
CREATE OR REPLACE VIEW account_flags_v AS
SELECT source AS bank, key AS account_number, row_id, holder_type, status,
       since AS opened_on, id_number_masked, in_scope,
       missing_id, malformed_id, id_not_found, legacy_id, name_mismatch, dob_mismatch,
       deceased, duplicate_account, otp_phone_missing, otp_phone_mismatch, no_biometric,
       nullif(concat_ws(';',
           CASE WHEN deceased           THEN 'DECEASED'           END,
           CASE WHEN dob_mismatch       THEN 'DOB_MISMATCH'       END,
           CASE WHEN duplicate_account  THEN 'DUPLICATE_ACCOUNT'  END,
           CASE WHEN id_not_found       THEN 'ID_NOT_FOUND'       END,
           CASE WHEN legacy_id          THEN 'LEGACY_ID'          END,
           CASE WHEN malformed_id       THEN 'MALFORMED_ID'       END,
           CASE WHEN missing_id         THEN 'MISSING_ID'         END,
           CASE WHEN name_mismatch      THEN 'NAME_MISMATCH'      END,
           CASE WHEN no_biometric       THEN 'NO_BIOMETRIC'       END,
           CASE WHEN otp_phone_mismatch THEN 'OTP_PHONE_MISMATCH' END,
           CASE WHEN otp_phone_missing  THEN 'OTP_PHONE_MISSING'  END), '') AS reasons
FROM account_rules
