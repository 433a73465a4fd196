-- Step 20: the registry as lookup keys. A CCCD is looked up by person_id, a
-- CMND by legacy_id (contract §5, ID_NOT_FOUND and LEGACY_ID).
-- Input: identity (the newest accepted snapshot with as_of <= D).
-- person_row is the person's row in the snapshot (its row_id). An accepted
-- snapshot never repeats a person_id (§1), so it names one person as
-- person_id does; later steps group and join persons by it, as a number is
-- much cheaper to group and join than a 12-character text.
--
-- key_number is the key as one number, which step 40 joins on (the engine
-- hashes and compares one number much faster than a type and a text): a
-- CCCD of exactly 12 digits is its value (below 10^12), a CMND of exactly
-- 9 digits 10^12 plus its value, so the two never meet. Step 40 looks up
-- only a CCCD of 12 digits or a CMND of 9 (step 30 finds any other
-- malformed), and two such texts are equal exactly when their numbers are;
-- a registry key of any other form can match no lookup, and has a null
-- key_number, which matches nothing.
CREATE VIEW identity_keys AS
SELECT 'CCCD' AS key_type, person_id AS key_value,
       CASE WHEN regexp_like(person_id, '^[0-9]{12}$') THEN CAST(person_id AS BIGINT) END AS key_number,
       person_id, row_id AS person_row,
       name_key, date_of_birth, deceased_on
FROM identity
UNION ALL
SELECT 'CMND' AS key_type, legacy_id AS key_value,
       CASE WHEN regexp_like(legacy_id, '^[0-9]{9}$') THEN 1000000000000 + CAST(legacy_id AS BIGINT) END AS key_number,
       person_id, row_id AS person_row,
       name_key, date_of_birth, deceased_on
FROM identity
WHERE legacy_id IS NOT NULL
