-- Step 75: one row per account row with its reasons, sorted ascending and
-- joined with ';' (NULL when the row is clean), for the person bucket of
-- step 60. The buckets' rows together are materialised per run as
-- `account_flags`; reports and metrics read it.
-- The source column comes last: junkrecon keeps the table's files in one
-- folder per source (bank=CODE/), so that each source's report reads
-- its own rows only.
-- The flag columns and the reasons are rendered from the one list of reason
-- codes (jobs/contract/reasons.rs): for each code of a bank's row, in code order,
-- CASE WHEN <column> THEN '<CODE>' END.
CREATE OR REPLACE VIEW account_flags_v AS
SELECT key AS account_number, row_id, holder_type, status,
       since AS opened_on, id_number_masked, in_scope,
       ${ACCOUNT_FLAG_COLUMNS},
       nullif(concat_ws(';',
           ${ACCOUNT_REASONS}), '') AS reasons,
       source AS bank
FROM account_rules
