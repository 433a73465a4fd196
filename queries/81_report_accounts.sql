-- Step 81: one bank's report (contract §6), reviewed by the State Bank: that
-- bank's flagged rows only, and nothing from the registry. ${SOURCE} is the bank code.
SELECT account_number,
       string_to_array(reasons, ';') AS reasons,
       holder_type,
       status,
       opened_on,
       id_number_masked,
       reasons AS reasons_csv
FROM account_flags
WHERE bank = '${SOURCE}' AND reasons IS NOT NULL
ORDER BY account_number, row_id
