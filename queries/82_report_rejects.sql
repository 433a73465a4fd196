-- Step 82: the row-level rejects (contract §3) of every extract used for the
-- run: positions and reasons only, never the rejected values.
SELECT extract, source, as_of, file, row_number, reason, "column"
FROM rejects
ORDER BY extract, source, file, row_number
