-- Step 80: one carrier's report (contract §6): that carrier's flagged rows
-- only, and nothing from the registry. ${SOURCE} is the carrier code.
-- `reasons` is the List<Utf8> of the Parquet report; `reasons_csv` the
-- ';'-joined form written to flags.csv.
SELECT msisdn,
       string_to_array(reasons, ';') AS reasons,
       subscriber_type,
       status,
       activated_on,
       id_number_masked,
       reasons AS reasons_csv
FROM subscriber_flags
WHERE carrier = '${SOURCE}' AND reasons IS NOT NULL
ORDER BY msisdn, row_id
