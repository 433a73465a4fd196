-- Step 55: DUPLICATE_ACCOUNT: the account_number is in more than one row of
-- one bank's extract. Over every account row (the rows of one number may
-- belong to different persons, so this is not split by bucket); only the
-- repeated numbers are kept, materialised per run as `duplicate_accounts`.
CREATE OR REPLACE VIEW duplicate_accounts_v AS
SELECT source, key
FROM resolved
WHERE kind = 'A'
GROUP BY source, key
HAVING count(*) > 1
