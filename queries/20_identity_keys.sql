-- Step 20: the registry as lookup keys. A CCCD is looked up by person_id, a
-- CMND by legacy_id (contract §5, ID_NOT_FOUND and LEGACY_ID).
-- Input: identity (the newest accepted snapshot with as_of <= D).
CREATE VIEW identity_keys AS
SELECT 'CCCD' AS key_type, person_id AS key_value, person_id, name_key, date_of_birth, deceased_on
FROM identity
UNION ALL
SELECT 'CMND' AS key_type, legacy_id AS key_value, person_id, name_key, date_of_birth, deceased_on
FROM identity
WHERE legacy_id IS NOT NULL
