-- Contract §1: a registry snapshot that repeats a value of a column its
-- schema file marks `unique = true` (schemas/identity.v1.toml: person_id,
-- and legacy_id where it is not null) is rejected whole. Run once per such
-- column, ${COLUMN}, in the file's column order; the first that repeats is
-- the reason. Input: identity_upload (one curated upload). Output: at most
-- one row: how many values repeat, and two row_ids holding the first
-- repeated value (positions only, never the value itself).
--
-- A value of 1 to 17 ASCII digits is grouped as a number, as the volume
-- guard does (queries/15_volume_guard.sql says why that is exact): its
-- length × 10^17 + its value, so "0123" and "123" stay apart. Any other
-- value is grouped as text, with a null number.
WITH coded AS (
    SELECT row_id,
           ${COLUMN} AS value,
           CASE WHEN ${COLUMN} >= '0' AND ${COLUMN} < ':' AND octet_length(${COLUMN}) <= 17
                THEN octet_length(${COLUMN}) * 100000000000000000 + TRY_CAST(${COLUMN} AS BIGINT)
           END AS number
    FROM identity_upload
    WHERE ${COLUMN} IS NOT NULL
)
SELECT count(*) OVER () AS repeated_values,
       first_row,
       second_row
FROM (
    SELECT min(row_id) AS first_row, max(row_id) AS second_row
    FROM coded
    GROUP BY number, CASE WHEN number IS NULL THEN value END
    HAVING count(*) > 1
) repeats
ORDER BY first_row
LIMIT 1
