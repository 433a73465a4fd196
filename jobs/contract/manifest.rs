//! `_MANIFEST.json` (contract §1): its parsing, and its agreement with the
//! landing folder it sits in. Pure functions over bytes and paths; it never
//! reads the data files and never writes anything.

use serde::{Deserialize, Serialize};

use crate::display::excerpt;
use crate::night::NightDate;
use crate::schema::Extract;

/// File name of the manifest, written last by the sender.
pub const MANIFEST: &str = "_MANIFEST.json";

/// A landing folder that may hold an upload: `landing/<extract>/[<dir>=<source>/]date=<D>/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UploadKey {
    /// Extract kind.
    pub extract: Extract,
    /// Source code (`NATIONAL` for identity).
    pub source: String,
    /// Date from the path.
    pub as_of: NightDate,
}

impl UploadKey {
    /// The landing folder of this key, relative to the root, with a trailing slash.
    pub fn landing_dir(&self) -> String {
        match self.extract.source_dir() {
            None => format!("landing/{}/date={}/", self.extract, self.as_of),
            Some(d) => format!(
                "landing/{}/{}={}/date={}/",
                self.extract, d, self.source, self.as_of
            ),
        }
    }

    /// Short label used in messages: `subscribers/VIETTEL/2026-11-28`.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.extract, self.source, self.as_of)
    }
}

/// One file entry of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// File name inside the upload folder.
    pub name: String,
    /// Number of rows the sender says the file holds.
    pub rows: u64,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
}

/// A parsed manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// `identity`, `subscribers` or `accounts`.
    pub extract: String,
    /// Source code.
    pub source: String,
    /// Extract date.
    pub as_of: String,
    /// Contract version of the files.
    pub schema_version: u32,
    /// The data files, at least one.
    pub files: Vec<ManifestFile>,
}

/// Whether a source code is one the contract allows (`^[A-Z0-9_]{2,16}$`).
pub fn is_source_code(s: &str) -> bool {
    (2..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The source code of a landing folder named `<dir>=<CODE>` (`carrier=VIETTEL`),
/// or `None` when the name is anything else.
pub fn source_folder<'a>(dir: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(dir)?
        .strip_prefix('=')
        .filter(|code| is_source_code(code))
}

/// The date of a landing folder named `date=YYYY-MM-DD` (strict, see
/// [`is_date`]), or `None` when the name is anything else.
pub fn date_folder(name: &str) -> Option<NightDate> {
    name.strip_prefix("date=")?.parse().ok()
}

/// Whether `s` is a real calendar date written exactly `YYYY-MM-DD`: ten
/// ASCII characters, four-digit year, two-digit month and day, no sign, no
/// white space. With this shape, text order is date order, so dates checked
/// here may be compared as strings.
pub fn is_date(s: &str) -> bool {
    parse_date(s).is_ok()
}

pub use crate::night::parse_date;

/// The characters an upload's file name may hold: ASCII letters, digits,
/// `.`, `_` and `-`, starting with a letter, digit or `_`, at most 255 bytes.
/// Every store (local file systems, S3) keeps such a name as it is, so the
/// name in the manifest is the name in the folder.
pub const FILE_NAME_RULE: &str =
    "1 to 255 characters from A-Z a-z 0-9 . _ -, not starting with . or -";

/// Why a manifest's file name is not allowed (see [`FILE_NAME_RULE`]), if it is not.
pub fn file_name_problem(name: &str) -> Option<String> {
    let ok = (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with(['.', '-'])
        && name != MANIFEST;
    (!ok).then(|| {
        format!(
            "{MANIFEST}: file name \"{}\" ({} bytes) is not allowed: a file name is {FILE_NAME_RULE}, and not {MANIFEST}",
            excerpt(name, 80),
            name.len()
        )
    })
}

/// Parses manifest bytes and checks them against the folder they were found in.
/// The error is the rejection reason, naming the field, expected versus found.
pub fn parse_and_check(bytes: &[u8], key: &UploadKey) -> Result<Manifest, String> {
    // serde's message quotes the offending value: cut, like every value quoted here.
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{MANIFEST} is not a valid manifest: {}",
            excerpt(&e.to_string(), 200)
        )
    })?;
    let expect = |field: &str, found: &str, want: &str| -> Result<(), String> {
        if found == want {
            Ok(())
        } else {
            Err(format!(
                "{MANIFEST}: {field} is \"{}\", the folder says \"{want}\"",
                excerpt(found, 80)
            ))
        }
    };
    expect("extract", &m.extract, key.extract.as_str())?;
    expect("source", &m.source, &key.source)?;
    expect("as_of", &m.as_of, &key.as_of.text())?;
    if !matches!(m.schema_version, 1 | 2) {
        return Err(format!(
            "{MANIFEST}: schema_version is {}, the contract has versions 1 and 2",
            m.schema_version
        ));
    }
    if m.files.is_empty() {
        return Err(format!("{MANIFEST}: lists no files"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in &m.files {
        if let Some(problem) = file_name_problem(&f.name) {
            return Err(problem);
        }
        if !seen.insert(f.name.as_str()) {
            return Err(format!("{MANIFEST}: file {} is listed twice", f.name));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{MANIFEST}: sha256 of {} is not 64 hex digits",
                f.name
            ));
        }
    }
    if m.files
        .iter()
        .try_fold(0u64, |n, f| n.checked_add(f.rows))
        .is_none()
    {
        return Err(format!(
            "{MANIFEST}: the row counts add up to more than {}",
            u64::MAX
        ));
    }
    if m.files.iter().all(|f| f.rows == 0) {
        return Err(format!("{MANIFEST}: the upload has no rows"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> UploadKey {
        UploadKey {
            extract: Extract::Subscribers,
            source: "VIETTEL".into(),
            as_of: "2026-11-28".parse().unwrap(),
        }
    }

    fn manifest(extract: &str, source: &str, as_of: &str, files: &str) -> Vec<u8> {
        format!(
            r#"{{"extract":"{extract}","source":"{source}","as_of":"{as_of}","schema_version":1,"files":{files}}}"#
        )
        .into_bytes()
    }

    const ONE: &str = r#"[{"name":"part-0.parquet","rows":3,"sha256":"6d85b2ddda4905bffd1de6465213729bb6efde756a8a8cf807f543f66b72a358"}]"#;

    #[test]
    fn agreeing_manifest_parses() {
        let m = parse_and_check(
            &manifest("subscribers", "VIETTEL", "2026-11-28", ONE),
            &key(),
        )
        .unwrap();
        assert_eq!(m.files.len(), 1);
    }

    #[test]
    fn disagreement_names_field() {
        let e = parse_and_check(&manifest("accounts", "VIETTEL", "2026-11-28", ONE), &key())
            .unwrap_err();
        assert!(
            e.contains("extract is \"accounts\", the folder says \"subscribers\""),
            "{e}"
        );
        let e = parse_and_check(
            &manifest("subscribers", "MOBIFONE", "2026-11-28", ONE),
            &key(),
        )
        .unwrap_err();
        assert!(e.contains("source"), "{e}");
        let e = parse_and_check(
            &manifest("subscribers", "VIETTEL", "2026-11-27", ONE),
            &key(),
        )
        .unwrap_err();
        assert!(e.contains("as_of"), "{e}");
    }

    #[test]
    fn empty_and_unsafe_file_lists_rejected() {
        let e = parse_and_check(
            &manifest("subscribers", "VIETTEL", "2026-11-28", "[]"),
            &key(),
        )
        .unwrap_err();
        assert!(e.contains("lists no files"));
        let bad = ONE.replace("part-0.parquet", "../x.parquet");
        let e = parse_and_check(
            &manifest("subscribers", "VIETTEL", "2026-11-28", &bad),
            &key(),
        )
        .unwrap_err();
        assert!(e.contains("is not allowed"), "{e}");
        let zero = ONE.replace("\"rows\":3", "\"rows\":0");
        let e = parse_and_check(
            &manifest("subscribers", "VIETTEL", "2026-11-28", &zero),
            &key(),
        )
        .unwrap_err();
        assert!(e.contains("no rows"));
    }

    #[test]
    fn source_codes_and_dates() {
        assert!(is_source_code("VIETTEL"));
        assert!(is_source_code("A1_B"));
        assert!(!is_source_code("V"));
        assert!(!is_source_code("viettel"));
        assert!(!is_source_code("ABCDEFGHIJKLMNOPQ"));
        assert!(!is_source_code("VIET-TEL"));
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2026-02-29"));
        assert!(!is_date("2026-1-01"));
        assert!(!is_date("+2026-12-1"));
        assert!(!is_date(" 2026-11-2"));
        assert!(!is_date("2026-11-02 "));
        assert!(!is_date("２０２６-11-02"));
    }

    #[test]
    fn file_names_outside_the_rule_are_refused_with_the_rule() {
        for ok in ["part-0.parquet", "_x", "A.b-c_d", &"a".repeat(255)] {
            assert_eq!(file_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "a#b.parquet",
            "a[1].parquet",
            "a%20b.parquet",
            "dữ-liệu.parquet",
            "a b",
            "a\nb",
            ".hidden",
            "-x",
            "..",
            "",
            MANIFEST,
            &"a".repeat(256),
        ] {
            let e = file_name_problem(bad).unwrap_or_else(|| panic!("{bad:?} allowed"));
            assert!(e.contains(FILE_NAME_RULE), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let long = file_name_problem(&"x".repeat(5000)).unwrap();
        assert!(long.len() < 400, "{long}");
    }
}
