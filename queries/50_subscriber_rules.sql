-- Step 50: the subscriber-only rules over the materialised `resolved` table,
-- run once per person bucket ${BUCKET} of ${BUCKETS} (step 35): all rows of
-- a person are in one bucket, so OVER_LIMIT ranks the lines of 1/${BUCKETS}
-- of the persons at a time. DUPLICATE_MSISDN compares rows of different
-- persons: the repeated numbers come from step 55, over all rows.
-- Both rules are written as aggregations joined back to the rows, not as
-- window functions over every row: only the few persons above the limit are
-- ranked, and only repeated numbers are kept, which keeps the work linear.

-- The subscriber rows of this bucket (rows resolved to nobody are in bucket 0).
CREATE OR REPLACE VIEW bucket_lines AS
SELECT *
FROM resolved
WHERE kind = 'S' AND person_bucket = ${BUCKET};

-- OVER_LIMIT (persons by person_row: step 20): the person holds more than
-- ${MAX_SUBSCRIPTIONS_PER_PERSON} resolved rows across all carriers; that
-- person's rows ranked by activated_on, carrier, msisdn (then row position,
-- for exact ties) after the limit get it.
CREATE OR REPLACE VIEW over_limit_lines AS
SELECT source, row_id
FROM (
    SELECT r.source, r.row_id,
           ROW_NUMBER() OVER (PARTITION BY r.person_row
                              ORDER BY r.since, r.source, r.key, r.row_id) AS line_rank
    FROM (
        SELECT person_row
        FROM bucket_lines
        WHERE person_row IS NOT NULL
        GROUP BY person_row
        HAVING count(*) > ${MAX_SUBSCRIPTIONS_PER_PERSON}
    ) heavy
    JOIN bucket_lines r ON r.person_row = heavy.person_row
) ranked
WHERE line_rank > ${MAX_SUBSCRIPTIONS_PER_PERSON};

CREATE OR REPLACE VIEW subscriber_rules AS
SELECT r.* EXCLUDE (over_limit_row),
       (r.over_limit_row IS NOT NULL) AS over_limit,
       -- DUPLICATE_MSISDN: the msisdn is in more than one row across all
       -- carriers (the repeated numbers, as numbers: step 55).
       (d.msisdn_number IS NOT NULL) AS duplicate_msisdn,
       -- NO_BIOMETRIC (§7): resolved, and biometric_verified is false (null,
       -- not checked yet or a version-1 extract, is not flagged).
       coalesce(r.person_row IS NOT NULL AND NOT r.biometric_verified, false) AS no_biometric,
       -- OWNER_DENIED (§7): in scope, resolved or not, and the registered
       -- owner answered through VNeID that the number is not theirs.
       coalesce(r.in_scope AND r.owner_confirmation = 'denied', false) AS owner_denied
-- Written as "small RIGHT JOIN big" on purpose: the engine builds its hash
-- table from the left side and streams the right one, and a hash table is
-- held in memory whole. The left sides here are the few lines over the limit
-- and the few duplicated numbers; the subscriber rows stream past them.
FROM duplicate_msisdns d
RIGHT JOIN (
    SELECT r.*, o.row_id AS over_limit_row
    FROM over_limit_lines o
    RIGHT JOIN bucket_lines r
            ON o.source = r.source AND o.row_id = r.row_id
) r
       ON d.msisdn_number = CAST(r.key AS BIGINT)
