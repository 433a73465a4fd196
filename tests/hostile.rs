//! One sender must never stop or falsify anyone else's night. A night
//! poisoned by every class of hostile or careless input at once (links,
//! names the store cannot list, out-of-range dates, lying row counts, file
//! names with control characters, `#`, or 5,000 characters, lenient dates)
//! still publishes, and the honest sources' outputs are byte-identical to a
//! clean night's. The binary's own boundaries (logs, file modes, dates on the
//! command line) are checked by running it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Date32Array};
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

use crate::common::{accounts, identity, subscribers, Acc, Person, Sub, Tree};

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";
const P1: Person = (
    "001090000001",
    Some("123456789"),
    "Nguyễn Văn An",
    "1990-01-02",
    None,
);
const P2: Person = ("079300000002", None, "Trần Thị Bình", "2000-05-05", None);
const P3: Person = ("001085000003", None, "Lê Văn Cường", "1985-03-04", None);
const P4: Person = ("048095000004", None, "Phạm Thị Dung", "1995-07-08", None);

/// The honest senders' uploads and the registry, both nights; every
/// hostile carrier's night-1 upload is honest too.
fn honest(t: &Tree) {
    for d in [D1, D2] {
        t.upload(
            "identity",
            "NATIONAL",
            d,
            &[("part-0.parquet", identity(&[P1, P2, P3, P4]))],
        );
        t.upload(
            "subscribers",
            "AAA",
            d,
            &[(
                "part-0.parquet",
                subscribers(&[Sub::ok("0912000001", &P1), Sub::ok("0912000002", &P2)]),
            )],
        );
        t.upload(
            "subscribers",
            "BBB",
            d,
            &[(
                "part-0.parquet",
                subscribers(&[
                    Sub::ok("0913000001", &P3),
                    Sub {
                        full_name: None,
                        ..Sub::ok("0913000002", &P4)
                    },
                ]),
            )],
        );
        t.upload(
            "accounts",
            "CCC",
            d,
            &[(
                "part-0.parquet",
                accounts(&[
                    Acc::ok("1001", &P1, "0912000001"),
                    Acc::ok("1002", &P3, "0999999999"),
                ]),
            )],
        );
    }
    for (i, c) in HOSTILE.iter().enumerate() {
        let msisdn = format!("09140000{i:02}");
        t.upload(
            "subscribers",
            c,
            D1,
            &[(
                "part-0.parquet",
                subscribers(&[Sub {
                    id_number: None,
                    ..Sub::ok(&msisdn, &P4)
                }]),
            )],
        );
    }
}

/// Hostile carriers (each also sent an honest night 1).
const HOSTILE: [&str; 6] = [
    "EVILDATE",
    "EVILLINKF",
    "EVILLONG",
    "EVILNAME",
    "EVILCTRL",
    "EVILROWS",
];

fn dir(t: &Tree, extract: &str, source: &str, date: &str) -> std::path::PathBuf {
    let d = t.path().join(Tree::folder(extract, source, date));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_manifest(
    dir: &Path,
    extract: &str,
    source: &str,
    date: &str,
    files: &[(&str, u64, String)],
) {
    let files: Vec<_> = files
        .iter()
        .map(|(n, rows, sha)| serde_json::json!({"name": n, "rows": rows, "sha256": sha}))
        .collect();
    let m = serde_json::json!({"extract": extract, "source": source, "as_of": date, "schema_version": 1, "files": files});
    std::fs::write(dir.join("_MANIFEST.json"), serde_json::to_vec(&m).unwrap()).unwrap();
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A subscriber batch with one more row whose `activated_on` is the last day Date32 holds.
fn with_last_date(rows: &[Sub]) -> RecordBatch {
    let b = subscribers(rows);
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    let i = b.schema().index_of("activated_on").unwrap();
    let mut days: Vec<Option<i32>> = (0..b.num_rows())
        .map(|r| {
            let a = b.column(i).as_any().downcast_ref::<Date32Array>().unwrap();
            (!a.is_null(r)).then(|| a.value(r))
        })
        .collect();
    *days.last_mut().unwrap() = Some(i32::MAX);
    cols[i] = Arc::new(Date32Array::from(days));
    RecordBatch::try_new(b.schema(), cols).unwrap()
}

/// A Parquet file whose footer and row group claim `claimed` rows.
fn lying_footer(batch: &RecordBatch, claimed: i64) -> Vec<u8> {
    use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter};
    let honest = crate::common::parquet_bytes(batch);
    let bytes = bytes::Bytes::from(honest.clone());
    let md = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .unwrap();
    let meta_len = u32::from_le_bytes(
        honest[honest.len() - 8..honest.len() - 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let data_end = honest.len() - 8 - meta_len;
    let fm = md.file_metadata();
    let file = parquet::file::metadata::FileMetaData::new(
        fm.version(),
        claimed,
        fm.created_by().map(str::to_string),
        fm.key_value_metadata().cloned(),
        fm.schema_descr_ptr(),
        fm.column_orders().cloned(),
    );
    let groups = md
        .row_groups()
        .iter()
        .map(|g| {
            g.clone()
                .into_builder()
                .set_num_rows(claimed)
                .build()
                .unwrap()
        })
        .collect();
    let lying = ParquetMetaData::new(file, groups);
    let mut out = honest[..data_end].to_vec();
    ParquetMetaDataWriter::new(&mut out, &lying)
        .finish()
        .unwrap();
    out
}

/// Every class of hostile input, at once, around the honest uploads.
#[cfg(unix)]
fn poison(t: &Tree) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    let subs = t.path().join("landing/subscribers");
    // 1. Names the store cannot list, and a link loop.
    std::fs::create_dir_all(subs.join("carrier=A\nB/date=2026-11-21")).unwrap();
    std::fs::create_dir_all(subs.join(std::ffi::OsStr::from_bytes(b"carrier=\xff\xfe"))).unwrap();
    std::fs::create_dir_all(
        subs.join("carrier=AAA")
            .join(std::ffi::OsStr::from_bytes(b"date=\xff")),
    )
    .unwrap();
    symlink("loop", subs.join("loop")).unwrap();
    symlink("loop2", t.path().join("landing/accounts/bank=CCC/loop2")).unwrap();
    // 2. A flagged row dated at the end of Date32's range (accepted, row reject).
    let d = dir(t, "subscribers", "EVILDATE", D2);
    let b = crate::common::parquet_bytes(&with_last_date(&[
        Sub {
            id_number: None,
            ..Sub::ok("0915000001", &P4)
        },
        Sub {
            id_number: None,
            ..Sub::ok("0915000002", &P4)
        },
    ]));
    std::fs::write(d.join("part-0.parquet"), &b).unwrap();
    write_manifest(
        &d,
        "subscribers",
        "EVILDATE",
        D2,
        &[("part-0.parquet", 2, sha(&b))],
    );
    // 4. A linked folder posing as a carrier, and a linked file to another carrier's upload.
    symlink(subs.join("carrier=AAA"), subs.join("carrier=LINKED")).unwrap();
    let aaa = t
        .path()
        .join(Tree::folder("subscribers", "AAA", D2))
        .join("part-0.parquet");
    let d = dir(t, "subscribers", "EVILLINKF", D2);
    symlink(&aaa, d.join("part-0.parquet")).unwrap();
    write_manifest(
        &d,
        "subscribers",
        "EVILLINKF",
        D2,
        &[("part-0.parquet", 2, sha(&std::fs::read(&aaa).unwrap()))],
    );
    // 5. A 5,000-character file name (a permanent failure, not a retry).
    let d = dir(t, "subscribers", "EVILLONG", D2);
    write_manifest(
        &d,
        "subscribers",
        "EVILLONG",
        D2,
        &[(&"x".repeat(5000), 1, "0".repeat(64))],
    );
    // 6. A name with characters outside the rule, present in the folder.
    let d = dir(t, "subscribers", "EVILNAME", D2);
    let b = crate::common::parquet_bytes(&subscribers(&[Sub::ok("0916000001", &P4)]));
    std::fs::write(d.join("a#b[1]%20.parquet"), &b).unwrap();
    write_manifest(
        &d,
        "subscribers",
        "EVILNAME",
        D2,
        &[("a#b[1]%20.parquet", 1, sha(&b))],
    );
    // 7. Lenient dates in folder names.
    std::fs::create_dir_all(subs.join("carrier=EVILNAME/date=+2026-12-1")).unwrap();
    std::fs::create_dir_all(subs.join("carrier=EVILNAME/date= 2026-11-2")).unwrap();
    // 8. Footer and manifest both claim 2^62 rows.
    let d = dir(t, "subscribers", "EVILROWS", D2);
    let b = lying_footer(&subscribers(&[Sub::ok("0917000001", &P4)]), 1 << 62);
    std::fs::write(d.join("part-0.parquet"), &b).unwrap();
    write_manifest(
        &d,
        "subscribers",
        "EVILROWS",
        D2,
        &[("part-0.parquet", 1 << 62, sha(&b))],
    );
    // 9. Control characters and a terminal escape in a manifest's file name.
    let d = dir(t, "subscribers", "EVILCTRL", D2);
    write_manifest(
        &d,
        "subscribers",
        "EVILCTRL",
        D2,
        &[(
            "x\u{1b}[31m\nERROR forged line\u{202e}.parquet",
            1,
            "0".repeat(64),
        )],
    );
    // A bank row opened at the end of Date32's range.
    let d = dir(t, "accounts", "EVILBANK", D2);
    let mut a = Acc::ok("2001", &P2, "0912000002");
    a.opened_on = Some("2021-01-01");
    let batch = accounts(&[a.clone(), a]);
    let i = batch.schema().index_of("opened_on").unwrap();
    let mut cols = batch.columns().to_vec();
    cols[i] = Arc::new(Date32Array::from(vec![Some(i32::MAX), Some(i32::MIN)]));
    let b = crate::common::parquet_bytes(&RecordBatch::try_new(batch.schema(), cols).unwrap());
    std::fs::write(d.join("part-0.parquet"), &b).unwrap();
    write_manifest(
        &d,
        "accounts",
        "EVILBANK",
        D2,
        &[("part-0.parquet", 2, sha(&b))],
    );
}

/// Every entry under `dir`, without following links: path → file hash, link target or "dir".
fn snapshot(dir: &Path) -> BTreeMap<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let v = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                sha(&std::fs::read(&p).unwrap())
            };
            out.insert(p.as_os_str().as_bytes().to_vec(), v);
        }
    }
    out
}

fn bytes(t: &Tree, rel: &str) -> Vec<u8> {
    std::fs::read(t.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_poisoned_by_every_class_publishes_the_honest_sources_unchanged() {
    let clean = Tree::new();
    honest(&clean);
    clean.run(D1).await.unwrap();
    clean.run(D2).await.unwrap();

    let t = Tree::new();
    honest(&t);
    t.run(D1).await.unwrap();
    poison(&t);
    let before = snapshot(&t.path().join("landing"));
    let record = t.run(D2).await.expect("a poisoned night still publishes");
    assert_eq!(
        snapshot(&t.path().join("landing")),
        before,
        "landing/ never changes"
    );
    assert!(
        record.ingest.deferred.is_empty(),
        "{:?}",
        record.ingest.deferred
    );

    // The honest senders' outputs are those of the clean night, byte for byte.
    for rel in [
        format!("reports/subscribers/carrier=AAA/date={D2}/flags.parquet"),
        format!("reports/subscribers/carrier=AAA/date={D2}/flags.csv"),
        format!("reports/subscribers/carrier=BBB/date={D2}/flags.parquet"),
        format!("reports/subscribers/carrier=BBB/date={D2}/flags.csv"),
        format!("reports/accounts/bank=CCC/date={D2}/flags.parquet"),
        format!("reports/accounts/bank=CCC/date={D2}/flags.csv"),
    ] {
        assert_eq!(bytes(&t, &rel), bytes(&clean, &rel), "{rel}");
    }
    for (file, honest) in [("carriers", vec!["AAA", "BBB"]), ("banks", vec!["CCC"])] {
        let (got, want) = (t.metrics(file, D2), clean.metrics(file, D2));
        for s in honest {
            assert_eq!(got[s], want[s], "{file} {s}");
        }
    }

    // Each hostile upload is decided, with a specific reason, the night it arrives.
    let reason = |source: &str| -> String {
        let d = record
            .ingest
            .decided
            .iter()
            .find(|d| d.key.source == source && d.key.as_of == D2)
            .unwrap_or_else(|| panic!("{source} not decided: {:?}", record.ingest));
        d.decision.reason.clone()
    };
    assert!(
        reason("EVILLINKF").contains("symbolic link"),
        "{}",
        reason("EVILLINKF")
    );
    assert!(reason("EVILLONG").contains("5000 bytes") && reason("EVILLONG").len() < 400);
    assert!(reason("EVILNAME").contains(junkrecon::manifest::FILE_NAME_RULE));
    assert!(
        reason("EVILROWS").contains("rows were read"),
        "{}",
        reason("EVILROWS")
    );
    assert!(
        reason("EVILCTRL").contains("\\u{1b}") && !reason("EVILCTRL").chars().any(char::is_control)
    );
    assert_eq!(reason("EVILDATE"), "", "accepted, with a row reject");
    assert_eq!(reason("EVILBANK"), "");
    let carriers = t.metrics("carriers", D2);
    for c in ["EVILLINKF", "EVILLONG", "EVILNAME", "EVILROWS", "EVILCTRL"] {
        assert_eq!(
            carriers[c]["extract_as_of"], D1,
            "{c}: previous extract stays in use"
        );
    }
    assert!(
        !carriers.contains_key("LINKED"),
        "a linked folder is not a carrier"
    );
    // Out-of-range dates are row rejects; the flagged row that remains is reported.
    let rejects = crate::common::read_parquet(
        &t.path()
            .join(format!("reports/rejects/date={D2}/rejects.parquet")),
    );
    let text = arrow::util::pretty::pretty_format_batches(&rejects)
        .unwrap()
        .to_string();
    assert!(
        text.contains("EVILDATE") && text.contains("activated_on"),
        "{text}"
    );
    assert_eq!(text.matches("opened_on").count(), 2, "{text}");
    assert_eq!(carriers["EVILDATE"]["total"], 1);
    assert!(t
        .path()
        .join(format!(
            "reports/subscribers/carrier=EVILDATE/date={D2}/flags.csv"
        ))
        .exists());

    // What was not followed is recorded, escaped, with its reason.
    let ignored: Vec<String> = record
        .ingest
        .ignored
        .iter()
        .map(|i| format!("{} {}", i.path, i.reason))
        .collect();
    for want in [
        "carrier=A\\u{a}B",
        "not valid UTF-8",
        "symbolic link",
        "date=+2026-12-1",
        "date= 2026-11-2",
        "carrier=LINKED",
    ] {
        assert!(
            ignored.iter().any(|i| i.contains(want)),
            "{want}: {ignored:#?}"
        );
    }
    assert!(
        ignored.iter().all(|i| !i.chars().any(char::is_control)),
        "{ignored:#?}"
    );
    assert!(!t.path().join("curated/subscribers/LINKED").exists());

    // `status` shows it all on one line per upload, without raw control characters.
    let status = junkrecon::run::status_text(&t.root(), None).await.unwrap();
    assert!(
        !status.chars().any(|c| c.is_control() && c != '\n'),
        "{status}"
    );
    assert!(status.lines().all(|l| !l.starts_with("ERROR")), "{status}");
    assert!(status
        .lines()
        .any(|l| l.contains("EVILCTRL") && l.contains("rejected")));

    // The next night runs too (the accepted out-of-range upload stays in use).
    let again = t.run(D2).await.unwrap();
    assert!(again.ingest.decided.is_empty());
    assert_eq!(
        bytes(
            &t,
            &format!("reports/subscribers/carrier=AAA/date={D2}/flags.csv")
        ),
        bytes(
            &clean,
            &format!("reports/subscribers/carrier=AAA/date={D2}/flags.csv")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_the_nightly_run_agree_on_out_of_range_dates_and_lying_footers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("late.parquet");
    std::fs::write(
        &p,
        crate::common::parquet_bytes(&with_last_date(&[
            Sub::ok("0915000001", &P4),
            Sub::ok("0915000002", &P4),
        ])),
    )
    .unwrap();
    let c = junkrecon::ingest::check_local(&p, junkrecon::schema::Extract::Subscribers)
        .await
        .unwrap();
    assert_eq!(c.upload_rejected, None);
    assert_eq!(
        c.row_rejects,
        vec![(2, "INVALID_VALUE".to_string(), "activated_on".to_string())]
    );
    let p = dir.path().join("lying.parquet");
    std::fs::write(
        &p,
        lying_footer(&subscribers(&[Sub::ok("0917000001", &P4)]), 1 << 62),
    )
    .unwrap();
    let c = junkrecon::ingest::check_local(&p, junkrecon::schema::Extract::Subscribers)
        .await
        .unwrap();
    let why = c
        .upload_rejected
        .expect("a lying footer is rejected by check too");
    assert!(why.contains("rows were read"), "{why}");
    let p = dir.path().join("a#b.parquet");
    std::fs::write(
        &p,
        crate::common::parquet_bytes(&subscribers(&[Sub::ok("0917000001", &P4)])),
    )
    .unwrap();
    let c = junkrecon::ingest::check_local(&p, junkrecon::schema::Extract::Subscribers)
        .await
        .unwrap();
    assert!(c
        .upload_rejected
        .unwrap()
        .contains(junkrecon::manifest::FILE_NAME_RULE));
}

/// The binary, on a copy of the sample, with `args` and `RUST_LOG`.
fn junkrecon(args: &[&str], rust_log: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_junkrecon"))
        .args(args)
        .env("RUST_LOG", rust_log)
        .output()
        .unwrap()
}

/// Every ID number, name (as sent and folded) and date of birth in the sample's uploads.
fn personal_values(landing: &Path) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    crate::common::walk(landing, &mut |p| {
        let Ok(reader) = std::fs::File::open(p)
            .map_err(|_| ())
            .and_then(|f| {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                    .map_err(|_| ())
            })
            .and_then(|b| b.build().map_err(|_| ()))
        else {
            return; // the sample's deliberately broken uploads
        };
        {
            for b in reader.map_while(Result::ok) {
                for col in [
                    "person_id",
                    "legacy_id",
                    "id_number",
                    "full_name",
                    "date_of_birth",
                ] {
                    let Some(c) = b.column_by_name(col) else {
                        continue;
                    };
                    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap();
                    let c = c
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .unwrap();
                    for v in c.iter().flatten() {
                        let v = v.trim();
                        if v.chars().count() >= 6 {
                            out.insert(v.to_string());
                            if col == "full_name" {
                                out.insert(junkrecon::normalize::name_key(v));
                            }
                        }
                    }
                }
            }
        }
    });
    out.into_iter().collect()
}

#[cfg(unix)]
#[test]
fn no_log_level_prints_personal_data_and_personal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::sample();
    let values = personal_values(&t.path().join("landing"));
    assert!(values.len() > 50, "{}", values.len());
    let data = t.path().to_str().unwrap();
    for (level, date) in [("trace", "2026-11-20"), ("debug", "2026-11-21")] {
        let out = junkrecon(&["run", "--data", data, "--as-of", date], level);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.lines().count() > 10,
            "{level}: the log is not empty ({} lines)",
            log.lines().count()
        );
        let leaked: Vec<&String> = values.iter().filter(|v| log.contains(v.as_str())).collect();
        assert!(
            leaked.is_empty(),
            "{level}: {} personal values in the log, e.g. {:?}",
            leaked.len(),
            &leaked[..leaked.len().min(3)]
        );
    }
    // Everything the run wrote is readable by its own user only.
    let mut open = vec![];
    for sub in [
        "curated",
        "catalog",
        "reports",
        "metrics",
        "publications",
        "runs",
    ] {
        crate::common::walk(&t.path().join(sub), &mut |p| {
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            if mode & 0o077 != 0 {
                open.push(format!("{} {mode:o}", p.display()));
            }
        });
        let mode = std::fs::metadata(t.path().join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{sub}/ is {mode:o}");
    }
    assert!(open.is_empty(), "{open:#?}");
}

#[test]
fn every_boundary_takes_one_strict_date() {
    let t = Tree::sample();
    let data = t.path().to_str().unwrap();
    for bad in [
        " 2026-11-2",
        "+2026-12-1",
        "2026-11-2",
        "2026-11-20 ",
        "2026-02-30",
    ] {
        let out = junkrecon(&["run", "--data", data, "--as-of", bad], "warn");
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        let out = junkrecon(&["status", "--data", data, "--as-of", bad], "warn");
        assert!(!out.status.success(), "status {bad:?} accepted");
    }
    assert!(!t.path().join("runs").exists(), "no run started");
}

/// Reads until the server closes the connection; what it sent, or `None`
/// if it was still open after `limit`.
async fn read_until_closed(
    c: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_http_connections_do_not_hold_the_service() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let limits = junkrecon::http::Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 8,
    };
    let server = tokio::spawn(junkrecon::http::serve_with_limits(
        listener, app, limits, stopped,
    ));
    // Seven half-open connections that never send a byte, and one slowloris.
    let mut idle = vec![];
    for _ in 0..7 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every place is taken: one more connection is closed at once, unanswered.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_until_closed(&mut extra, Duration::from_millis(500)).await;
    assert_eq!(
        answer,
        Some(vec![]),
        "a connection past the limit is closed unread"
    );
    // The slowloris keeps sending, one header line at a time, and is still cut.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    // The idle ones are closed by the header timeout (1 s), well before 3 s.
    for c in &mut idle {
        assert!(
            read_until_closed(c, Duration::from_secs(3)).await.is_some(),
            "idle connection still open"
        );
    }
    assert!(trickle.await.unwrap(), "the slowloris was never cut off");
    // The service answers again.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(3))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("ok"),
        "{text}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
}
