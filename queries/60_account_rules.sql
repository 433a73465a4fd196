-- Step 60: the account-only rules over the materialised `resolved` table,
-- run once per person bucket ${BUCKET} of ${BUCKETS} (step 35): a phone and
-- an account of one person are in the same bucket, so the phones held as a
-- hash table are those of 1/${BUCKETS} of the persons. DUPLICATE_ACCOUNT
-- compares rows of different persons: the repeated numbers come from step
-- 55, over all rows.
-- A phone "belongs" to a person when some subscriber row with that msisdn, in
-- any carrier's extract used for the run, is resolved to that person
-- (persons by person_row: step 20). Phones are compared as numbers: a
-- curated msisdn, and a curated otp_msisdn that is not null, is always `84`
-- and nine digits (contract §3; an otp_msisdn that does not normalise is
-- null), so equal numbers are equal phones.
CREATE OR REPLACE VIEW subscriber_phones AS
SELECT DISTINCT CAST(key AS BIGINT) AS msisdn_number, person_row
FROM resolved
WHERE kind = 'S' AND person_row IS NOT NULL AND person_bucket = ${BUCKET};

CREATE OR REPLACE VIEW account_rules AS
SELECT a.* EXCLUDE (phone_holder),
       (d.key IS NOT NULL) AS duplicate_account,

       -- OTP_PHONE_MISSING: resolved row whose otp_msisdn is null (or empty).
       (a.person_row IS NOT NULL AND NOT a.otp_present) AS otp_phone_missing,

       -- OTP_PHONE_MISMATCH: resolved row whose otp_msisdn does not normalise
       -- (otp_msisdn is then null while otp_present), or whose phone is not
       -- held by the same person at any carrier.
       (a.person_row IS NOT NULL AND a.otp_present AND a.phone_holder IS NULL) AS otp_phone_mismatch,

       -- NO_BIOMETRIC: resolved row whose biometric_verified is false.
       (a.person_row IS NOT NULL AND NOT a.biometric_verified) AS no_biometric
-- "smaller RIGHT JOIN accounts" on purpose: the engine holds the left side
-- of a join in memory as a hash table and streams the right side (two narrow
-- columns of phones and the few duplicated accounts, not every account row).
FROM duplicate_accounts d
RIGHT JOIN (
    SELECT a.*, p.person_row AS phone_holder
    FROM subscriber_phones p
    RIGHT JOIN (SELECT * FROM resolved WHERE kind = 'A' AND person_bucket = ${BUCKET}) a
            ON p.msisdn_number = CAST(a.otp_msisdn AS BIGINT)
           AND p.person_row = a.person_row
) a
       ON d.source = a.source
      AND d.key = a.key
