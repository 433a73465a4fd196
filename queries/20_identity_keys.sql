-- Step 20: the registry as lookup keys. A CCCD is looked up by person_id, a
-- CMND by legacy_id (contract §5, ID_NOT_FOUND and LEGACY_ID).
-- Input: identity (the newest accepted snapshot with as_of <= D).
-- person_row is the person's row in the snapshot (its row_id). An accepted
-- snapshot never repeats a person_id (§1), so it names one person as
-- person_id does; later steps group and join persons by it, as a number is
-- much cheaper to group and join than a 12-character text.
CREATE VIEW identity_keys AS
SELECT 'CCCD' AS key_type, person_id AS key_value, person_id, row_id AS person_row,
       name_key, date_of_birth, deceased_on
FROM identity
UNION ALL
SELECT 'CMND' AS key_type, legacy_id AS key_value, person_id, row_id AS person_row,
       name_key, date_of_birth, deceased_on
FROM identity
WHERE legacy_id IS NOT NULL
