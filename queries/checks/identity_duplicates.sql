-- Contract §1: a registry snapshot that repeats a person_id, or a non-null
-- legacy_id, is rejected whole. Input: identity_upload (one curated upload).
-- Output: at most one row per column: how many values repeat, and two row_ids
-- holding the first repeated value (positions only, never the value itself).
SELECT * FROM (
    SELECT 'person_id' AS column_name,
           count(*) OVER () AS repeated_values,
           first_row,
           second_row
    FROM (
        SELECT min(row_id) AS first_row, max(row_id) AS second_row
        FROM identity_upload
        GROUP BY person_id
        HAVING count(*) > 1
    ) p
    ORDER BY first_row
    LIMIT 1
) person_repeats
UNION ALL
SELECT * FROM (
    SELECT 'legacy_id' AS column_name,
           count(*) OVER () AS repeated_values,
           first_row,
           second_row
    FROM (
        SELECT min(row_id) AS first_row, max(row_id) AS second_row
        FROM identity_upload
        WHERE legacy_id IS NOT NULL
        GROUP BY legacy_id
        HAVING count(*) > 1
    ) l
    ORDER BY first_row
    LIMIT 1
) legacy_repeats
