-- Step 10: every subscriber row and every account row as one "holder" row, so
-- identity resolution (step 30) is written, and run, once for both.
--
-- Inputs (curated at ingest: trimmed, phones normalised, names folded to
-- name_key, id_type upper-case, type/status lower-case):
--   subscribers: the extracts of every carrier used for the run
--   accounts:    the extracts of every bank used for the run
-- kind 'S' = subscriber row (key = msisdn), 'A' = account row (key = account_number).
CREATE VIEW holders AS
SELECT 'S'                         AS kind,
       carrier                     AS source,
       row_id,
       msisdn                      AS key,
       subscriber_type             AS holder_type,
       id_type,
       id_number,
       id_number_masked,
       name_key,
       date_of_birth,
       activated_on                AS since,
       status,
       CAST(NULL AS BOOLEAN)       AS otp_present,
       CAST(NULL AS VARCHAR)       AS otp_msisdn,
       biometric_verified,         -- §7: null for a version-1 extract
       owner_confirmation          -- §7: null for a version-1 extract
FROM subscribers
UNION ALL
SELECT 'A'                         AS kind,
       bank                        AS source,
       row_id,
       account_number              AS key,
       holder_type,
       id_type,
       id_number,
       id_number_masked,
       name_key,
       date_of_birth,
       opened_on                   AS since,
       status,
       otp_present,
       otp_msisdn,
       biometric_verified,
       CAST(NULL AS VARCHAR)       AS owner_confirmation
FROM accounts
