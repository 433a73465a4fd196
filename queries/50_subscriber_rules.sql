-- Step 50: the subscriber-only rules over the materialised `resolved` table.
CREATE VIEW subscriber_rules AS
SELECT r.*,
       -- OVER_LIMIT: the person holds more than ${MAX_SUBSCRIPTIONS_PER_PERSON}
       -- resolved rows across all carriers; rows ranked after the limit (by
       -- activated_on, carrier, msisdn, then row position for exact ties) get it.
       (r.person_id IS NOT NULL AND
        ROW_NUMBER() OVER (PARTITION BY r.person_id
                           ORDER BY r.since, r.source, r.key, r.row_id) > ${MAX_SUBSCRIPTIONS_PER_PERSON}
       ) AS over_limit,

       -- DUPLICATE_MSISDN: the msisdn is in more than one row across all carriers.
       (count(*) OVER (PARTITION BY r.key) > 1) AS duplicate_msisdn
FROM resolved r
WHERE r.kind = 'S'
