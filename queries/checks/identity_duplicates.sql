-- Contract §1: a registry snapshot that repeats a value of a column its
-- schema file marks `unique = true` (schemas/identity.v1.toml: person_id,
-- and legacy_id where it is not null) is rejected whole. Run once per such
-- column, ${COLUMN}, in the file's column order; the first that repeats is
-- the reason. Input: identity_upload (one curated upload). Output: at most
-- one row: how many values repeat, and two row_ids holding the first
-- repeated value (positions only, never the value itself).
SELECT count(*) OVER () AS repeated_values,
       first_row,
       second_row
FROM (
    SELECT min(row_id) AS first_row, max(row_id) AS second_row
    FROM identity_upload
    WHERE ${COLUMN} IS NOT NULL
    GROUP BY ${COLUMN}
    HAVING count(*) > 1
) repeats
ORDER BY first_row
LIMIT 1
