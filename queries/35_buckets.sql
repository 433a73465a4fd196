-- Step 35: key buckets. Under a memory limit, the steps whose hash tables
-- would hold a national-size table run bucket by bucket: step 40 (holders
-- with the registry's keys, by ID number), and steps 50 (the lines of each
-- person, for OVER_LIMIT) and 60 (accounts with the phones of subscribers),
-- by person. Both sides of a join are split by the same function of the
-- join key, so equal keys always meet in the same bucket, and each bucket's
-- hash table holds 1/${BUCKETS} of the whole.
--
-- The function of the two views below (the key buckets of step 40): the
-- key's last six characters read as a number, modulo ${BUCKETS}; 0 when
-- they are not digits (such a key matches nothing it could miss: both
-- sides of the join use the same function). ID numbers end
-- in a serial number, so buckets come out even. With ${BUCKETS} = 1 every
-- row is in bucket 0 and each step runs once, over everything (written as
-- a CASE so that the engine folds it to the constant 0, and drops the
-- bucket filters of later steps, instead of computing it for every row).
-- The person buckets of steps 50 and 60 are numbered by step 40 from the
-- person's registry row instead (person_bucket).
--
-- When the run is split (${BUCKETS} > 1), the two views below are first
-- written to the run's work folder split by bucket (one folder per bucket),
-- so that a bucket reads only its own rows.
CREATE VIEW id_checks_by_bucket AS
SELECT *,
       CASE WHEN ${BUCKETS} = 1 THEN 0
            ELSE abs(coalesce(try_cast(right(id_number, 6) AS BIGINT), 0)) % ${BUCKETS} END AS bucket
FROM id_checks;

CREATE VIEW identity_keys_by_bucket AS
SELECT *,
       CASE WHEN ${BUCKETS} = 1 THEN 0
            ELSE abs(coalesce(try_cast(right(key_value, 6) AS BIGINT), 0)) % ${BUCKETS} END AS bucket
FROM identity_keys
