//! Every reason code of §5 and every row-level reject of §3 at its edges, on a
//! small hand-written tree. Each expected flag below is read off the contract.

use std::collections::BTreeMap;

use crate::common::{accounts, identity, subscribers, Acc, Person, Sub, Tree};

const D: &str = "2026-11-21";
const P1: Person = (
    "001090000001",
    Some("123456789"),
    "Nguyễn Văn An",
    "1990-01-02",
    None,
);
const P2: Person = (
    "079300000002",
    None,
    "Trần Thị Bình",
    "2000-05-05",
    Some("2026-11-21"),
);
const P3: Person = (
    "096199000003",
    None,
    "Lê Hoàng Cường",
    "1999-03-03",
    Some("2026-11-22"),
);
const P4: Person = ("001185000004", None, "Phạm Đức Dũng", "1985-04-04", None);
const P5: Person = ("002226000005", None, "Đỗ Ngọc Hà", "2026-01-01", None);

fn aaa() -> Vec<Sub<'static>> {
    let ok = Sub::ok;
    let mut rows = vec![
        Sub {
            full_name: Some("NGUYEN VAN AN"),
            ..ok("0912000001", &P1)
        },
        Sub {
            msisdn: Some("+84 912-000.002"),
            id_type: Some(" cccd "),
            full_name: Some("\u{a0}Nguye\u{302}\u{303}n\tVa\u{306}n  An "),
            ..ok("x", &P1)
        },
        Sub {
            id_type: None,
            ..ok("84912000003", &P1)
        },
        Sub {
            id_number: Some("  "),
            ..ok("84912000004", &P1)
        },
        Sub {
            id_number: Some("00109000000"),
            ..ok("84912000005", &P1)
        },
        Sub {
            id_number: Some("003090000001"),
            ..ok("84912000006", &P1)
        },
        Sub {
            id_number: Some("001490000001"),
            ..ok("84912000007", &P1)
        },
        Sub {
            id_number: Some("001227000001"),
            ..ok("84912000008", &P1)
        },
        Sub {
            id_number: Some("001226999999"),
            ..ok("84912000009", &P1)
        },
        Sub {
            id_type: Some("PASSPORT"),
            id_number: Some("C1234567"),
            ..ok("84912000010", &P1)
        },
        Sub {
            id_type: Some("CMND"),
            id_number: Some("123456789"),
            ..ok("84912000011", &P1)
        },
        Sub {
            id_type: Some("CMND"),
            id_number: Some("12345678"),
            ..ok("84912000012", &P1)
        },
        Sub {
            id_type: Some("CMND"),
            id_number: Some("999999999"),
            ..ok("84912000013", &P1)
        },
        ok("84912000014", &P2),
        ok("84912000015", &P3),
        Sub {
            full_name: None,
            ..ok("84912000016", &P1)
        },
        Sub {
            date_of_birth: None,
            ..ok("84912000017", &P1)
        },
        Sub {
            full_name: Some("Nguyễn Văn Anh"),
            date_of_birth: Some("1990-01-03"),
            ..ok("84912000018", &P1)
        },
        Sub {
            subscriber_type: Some("foreigner"),
            id_type: None,
            id_number: None,
            ..ok("84912000019", &P1)
        },
        Sub {
            subscriber_type: Some("Organization"),
            id_type: Some("BRN"),
            id_number: Some("0101234567"),
            ..ok("84912000020", &P1)
        },
        ok("84912000021", &P5),
        Sub {
            id_type: Some("CMT"),
            ..ok("84912000022", &P1)
        },
        // province boundaries and century digits
        Sub {
            id_number: Some("000090000001"),
            ..ok("84912000030", &P1)
        },
        Sub {
            id_number: Some("097090000001"),
            ..ok("84912000031", &P1)
        },
        Sub {
            id_number: Some("001390000001"),
            ..ok("84912000032", &P1)
        },
        Sub {
            id_number: Some("096126999999"),
            ..ok("84912000033", &P1)
        },
        Sub {
            id_number: Some("0010900000012"),
            ..ok("84912000034", &P1)
        },
        Sub {
            id_number: Some("00109000000\u{ff11}"),
            ..ok("84912000035", &P1)
        },
        // row-level rejects
        Sub {
            msisdn: Some("0912 00"),
            ..ok("x", &P1)
        },
        Sub {
            status: Some("unknown"),
            ..ok("84912000024", &P1)
        },
        Sub {
            subscriber_type: None,
            ..ok("84912000025", &P1)
        },
        Sub {
            msisdn: Some("  "),
            ..ok("x", &P1)
        },
        Sub {
            activated_on: None,
            ..ok("84912000027", &P1)
        },
    ];
    // P4 holds 12 lines: six here (activated 2021), six at BBB (see bbb()).
    for m in [
        "84913000001",
        "84913000002",
        "84913000003",
        "84913000004",
        "84913000005",
        "84913000006",
    ] {
        rows.push(Sub {
            activated_on: Some("2021-01-01"),
            ..ok(m, &P4)
        });
    }
    rows
}

fn bbb() -> Vec<Sub<'static>> {
    let mut rows = vec![Sub::ok("84912000020", &P3)];
    rows.push(Sub {
        activated_on: Some("2021-01-01"),
        ..Sub::ok("84913000007", &P4)
    });
    for m in [
        "84913000008",
        "84913000009",
        "84913000010",
        "84913000011",
        "84913000012",
    ] {
        rows.push(Sub::ok(m, &P4));
    }
    rows
}

fn bnk() -> Vec<Acc<'static>> {
    let ok = Acc::ok;
    vec![
        ok("A1", &P1, "0912 000 001"),
        Acc {
            otp_msisdn: None,
            ..ok("A2", &P1, "")
        },
        ok("A3", &P1, "   "),
        ok("A4", &P1, "12345"),
        ok("A5", &P1, "84912000014"),
        ok("A6", &P1, "84912000003"),
        Acc {
            biometric_verified: Some(false),
            ..ok("A7", &P1, "84912000001")
        },
        ok("A8", &P1, "84912000001"),
        ok("A8", &P1, "84912000002"),
        Acc {
            id_type: None,
            otp_msisdn: None,
            biometric_verified: Some(false),
            ..ok("A9", &P1, "")
        },
        Acc {
            holder_type: Some("foreigner"),
            otp_msisdn: None,
            ..ok("A10", &P1, "")
        },
        ok("  ", &P1, "84912000001"),
        Acc {
            id_type: Some("CMND"),
            id_number: Some("123456789"),
            ..ok("A12", &P1, "84912000011")
        },
        ok(" A13 ", &P1, "+84912000001"),
        Acc {
            status: Some("closed"),
            ..ok("A14", &P1, "84912000001")
        },
        Acc {
            biometric_verified: None,
            ..ok("A15", &P1, "84912000001")
        },
    ]
}

pub async fn tree() -> Tree {
    let t = Tree::new();
    t.upload(
        "identity",
        "NATIONAL",
        D,
        &[("part-0.parquet", identity(&[P1, P2, P3, P4, P5]))],
    );
    t.upload(
        "subscribers",
        "AAA",
        D,
        &[("part-0.parquet", subscribers(&aaa()))],
    );
    t.upload(
        "subscribers",
        "BBB",
        D,
        &[("part-0.parquet", subscribers(&bbb()))],
    );
    t.upload(
        "accounts",
        "BNK",
        D,
        &[("part-0.parquet", accounts(&bnk()))],
    );
    t.upload(
        "accounts",
        "BN2",
        D,
        &[(
            "part-0.parquet",
            accounts(&[Acc::ok("A8", &P1, "0912000001")]),
        )],
    );
    t
}

fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_at_its_edges() {
    let t = tree().await;
    t.run(D).await.unwrap();
    assert_eq!(
        t.flags("subscribers", "AAA", D),
        expect(&[
            ("84912000003", &["MISSING_ID"]),
            ("84912000004", &["MISSING_ID"]),
            ("84912000005", &["MALFORMED_ID"]),
            ("84912000006", &["MALFORMED_ID"]),
            ("84912000007", &["MALFORMED_ID"]),
            ("84912000008", &["MALFORMED_ID"]),
            ("84912000009", &["ID_NOT_FOUND"]),
            ("84912000010", &["MALFORMED_ID"]),
            ("84912000011", &["LEGACY_ID"]),
            ("84912000012", &["MALFORMED_ID"]),
            ("84912000013", &["ID_NOT_FOUND"]),
            ("84912000014", &["DECEASED"]),
            ("84912000016", &["NAME_MISMATCH"]),
            ("84912000017", &["DOB_MISMATCH"]),
            ("84912000018", &["DOB_MISMATCH", "NAME_MISMATCH"]),
            ("84912000020", &["DUPLICATE_MSISDN"]),
            ("84912000022", &["MALFORMED_ID"]),
            ("84912000030", &["MALFORMED_ID"]),
            ("84912000031", &["MALFORMED_ID"]),
            ("84912000032", &["MALFORMED_ID"]),
            ("84912000033", &["ID_NOT_FOUND"]),
            ("84912000034", &["MALFORMED_ID"]),
            ("84912000035", &["MALFORMED_ID"]),
            // P4's 12 lines ranked by activated_on, carrier, msisdn: BBB's five 2020
            // lines first, then the 2021 lines AAA 01..06 and BBB 07.
            ("84913000006", &["OVER_LIMIT"]),
        ])
    );
    assert_eq!(
        t.flags("subscribers", "BBB", D),
        expect(&[
            ("84912000020", &["DUPLICATE_MSISDN"]),
            ("84913000007", &["OVER_LIMIT"])
        ])
    );
    assert_eq!(
        t.flags("accounts", "BNK", D),
        expect(&[
            ("A12", &["LEGACY_ID"]),
            ("A2", &["OTP_PHONE_MISSING"]),
            ("A3", &["OTP_PHONE_MISSING"]),
            ("A4", &["OTP_PHONE_MISMATCH"]),
            ("A5", &["OTP_PHONE_MISMATCH"]),
            ("A6", &["OTP_PHONE_MISMATCH"]),
            ("A7", &["NO_BIOMETRIC"]),
            ("A8", &["DUPLICATE_ACCOUNT"]),
            ("A9", &["MISSING_ID"]),
        ])
    );
    assert!(
        t.flags("accounts", "BN2", D).is_empty(),
        "a duplicate is per bank"
    );

    let carriers = t.metrics("carriers", D);
    let a = &carriers["AAA"];
    assert_eq!(a["rows_rejected"], 5);
    assert_eq!(a["total"], aaa().len() as u64 - 5);
    assert_eq!(a["out_of_scope"], 2);
    assert_eq!(a["flagged"], 24);
    assert_eq!(a["flags_by_reason"]["MALFORMED_ID"], 12);
    assert_eq!(a["flags_by_reason"]["ID_NOT_FOUND"], 3);
    assert_eq!(a["flags_by_reason"]["OVER_LIMIT"], 1);
    assert_eq!(a["clean"], a["total"].as_u64().unwrap() - 2 - 23);
    let banks = t.metrics("banks", D);
    assert_eq!(banks["BNK"]["rows_rejected"], 3);
    assert_eq!(
        banks["BNK"]["flags_by_reason"]["DUPLICATE_ACCOUNT"], 2,
        "rows, not keys"
    );
    assert_eq!(banks["BNK"]["newly_flagged"], 9, "keys, not rows");

    // The rejects report names file, row and reason for each rejected row.
    let rejects = crate::common::read_parquet(
        &t.path()
            .join(format!("reports/rejects/date={D}/rejects.parquet")),
    );
    let rows: usize = rejects.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 8);
    let reasons = arrow::compute::concat(
        &rejects
            .iter()
            .map(|b| b.column_by_name("reason").unwrap().as_ref())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let reasons = reasons
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let mut got: Vec<&str> = reasons.iter().map(|r| r.unwrap()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "EMPTY_ACCOUNT_NUMBER",
            "INVALID_MSISDN",
            "INVALID_MSISDN",
            "INVALID_VALUE",
            "INVALID_VALUE",
            "INVALID_VALUE",
            "INVALID_VALUE",
            "INVALID_VALUE"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_limit_comes_from_config() {
    let t = tree().await;
    let cfg = junkrecon::config::Config {
        max_subscriptions_per_person: 11,
        ..Default::default()
    };
    t.run_with(D, &cfg).await.unwrap();
    assert!(!t.flags("subscribers", "AAA", D).contains_key("84913000006"));
    assert_eq!(
        t.flags("subscribers", "BBB", D)["84913000007"],
        vec!["OVER_LIMIT".to_string()]
    );
}

/// Step 40 looks IDs up as numbers: a registry key that is not plain
/// digits matches no ID whose digits read as the same number, and a key
/// with leading zeros still matches its own text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_keys_are_matched_as_their_exact_digits() {
    const SIGNED: Person = (
        "+01085000007",
        Some("+12345678"),
        "Vũ Minh Khôi",
        "1985-07-07",
        None,
    );
    const ZEROS: Person = (
        "001085000008",
        Some("012345679"),
        "Hồ Thu Lan",
        "1985-08-08",
        None,
    );
    let t = Tree::new();
    t.upload(
        "identity",
        "NATIONAL",
        D,
        &[("part-0.parquet", identity(&[P1, SIGNED, ZEROS]))],
    );
    // The holders' IDs read as the numbers of SIGNED's keys.
    let cmnd = |msisdn, id, p| Sub {
        id_type: Some("CMND"),
        id_number: Some(id),
        ..Sub::ok(msisdn, p)
    };
    let rows = vec![
        Sub::ok("84912000001", &P1),
        Sub {
            id_number: Some("001085000007"),
            ..Sub::ok("84912000002", &SIGNED)
        },
        cmnd("84912000003", "012345678", &SIGNED),
        Sub::ok("84912000004", &ZEROS),
        cmnd("84912000005", "012345679", &ZEROS),
    ];
    t.upload(
        "subscribers",
        "AAA",
        D,
        &[("part-0.parquet", subscribers(&rows))],
    );
    t.run(D).await.unwrap();
    assert_eq!(
        t.flags("subscribers", "AAA", D),
        expect(&[
            ("84912000002", &["ID_NOT_FOUND"]),
            ("84912000003", &["ID_NOT_FOUND"]),
            ("84912000005", &["LEGACY_ID"]),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_hold_only_their_source_and_no_registry_values() {
    let t = tree().await;
    t.run(D).await.unwrap();
    let csv = std::fs::read(t.path().join(format!(
        "reports/subscribers/carrier=AAA/date={D}/flags.csv"
    )))
    .unwrap();
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF"),
        "CSV starts with a UTF-8 BOM"
    );
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "msisdn,reasons,subscriber_type,status,activated_on,id_number_masked,first_flagged_on,days_flagged,required_action,next_action_on,overdue"
    );
    assert!(text.contains(
        "84912000018,DOB_MISMATCH;NAME_MISMATCH,individual,active,2020-01-01,*********001"
    ));
    assert!(!text.contains("84913000007"), "another carrier's row");
    for secret in [
        "Nguy",
        "NGUYEN",
        "1990-01-02",
        "001090000001",
        "123456789",
        "Anh",
    ] {
        assert!(!text.contains(secret), "report leaks {secret}");
    }
    let schema = crate::common::read_parquet(&t.path().join(format!(
        "reports/subscribers/carrier=AAA/date={D}/flags.parquet"
    )))[0]
        .schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "msisdn",
            "reasons",
            "subscriber_type",
            "status",
            "activated_on",
            "id_number_masked",
            // §9: the enforcement timeline, last, in this order.
            "first_flagged_on",
            "days_flagged",
            "required_action",
            "next_action_on",
            "overdue"
        ]
    );
    assert!(text.contains(&format!(
        "84912000018,DOB_MISMATCH;NAME_MISMATCH,individual,active,2020-01-01,*********001,{D},0,NOTIFY,{},false",
        chrono::NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap() + chrono::Days::new(15)
    )));
}

/// Contract §6 progress fields over three nights, where the previous and the
/// first (baseline) publication differ, and a carrier that first reports on
/// the third night (its baseline is that night). A key repeated in a report
/// counts once; a key gone from the extract counts as resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_keys_against_the_previous_and_the_first_publication() {
    let flagged = |msisdn| Sub {
        id_type: None,
        ..Sub::ok(msisdn, &P1)
    };
    let clean = |msisdn| Sub::ok(msisdn, &P1);
    let (a, b, c, d, e) = (
        "84911000001",
        "84911000002",
        "84911000003",
        "84911000004",
        "84911000005",
    );
    let nights = [
        (
            "2026-11-20",
            vec![
                flagged(a),
                flagged(b),
                flagged(c),
                flagged(c),
                clean(d),
                clean(e),
            ],
        ),
        (
            "2026-11-21",
            vec![clean(a), flagged(b), flagged(c), flagged(d), clean(e)],
        ),
        (
            "2026-11-22",
            vec![clean(a), flagged(c), flagged(d), flagged(e)],
        ),
    ];
    let t = Tree::new();
    for (date, rows) in &nights {
        t.upload(
            "identity",
            "NATIONAL",
            date,
            &[("part-0.parquet", identity(&[P1]))],
        );
        t.upload(
            "subscribers",
            "CCC",
            date,
            &[("part-0.parquet", subscribers(rows))],
        );
    }
    let late = [
        flagged("84911000009"),
        flagged("84911000009"),
        clean("84911000008"),
    ];
    t.upload(
        "subscribers",
        "DDD",
        "2026-11-22",
        &[("part-0.parquet", subscribers(&late))],
    );
    // Night 3's extract of CCC drops b, a third of its keys: a volume guard
    // set to let everything through keeps this test about progress.
    let mut cfg = junkrecon::config::Config::default();
    cfg.guard.max_shrink_pct = 100.0;
    for (date, _) in &nights {
        t.run_with(date, &cfg).await.unwrap();
    }
    let progress = |date: &str, source: &str| {
        let m = &t.metrics("carriers", date)[source];
        let f = |k: &str| m[k].as_u64().unwrap();
        (
            f("newly_flagged"),
            f("resolved"),
            f("baseline_flagged"),
            f("resolved_since_baseline"),
            m["cleanup_progress_pct"].as_f64(),
        )
    };
    // Night 1: every flagged key is new and is the baseline.
    assert_eq!(progress("2026-11-20", "CCC"), (3, 0, 3, 0, Some(0.0)));
    // Night 2: d new, a resolved; of the baseline {a, b, c}, a resolved.
    assert_eq!(progress("2026-11-21", "CCC"), (1, 1, 3, 1, Some(33.33)));
    // Night 3 against night 2 {b, c, d}: e new, b gone (resolved); against
    // the baseline {a, b, c}: a and b resolved.
    assert_eq!(progress("2026-11-22", "CCC"), (1, 1, 3, 2, Some(66.67)));
    // A carrier first seen on night 3: its own night is its baseline.
    assert_eq!(progress("2026-11-22", "DDD"), (1, 0, 1, 0, Some(0.0)));
}
