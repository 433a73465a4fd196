-- Step 15: the volume guard (contract §8), run at ingest for one valid
-- upload of ${EXTRACT} ${SOURCE}, before it is recorded as accepted.
--
-- Inputs (curated: keys normalised, row-level rejects already left out):
--   reference_rows  the accepted rows of the reference extract: the source's
--                   accepted (not held) extract with the newest as_of older
--                   than the upload's;
--   upload_rows     the upload's accepted rows;
--   flagged_keys    the keys of the source's report of the newest published
--                   night (empty for the registry, which has no reports):
--                   records the source was told to clean up may go.
-- ${ROW_KEY} is the key of a row (${REPORT_KEY} of a reported one): the
-- column msisdn, account_number or person_id.
--
-- A key of 1 to 17 ASCII digits is grouped as a number, the engine groups
-- numbers much faster than text: its length × 10^17 + its value, so "0123"
-- and "123" stay apart. A key starts with a digit when key >= '0' AND
-- key < ':' (the next character after '9'); the cast then reads digits to
-- the end or gives null (a sign is accepted only in first place). Curated
-- keys never end in white space (ingest trims them), which the cast would
-- skip. Every other key is grouped as text, with a null number.
--
-- lost_keys: keys of the reference that are neither among the upload's
-- accepted rows nor flagged. The upload is held when lost_keys is more than
-- reference_keys × max_shrink_pct / 100 (decided by the caller, which also
-- holds an upload with no accepted row at all).
--
-- One pass: every key of the three inputs is grouped once, marked with
-- whether the reference has it and whether the upload or the report keeps
-- it (one aggregation instead of a DISTINCT and two EXCEPTs, each of which
-- built a hash table of the whole extract).
WITH all_keys AS (
    SELECT ${ROW_KEY} AS key, 1 AS in_reference, 0 AS kept FROM reference_rows
    UNION ALL
    SELECT ${ROW_KEY} AS key, 0 AS in_reference, 1 AS kept FROM upload_rows
    UNION ALL
    SELECT ${REPORT_KEY} AS key, 0 AS in_reference, 1 AS kept FROM flagged_keys
),
coded AS (
    SELECT CASE WHEN key >= '0' AND key < ':' AND octet_length(key) <= 17
                THEN octet_length(key) * 100000000000000000 + TRY_CAST(key AS BIGINT)
           END AS number,
           key, in_reference, kept
    FROM all_keys
),
per_key AS (
    SELECT max(in_reference) AS in_reference, max(kept) AS kept
    FROM coded
    GROUP BY number, CASE WHEN number IS NULL THEN key END
)
SELECT coalesce(sum(in_reference), 0)                                          AS reference_keys,
       coalesce(sum(CASE WHEN in_reference = 1 AND kept = 0 THEN 1 ELSE 0 END), 0) AS lost_keys
FROM per_key
