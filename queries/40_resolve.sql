-- Step 40: identity resolution against the registry (contract §5). A row that
-- got none of MISSING_ID, MALFORMED_ID, ID_NOT_FOUND is resolved to a registry
-- person (person_row, the person's row in the snapshot: step 20, not null)
-- and checked further. ${AS_OF} is D.
-- Run once per key bucket ${BUCKET} of ${BUCKETS} (step 35); the buckets'
-- rows together are materialised as table `resolved`.
CREATE OR REPLACE VIEW resolve AS
SELECT c.source, c.row_id, c.key, c.holder_type, c.id_number_masked, c.since, c.status,
       c.otp_present, c.otp_msisdn, c.biometric_verified, c.owner_confirmation, c.in_scope,
       c.missing_id,
       c.malformed_id,

       -- ID_NOT_FOUND: well-formed, but no registry row has person_id = id (CCCD)
       -- or legacy_id = id (CMND).
       (c.lookup_type IS NOT NULL AND k.person_row IS NULL) AS id_not_found,

       k.person_row,

       -- LEGACY_ID: a CMND found through legacy_id; the record must be updated.
       (k.person_row IS NOT NULL AND c.id_type = 'CMND') AS legacy_id,

       -- NAME_MISMATCH: full_name null, or its folded form differs from the registry's.
       (k.person_row IS NOT NULL AND (c.name_key IS NULL OR c.name_key <> k.name_key)) AS name_mismatch,

       -- DOB_MISMATCH: date_of_birth null or different from the registry's.
       (k.person_row IS NOT NULL AND (c.date_of_birth IS NULL OR c.date_of_birth <> k.date_of_birth)) AS dob_mismatch,

       -- DECEASED: the registry's deceased_on is not null and <= D.
       (k.person_row IS NOT NULL AND k.deceased_on IS NOT NULL AND k.deceased_on <= DATE '${AS_OF}') AS deceased,

       -- The bucket of the person, for steps 50 and 60: its row modulo
       -- ${BUCKETS} (rows are numbered in order, so buckets come out even; 0
       -- for a row resolved to nobody).
       CASE WHEN ${BUCKETS} = 1 THEN 0 ELSE coalesce(k.person_row, 0) % ${BUCKETS} END AS person_bucket,

       -- 'S' subscriber row, 'A' account row. Last, after person_bucket:
       -- `resolved` is stored split by these two (one folder per bucket,
       -- then per kind), and a split's columns come last.
       c.kind
-- "registry keys RIGHT JOIN holders": the engine holds the left side of a
-- join in memory as a hash table and streams the right side, so the narrow
-- registry keys are held and the (larger) holder rows stream past them.
FROM (SELECT * FROM identity_keys_by_bucket WHERE bucket = ${BUCKET}) k
RIGHT JOIN (
    SELECT h.*,
           CASE WHEN in_scope AND NOT missing_id AND NOT malformed_id THEN id_type END AS lookup_type
    FROM id_checks_by_bucket h
    WHERE bucket = ${BUCKET}
) c
-- The key as one number (step 20's key_number): a well-formed CCCD is 12
-- digits (its number is step 30's cccd_number), a well-formed CMND 9, so the
-- cast below never fails.
       ON k.key_number = CASE c.lookup_type
                             WHEN 'CCCD' THEN c.cccd_number
                             WHEN 'CMND' THEN 1000000000000 + CAST(c.id_number AS BIGINT)
                         END
