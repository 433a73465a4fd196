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
-- The separator is ';' when the row has a flag (${ACCOUNT_ANY_FLAG} is the flag
-- columns joined with OR) and NULL when it has none: concat_ws then gives
-- NULL, the clean row's reasons, without comparing every row's text with ''
-- afterwards (nullif did, at a cost of 1.5 CPU seconds a night at 10M persons).
CREATE OR REPLACE VIEW account_flags_v AS
SELECT key AS account_number, row_id, holder_type, status,
       since AS opened_on, id_number_masked, in_scope,
       ${ACCOUNT_FLAG_COLUMNS},
       concat_ws(CASE WHEN ${ACCOUNT_ANY_FLAG} THEN ';' END,
           ${ACCOUNT_REASONS}) AS reasons,
       source AS bank
FROM account_rules
