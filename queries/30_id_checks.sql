-- Step 30: structural ID checks of in-scope rows (contract §5). Only rows of
-- type 'individual' are in scope; foreigner and organization rows get only the
-- duplicate reasons. ${AS_OF_YEAR} is the year of the run date D.
CREATE VIEW id_checks AS
SELECT h.*,
       h.holder_type = 'individual' AS in_scope,

       -- MISSING_ID: id_type or id_number is null.
       (h.holder_type = 'individual' AND (h.id_type IS NULL OR h.id_number IS NULL)) AS missing_id,

       -- MALFORMED_ID: CCCD not 12 digits, or first 3 digits not a province code
       -- of Appendix A, or 4th digit not 0-3, or the birth year it encodes
       -- (4th digit 0/1 -> 19xx, 2/3 -> 20xx; digits 5-6 -> xx) after D;
       -- CMND not 9 digits; PASSPORT, BRN or any other id_type.
       (h.holder_type = 'individual' AND h.id_type IS NOT NULL AND h.id_number IS NOT NULL AND NOT (
           CASE h.id_type
             WHEN 'CCCD' THEN
                   -- 12 digits (cccd_number below is not null), read as the
                   -- number n = cccd_number, whose digits are sliced by
                   -- arithmetic (cheaper than cutting strings):
                   h.cccd_number IS NOT NULL
                   -- digits 1-3 (n / 10^9): a province code of Appendix A
               AND h.cccd_number / 1000000000 IN (
                   001,002,004,006,008,010,011,012,014,015,017,019,
                   020,022,024,025,026,027,030,031,033,034,035,036,
                   037,038,040,042,044,045,046,048,049,051,052,054,
                   056,058,060,062,064,066,067,068,070,072,074,075,
                   077,079,080,082,083,084,086,087,089,091,092,093,
                   094,095,096)
                   -- digit 4 (n / 10^8 mod 10): 0-3
               AND h.cccd_number / 100000000 % 10 <= 3
                   -- the birth year: 19xx for a 4th digit 0/1, 20xx for 2/3,
                   -- xx = digits 5-6 (n / 10^6 mod 100); not after D's year
               AND CASE WHEN h.cccd_number / 100000000 % 10 <= 1 THEN 1900 ELSE 2000 END
                   + h.cccd_number / 1000000 % 100 <= ${AS_OF_YEAR}
             WHEN 'CMND' THEN regexp_like(h.id_number, '^[0-9]{9}$')
             ELSE FALSE
           END)) AS malformed_id
FROM (
    -- A CCCD of exactly 12 digits as a number (NULL otherwise), for the checks
    -- above and for step 40's lookup of a well-formed CCCD.
    SELECT *,
           CASE WHEN id_type = 'CCCD' AND regexp_like(id_number, '^[0-9]{12}$')
                THEN CAST(id_number AS BIGINT) END AS cccd_number
    FROM holders
) h
