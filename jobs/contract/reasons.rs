//! The one list of reason codes (contract §5): each code, the boolean
//! column of steps 50/60 that carries it, and the extracts it applies to;
//! and the enforcement actions of each extract (§9), whose counts step 97
//! is rendered with.
//! Steps 70/75 (a row's `reasons`) and 90/91 (`flags_by_reason`) are
//! rendered from this list, and publish reports every code of an extract,
//! so a code is written here and in the one SQL rule that decides it, and
//! nowhere else. Plain data: it must never decide a rule.

use std::collections::BTreeMap;

use crate::schema::Extract;

/// One reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    /// The code, as reports and metrics show it.
    pub code: &'static str,
    /// The boolean column of `subscriber_rules` / `account_rules` that is
    /// true on a row carrying it.
    pub column: &'static str,
    /// Whether a carrier's row can carry it.
    pub subscribers: bool,
    /// Whether a bank's row can carry it.
    pub accounts: bool,
}

const fn both(code: &'static str, column: &'static str) -> Reason {
    Reason {
        code,
        column,
        subscribers: true,
        accounts: true,
    }
}

const fn only(extract: Extract, code: &'static str, column: &'static str) -> Reason {
    Reason {
        code,
        column,
        subscribers: matches!(extract, Extract::Subscribers),
        accounts: matches!(extract, Extract::Accounts),
    }
}

/// Every reason code, in the order the flag tables hold their columns.
pub const REASONS: &[Reason] = &[
    both("MISSING_ID", "missing_id"),
    both("MALFORMED_ID", "malformed_id"),
    both("ID_NOT_FOUND", "id_not_found"),
    both("LEGACY_ID", "legacy_id"),
    both("NAME_MISMATCH", "name_mismatch"),
    both("DOB_MISMATCH", "dob_mismatch"),
    both("DECEASED", "deceased"),
    only(Extract::Subscribers, "OVER_LIMIT", "over_limit"),
    only(Extract::Subscribers, "DUPLICATE_MSISDN", "duplicate_msisdn"),
    only(Extract::Subscribers, "OWNER_DENIED", "owner_denied"),
    only(Extract::Accounts, "DUPLICATE_ACCOUNT", "duplicate_account"),
    only(Extract::Accounts, "OTP_PHONE_MISSING", "otp_phone_missing"),
    only(
        Extract::Accounts,
        "OTP_PHONE_MISMATCH",
        "otp_phone_mismatch",
    ),
    // §7: for subscribers too (a version-2 extract's biometric_verified).
    both("NO_BIOMETRIC", "no_biometric"),
];

/// The reasons of `list` a row of `extract` can carry, in list order.
pub fn of(list: &[Reason], extract: Extract) -> Vec<Reason> {
    list.iter()
        .filter(|r| match extract {
            Extract::Subscribers => r.subscribers,
            Extract::Accounts => r.accounts,
            Extract::Identity => false,
        })
        .copied()
        .collect()
}

/// The codes of `extract` in ascending order (as `reasons` lists them).
pub fn codes(list: &[Reason], extract: Extract) -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = of(list, extract).iter().map(|r| r.code).collect();
    codes.sort_unstable();
    codes
}

/// The SQL parameters steps 70/75 and 90/91 are rendered with, for both
/// extracts (`SUBSCRIBER_…` and `ACCOUNT_…`):
/// - `…_FLAG_COLUMNS`: the boolean columns, comma-separated;
/// - `…_REASONS`: one `CASE WHEN column THEN 'CODE' END` per code, in code
///   order, for `concat_ws`;
/// - `…_ANY_FLAG`: the boolean columns joined with `OR` (true when the row
///   has a reason);
/// - `…_REASON_COUNTS`: one `sum(CASE WHEN column THEN 1 ELSE 0 END) AS "CODE"` per code.
pub fn sql_params(list: &[Reason]) -> BTreeMap<&'static str, String> {
    let mut p = BTreeMap::new();
    for (extract, [columns, reasons, counts, any]) in [
        (
            Extract::Subscribers,
            [
                "SUBSCRIBER_FLAG_COLUMNS",
                "SUBSCRIBER_REASONS",
                "SUBSCRIBER_REASON_COUNTS",
                "SUBSCRIBER_ANY_FLAG",
            ],
        ),
        (
            Extract::Accounts,
            [
                "ACCOUNT_FLAG_COLUMNS",
                "ACCOUNT_REASONS",
                "ACCOUNT_REASON_COUNTS",
                "ACCOUNT_ANY_FLAG",
            ],
        ),
    ] {
        let mine = of(list, extract);
        let mut by_code = mine.clone();
        by_code.sort_by_key(|r| r.code);
        let cols: Vec<&str> = mine.iter().map(|r| r.column).collect();
        p.insert(columns, cols.join(", "));
        p.insert(any, cols.join(" OR "));
        let cases: Vec<String> = by_code
            .iter()
            .map(|r| format!("CASE WHEN {} THEN '{}' END", r.column, r.code))
            .collect();
        p.insert(reasons, cases.join(",\n           "));
        let sums: Vec<String> = by_code
            .iter()
            .map(|r| {
                format!(
                    "sum(CASE WHEN {} THEN 1 ELSE 0 END) AS \"{}\"",
                    r.column, r.code
                )
            })
            .collect();
        p.insert(counts, sums.join(",\n       "));
    }
    p
}

/// The actions of the enforcement timeline (contract §9) of `extract`, in
/// the order they become due (identity has none).
pub fn actions(extract: Extract) -> &'static [&'static str] {
    match extract {
        Extract::Subscribers => &["NOTIFY", "LOCK_ONE_WAY", "LOCK_TWO_WAY", "TERMINATE"],
        Extract::Accounts => &["NOTIFY", "SUSPEND"],
        Extract::Identity => &[],
    }
}

/// `ACTION_SUMS` of step 97: one `sum(CASE WHEN required_action = 'A' THEN 1 ELSE 0 END) AS "A"`
/// per action of `extract`.
pub fn action_sums(extract: Extract) -> String {
    actions(extract)
        .iter()
        .map(|a| format!("sum(CASE WHEN required_action = '{a}' THEN 1 ELSE 0 END) AS \"{a}\""))
        .collect::<Vec<_>>()
        .join(",\n           ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_columns_are_unique_and_named_alike() {
        let mut all: Vec<&str> = REASONS.iter().map(|r| r.code).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), REASONS.len());
        for r in REASONS {
            assert_eq!(r.code.to_lowercase(), r.column, "{r:?}");
            assert!(r.subscribers || r.accounts, "{r:?}");
        }
        assert_eq!(codes(REASONS, Extract::Subscribers).len(), 11);
        assert_eq!(codes(REASONS, Extract::Accounts).len(), 11);
    }
}
