//! Property tests of everything a sender's bytes reach before a query does:
//! the manifest parser and checker, landing folder names, strict dates, the
//! phone, text, name and ID normalisation (contract §3), and `check` on
//! damaged Parquet files. They run in the ordinary test suite with a bounded
//! number of cases (PROPTEST_CASES raises it for a longer hunt); a failing
//! case proptest finds is kept as a named regression test at the bottom.
//!
//! Why not `cargo fuzz` in CI: libFuzzer needs a nightly compiler (this
//! project builds on stable only) and an instrumented rebuild of DataFusion,
//! which costs more of CI's 90 minutes than the whole suite.

use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

use junkrecon::manifest::{self, UploadKey};
use junkrecon::normalize;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that mixes the characters senders' data holds: ASCII, Vietnamese
/// letters in both normal forms, every kind of white space, controls,
/// combining marks, and anything else.
fn messy_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -~]{0,6}",
        Just("Nguyễn".to_string()),
        Just("Nguyễn".nfd().collect::<String>()),
        Just("Đặng đức".to_string()),
        Just("hoà hòa".to_string()),
        Just("\u{00A0}\u{2003}\u{3000}\t\n\r".to_string()),
        Just("\u{0340}\u{0341}\u{0301}\u{20DD}".to_string()),
        Just("ǰΐŉß".to_string()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn digits(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::char::range('0', '9'), n).prop_map(String::from_iter)
}

/// `s` with phone separators (spaces, dots, dashes, other white space)
/// inserted at the positions `at`.
fn with_separators(s: &str, at: &[(usize, char)]) -> String {
    let mut out: Vec<char> = s.chars().collect();
    for &(i, c) in at.iter().rev() {
        let i = i % (out.len() + 1);
        out.insert(i, c);
    }
    out.into_iter().collect()
}

fn separator() -> impl Strategy<Value = (usize, char)> {
    (
        0usize..16,
        prop_oneof![
            Just(' '),
            Just('.'),
            Just('-'),
            Just('\u{00A0}'),
            Just('\t')
        ],
    )
}

fn key() -> UploadKey {
    UploadKey {
        extract: junkrecon::schema::Extract::Subscribers,
        source: "VIETTEL".into(),
        as_of: "2026-11-28".parse().unwrap(),
    }
}

/// A manifest that agrees with [`key`], with the given file names and rows.
fn manifest_json(files: &[(String, u64)]) -> serde_json::Value {
    serde_json::json!({
        "extract": "subscribers",
        "source": "VIETTEL",
        "as_of": "2026-11-28",
        "schema_version": 1,
        "files": files.iter().map(|(name, rows)| serde_json::json!({
            "name": name, "rows": rows, "sha256": "ab".repeat(32)
        })).collect::<Vec<_>>(),
    })
}

/// A rejection reason is one line of bounded length whatever the input:
/// it goes into the ledger, logs, `status` and `sources.json`.
fn assert_one_short_line(reason: &str) {
    assert!(
        !reason.chars().any(char::is_control),
        "control character in {reason:?}"
    );
    assert!(reason.len() <= 600, "{} bytes: {reason:.200}", reason.len());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_manifest_bytes_get_an_answer_in_one_short_line(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Err(reason) = manifest::parse_and_check(&bytes, &key()) {
            assert_one_short_line(&reason);
        }
    }

    #[test]
    fn any_manifest_field_values_get_an_answer_in_one_short_line(
        extract in prop_oneof![Just("subscribers".to_string()), messy_text()],
        source in prop_oneof![Just("VIETTEL".to_string()), messy_text(), messy_text().prop_map(|s| s.repeat(900))],
        as_of in prop_oneof![Just("2026-11-28".to_string()), messy_text().prop_map(|s| s.repeat(900))],
        version in prop_oneof![Just(1u32), any::<u32>()],
        name in prop_oneof![messy_text(), "[a-z]{1,3}".prop_map(|s| s.repeat(2000))],
        rows in any::<u64>(),
        sha in messy_text(),
    ) {
        let m = serde_json::json!({
            "extract": extract, "source": source, "as_of": as_of, "schema_version": version,
            "files": [{"name": name, "rows": rows, "sha256": sha}],
        });
        if let Err(reason) = manifest::parse_and_check(m.to_string().as_bytes(), &key()) {
            assert_one_short_line(&reason);
        }
    }

    #[test]
    fn a_manifest_of_allowed_names_is_accepted_as_written(
        names in proptest::collection::btree_set("[A-Za-z0-9_][A-Za-z0-9._-]{0,40}", 1..6),
        rows in proptest::collection::vec(1u64..1_000_000, 6),
    ) {
        let files: Vec<(String, u64)> = names.into_iter().zip(rows).collect();
        let m = manifest::parse_and_check(manifest_json(&files).to_string().as_bytes(), &key()).unwrap();
        let got: Vec<(String, u64)> = m.files.iter().map(|f| (f.name.clone(), f.rows)).collect();
        prop_assert_eq!(got, files);
    }

    #[test]
    fn a_file_name_is_allowed_exactly_by_the_published_rule(name in messy_text()) {
        let rule = !name.is_empty()
            && name.len() <= 255
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
            && !name.starts_with(['.', '-'])
            && name != manifest::MANIFEST;
        match manifest::file_name_problem(&name) {
            None => prop_assert!(rule, "{name:?} allowed"),
            Some(reason) => {
                prop_assert!(!rule, "{name:?} refused");
                prop_assert!(reason.contains(manifest::FILE_NAME_RULE));
                assert_one_short_line(&reason);
            }
        }
    }

    #[test]
    fn a_date_is_exactly_ten_characters_of_a_real_day(s in prop_oneof![
        messy_text(),
        "[+ 0-9-]{8,12}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    ]) {
        let shaped = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        match manifest::parse_date(&s) {
            Ok(d) => {
                prop_assert!(shaped, "{s:?} accepted");
                prop_assert_eq!(d.format("%Y-%m-%d").to_string(), s);
            }
            Err(reason) => {
                prop_assert!(!shaped || chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_err(), "{s:?} refused");
                assert_one_short_line(&reason);
            }
        }
    }

    #[test]
    fn accepted_dates_compare_as_text_in_date_order(a in 0i32..3_650_000, b in 0i32..3_650_000) {
        let day = |n: i32| chrono::NaiveDate::from_num_days_from_ce_opt(n + 1).unwrap();
        let (da, db) = (day(a), day(b));
        let (ta, tb) = (da.format("%Y-%m-%d").to_string(), db.format("%Y-%m-%d").to_string());
        prop_assert!(manifest::is_date(&ta) && manifest::is_date(&tb));
        prop_assert_eq!(ta.cmp(&tb), da.cmp(&db));
    }

    #[test]
    fn landing_folder_names_are_read_only_in_their_one_form(name in prop_oneof![
        messy_text(),
        messy_text().prop_map(|s| format!("date={s}")),
        "[0-9-]{10}".prop_map(|s| format!("date={s}")),
        messy_text().prop_map(|s| format!("carrier={s}")),
        "[A-Z0-9_]{1,17}".prop_map(|s| format!("carrier={s}")),
    ]) {
        match manifest::date_folder(&name) {
            Some(d) => {
                prop_assert_eq!(format!("date={d}"), name.clone());
                prop_assert!(manifest::is_date(&d.to_string()));
            }
            None => prop_assert!(!name.strip_prefix("date=").is_some_and(manifest::is_date)),
        }
        match manifest::source_folder("carrier", &name) {
            Some(code) => {
                prop_assert_eq!(format!("carrier={code}"), name.clone());
                prop_assert!((2..=16).contains(&code.len()));
                prop_assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
            }
            None => prop_assert!(!name.strip_prefix("carrier=").is_some_and(manifest::is_source_code)),
        }
    }

    #[test]
    fn a_phone_normalises_to_84_and_nine_digits_or_not_at_all(raw in prop_oneof![
        messy_text(),
        "[+0-9 .-]{0,16}",
    ]) {
        if let Some(p) = normalize::phone(&raw) {
            prop_assert_eq!(p.len(), 11);
            prop_assert!(p.starts_with("84") && p.bytes().all(|b| b.is_ascii_digit()), "{p}");
            prop_assert_eq!(normalize::phone(&p), Some(p.clone()), "normalising twice changes nothing");
        }
    }

    #[test]
    fn a_phone_normalises_as_the_contract_says(raw in prop_oneof![
        messy_text(),
        "[+0-9 .-]{0,16}",
        "[+]?(84|0)?[0-9 .\u{a0}\u{3000}-]{7,14}",
    ]) {
        // Contract §3, step by step: remove white space, dots and dashes; a
        // leading +84 becomes 84; a leading 0 and exactly 9 digits become 84
        // and those digits; the result must be 84 and 9 digits.
        let compact: String = raw.chars().filter(|c| !(c.is_whitespace() || *c == '.' || *c == '-')).collect();
        let national = match compact.strip_prefix("+84") {
            Some(rest) => format!("84{rest}"),
            None if compact.len() == 10 && compact.starts_with('0') => format!("84{}", &compact[1..]),
            None => compact,
        };
        let valid = national.len() == 11 && national.starts_with("84") && national.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(normalize::phone(&raw), valid.then_some(national));
    }

    #[test]
    fn the_three_spellings_of_a_phone_are_one_number(
        nine in digits(9),
        seps in proptest::collection::vec(separator(), 0..4),
    ) {
        let want = Some(format!("84{nine}"));
        for spelled in [format!("0{nine}"), format!("+84{nine}"), format!("84{nine}")] {
            prop_assert_eq!(normalize::phone(&with_separators(&spelled, &seps)), want.clone(), "{}", spelled);
        }
    }

    #[test]
    fn cleaned_text_has_no_surrounding_white_space_and_is_never_empty(s in messy_text()) {
        match normalize::clean_text(Some(&s)) {
            Some(t) => {
                prop_assert!(!t.is_empty());
                prop_assert!(!t.starts_with(char::is_whitespace) && !t.ends_with(char::is_whitespace));
                prop_assert!(s.contains(t));
            }
            None => prop_assert!(s.chars().all(char::is_whitespace)),
        }
    }

    #[test]
    fn a_name_key_ignores_normal_form_marks_case_and_spacing(s in messy_text()) {
        let k = normalize::name_key(&s);
        prop_assert_eq!(&normalize::name_key(&s.nfc().collect::<String>()), &k);
        prop_assert_eq!(&normalize::name_key(&s.nfd().collect::<String>()), &k);
        prop_assert_eq!(&normalize::name_key(&s.to_lowercase()), &normalize::name_key(&s.to_lowercase().to_uppercase()));
        prop_assert!(!k.starts_with(' ') && !k.ends_with(' ') && !k.contains("  "));
        prop_assert!(!k.chars().any(|c| c.is_whitespace() && c != ' '), "{k:?}");
        prop_assert!(!k.contains(['đ', 'Đ']));
        let spaced = format!("\u{3000} {}\t", s.split_whitespace().collect::<Vec<_>>().join("\u{00A0}\u{2003}"));
        prop_assert_eq!(normalize::name_key(&spaced), k);
    }

    #[test]
    fn the_word_table_folds_every_name_as_name_key(names in proptest::collection::vec(messy_text(), 1..8)) {
        // One table across the names, as ingest keeps one per batch: words
        // seen before are looked up, the others folded.
        let mut keys = normalize::NameKeys::default();
        for name in names.iter().chain(&names) {
            let want = normalize::name_key(name);
            prop_assert_eq!(keys.fold(name), want.as_str());
        }
    }

    #[test]
    fn an_id_mask_keeps_the_length_and_at_most_the_last_three(id in messy_text()) {
        let m = normalize::mask_id(&id);
        let n = id.chars().count();
        prop_assert_eq!(m.chars().count(), n);
        let shown: String = m.chars().filter(|&c| c != '*').collect();
        prop_assert!(shown.chars().count() <= 3);
        if n > 3 {
            let tail: String = id.chars().skip(n - 3).collect();
            prop_assert!(m.ends_with(&tail));
        } else {
            prop_assert!(m.chars().all(|c| c == '*'));
        }
    }
}

/// A carrier's Parquet file of the sample landing tree.
fn sample_subscribers() -> std::path::PathBuf {
    crate::common::sample_dir()
        .join("landing/subscribers/carrier=VIETTEL/date=2026-11-20/part-0.parquet")
}

/// A sample Parquet file with bytes overwritten or cut: `check` answers
/// (ok, a rejection, or row rejects) and never fails or panics.
#[test]
fn check_answers_every_damaged_parquet_file() {
    let good = std::fs::read(sample_subscribers()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: config().cases / 8,
        ..config()
    });
    let damage = (
        proptest::collection::vec((0..good.len(), any::<u8>()), 0..12),
        prop_oneof![Just(None), (0..good.len()).prop_map(Some)],
    );
    runner
        .run(&damage, |(flips, cut)| {
            let mut bytes = good.clone();
            for (i, b) in flips {
                bytes[i] = b;
            }
            if let Some(n) = cut {
                bytes.truncate(n);
            }
            let path = dir.path().join("part-0.parquet");
            std::fs::write(&path, &bytes).unwrap();
            let c = rt
                .block_on(junkrecon::ingest::check_local(
                    &path,
                    junkrecon::schema::Extract::Subscribers,
                ))
                .map_err(|e| TestCaseError::fail(format!("check failed: {e}")))?;
            if let Some(reason) = &c.upload_rejected {
                assert_one_short_line(reason);
            }
            Ok(())
        })
        .unwrap();
}

// Regression cases proptest found, kept by name.

/// CI, stop 28: a control byte written over a column name in the Parquet
/// footer. The reader's error quotes the damaged name ("expected field named
/// \0ull_name"), and the rejection reason carried the raw byte. A reason
/// quotes a reader's error escaped and cut, like any text from a sender.
#[tokio::test]
async fn a_control_byte_in_a_footer_column_name_is_escaped_in_the_reason() {
    let good = std::fs::read(sample_subscribers()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part-0.parquet");
    for (name, byte) in [(&b"full_name"[..], 0u8), (&b"activated_on"[..], 0x1a)] {
        // The footer holds each name in plain bytes (its schema element and
        // its column chunk's path): damage every copy alike.
        let mut bytes = good.clone();
        let at: Vec<usize> = (0..good.len() - name.len())
            .filter(|&i| &good[i..i + name.len()] == name)
            .collect();
        assert!(!at.is_empty(), "column name in the footer");
        for i in at {
            bytes[i + name.len() / 2] = byte;
        }
        std::fs::write(&path, &bytes).unwrap();
        let c = junkrecon::ingest::check_local(&path, junkrecon::schema::Extract::Subscribers)
            .await
            .unwrap();
        let reason = c
            .upload_rejected
            .expect("a damaged footer rejects the file");
        assert!(reason.starts_with("unreadable part-0.parquet"), "{reason}");
        assert!(reason.contains(&format!("\\u{{{byte:x}}}")), "{reason}");
        assert_one_short_line(&reason);
    }
}

/// CI, stop 33: one byte of a data page's definition levels damaged (byte
/// 14234 of the sample file set to 201). The Parquet reader (parquet 59)
/// panics on it ("offset + len out of bounds") instead of returning an
/// error; the panic failed `check` and would have failed the night. It is
/// caught and rejects the file, like any unreadable Parquet.
#[tokio::test]
async fn a_reader_panic_on_damaged_levels_rejects_the_file() {
    let mut bytes = std::fs::read(sample_subscribers()).unwrap();
    bytes[14234] = 201;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part-0.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let c = junkrecon::ingest::check_local(&path, junkrecon::schema::Extract::Subscribers)
        .await
        .unwrap();
    let reason = c.upload_rejected.expect("damaged levels reject the file");
    assert!(
        reason.starts_with(
            "unreadable part-0.parquet: the Parquet reader failed on damaged data after row "
        ),
        "{reason}"
    );
    assert!(reason.contains("offset + len out of bounds"), "{reason}");
    assert_one_short_line(&reason);
}
