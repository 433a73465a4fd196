-- Step 70: one row per subscriber row with its reasons, sorted ascending and
-- joined with ';' (NULL when the row is clean), for the person bucket of
-- step 50. The buckets' rows together are materialised per run as
-- `subscriber_flags`; reports and metrics read it.
CREATE OR REPLACE VIEW subscriber_flags_v AS
SELECT source AS carrier, key AS msisdn, row_id, holder_type AS subscriber_type, status,
       since AS activated_on, id_number_masked, in_scope,
       missing_id, malformed_id, id_not_found, legacy_id, name_mismatch, dob_mismatch,
       deceased, over_limit, duplicate_msisdn,
       nullif(concat_ws(';',
           CASE WHEN deceased         THEN 'DECEASED'         END,
           CASE WHEN dob_mismatch     THEN 'DOB_MISMATCH'     END,
           CASE WHEN duplicate_msisdn THEN 'DUPLICATE_MSISDN' END,
           CASE WHEN id_not_found     THEN 'ID_NOT_FOUND'     END,
           CASE WHEN legacy_id        THEN 'LEGACY_ID'        END,
           CASE WHEN malformed_id     THEN 'MALFORMED_ID'     END,
           CASE WHEN missing_id       THEN 'MISSING_ID'       END,
           CASE WHEN name_mismatch    THEN 'NAME_MISMATCH'    END,
           CASE WHEN over_limit       THEN 'OVER_LIMIT'       END), '') AS reasons
FROM subscriber_rules
