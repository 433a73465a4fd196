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
-- ${KEY} is the key column: msisdn, account_number, or person_id.
--
-- lost_keys: keys of the reference that are neither among the upload's
-- accepted rows nor flagged. The upload is held when lost_keys is more than
-- reference_keys × max_shrink_pct / 100 (decided by the caller, which also
-- holds an upload with no accepted row at all).
WITH reference AS (
    SELECT DISTINCT ${KEY} AS key FROM reference_rows
),
lost AS (
    SELECT key FROM reference
    EXCEPT
    SELECT ${KEY} AS key FROM upload_rows
    EXCEPT
    SELECT key FROM flagged_keys
)
SELECT r.reference_keys, l.lost_keys
FROM (SELECT count(*) AS reference_keys FROM reference) r
CROSS JOIN (SELECT count(*) AS lost_keys FROM lost) l
