//! The one date type of junkrecon: a night D, or an upload's `as_of`,
//! written exactly `YYYY-MM-DD` (ten ASCII characters, a real calendar
//! date; see [`parse_date`]). The CLI, the HTTP query, the
//! service's clock, folder names and manifests all turn text into a
//! [`NightDate`] at the edge, and it travels as one down to the SQL
//! parameters and the store keys, so a date is parsed once and compared as
//! a date. Never holds anything but a date.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A night's date (or an extract's `as_of`), strict `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NightDate(NaiveDate);

impl NightDate {
    /// The night of a calendar day.
    pub fn from_date(d: NaiveDate) -> NightDate {
        NightDate(d)
    }

    /// The calendar day.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// Days from `earlier` to this night (negative when `earlier` is later).
    pub fn days_since(self, earlier: NightDate) -> i64 {
        (self.0 - earlier.0).num_days()
    }

    /// Days since 1970-01-01, as Arrow's `Date32` counts them.
    pub fn epoch_days(self) -> i32 {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        (self.0 - epoch).num_days() as i32
    }

    /// The night `days` later (earlier when negative).
    pub fn plus_days(self, days: i64) -> NightDate {
        NightDate(self.0 + chrono::Duration::days(days))
    }

    /// The text form, `YYYY-MM-DD`.
    pub fn text(self) -> String {
        self.to_string()
    }
}

/// Parses a strict `YYYY-MM-DD` date (see [`crate::manifest::is_date`]); the error is one
/// line saying what was expected and what was found (escaped).
pub fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shaped
        .then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not a calendar date written YYYY-MM-DD"))
}

impl FromStr for NightDate {
    type Err = String;

    /// Strict `YYYY-MM-DD`; the error says what was expected and found.
    fn from_str(s: &str) -> Result<NightDate, String> {
        parse_date(s).map(NightDate)
    }
}

impl fmt::Display for NightDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for NightDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NightDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NightDate, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<&str> for NightDate {
    /// Equal when `other` is this date written `YYYY-MM-DD`.
    fn eq(&self, other: &&str) -> bool {
        other.parse::<NightDate>().is_ok_and(|d| d == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strict_dates_parse_and_they_print_as_sent() {
        let d: NightDate = "2024-02-29".parse().unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        for bad in [
            "2026-02-29",
            "2026-1-01",
            " 2026-11-02",
            "2026-11-02 ",
            "20261102",
        ] {
            let e = bad.parse::<NightDate>().unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{e}");
        }
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"2024-02-29\"");
        assert_eq!(serde_json::from_str::<NightDate>(&json).unwrap(), d);
        assert!(serde_json::from_str::<NightDate>("\"2024-2-29\"").is_err());
    }

    #[test]
    fn nights_compare_and_count_as_dates() {
        let a: NightDate = "2026-12-31".parse().unwrap();
        let b: NightDate = "2027-01-01".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.days_since(a), 1);
        assert_eq!(a.plus_days(1), b);
        assert_eq!("1970-01-02".parse::<NightDate>().unwrap().epoch_days(), 1);
    }
}
