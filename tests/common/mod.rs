//! Test fixtures: landing trees written the way senders write them.

#![allow(dead_code)]

pub mod flaky;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use junkrecon::config::Config;
use junkrecon::run::RunRecord;
use junkrecon::store::Root;
use sha2::{Digest, Sha256};

/// A night's date from a test's `YYYY-MM-DD` constant.
pub fn night(d: &str) -> junkrecon::night::NightDate {
    d.parse().expect("a test date is YYYY-MM-DD")
}

pub fn days(d: &str) -> i32 {
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// The committed copy of the contract's sample (or JUNKRECON_SAMPLE).
pub fn sample_dir() -> PathBuf {
    std::env::var_os("JUNKRECON_SAMPLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample"))
}

pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A temp copy of the sample's landing tree.
    pub fn sample() -> Tree {
        let t = Tree::new();
        copy_dir(&sample_dir().join("landing"), &t.path().join("landing"));
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> Root {
        Root::open(self.path().to_str().unwrap()).unwrap()
    }

    pub fn folder(extract: &str, source: &str, date: &str) -> String {
        match extract {
            "identity" => format!("landing/identity/date={date}"),
            "subscribers" => format!("landing/subscribers/carrier={source}/date={date}"),
            _ => format!("landing/accounts/bank={source}/date={date}"),
        }
    }

    /// Writes Parquet files and a correct manifest.
    pub fn upload(&self, extract: &str, source: &str, date: &str, files: &[(&str, RecordBatch)]) {
        let dir = self.path().join(Self::folder(extract, source, date));
        std::fs::create_dir_all(&dir).unwrap();
        let mut entries = vec![];
        for (name, batch) in files {
            let bytes = parquet_bytes(batch);
            std::fs::write(dir.join(name), &bytes).unwrap();
            entries.push(serde_json::json!({
                "name": name, "rows": batch.num_rows(), "sha256": hex::encode(Sha256::digest(&bytes))
            }));
        }
        let src = if extract == "identity" {
            "NATIONAL"
        } else {
            source
        };
        let m = serde_json::json!({"extract": extract, "source": src, "as_of": date, "schema_version": 1, "files": entries});
        std::fs::write(
            dir.join("_MANIFEST.json"),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
    }

    pub fn manifest(&self, extract: &str, source: &str, date: &str) -> serde_json::Value {
        let p = self
            .path()
            .join(Self::folder(extract, source, date))
            .join("_MANIFEST.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    pub fn set_manifest(&self, extract: &str, source: &str, date: &str, m: &serde_json::Value) {
        let p = self
            .path()
            .join(Self::folder(extract, source, date))
            .join("_MANIFEST.json");
        std::fs::write(p, serde_json::to_vec_pretty(m).unwrap()).unwrap();
    }

    /// Runs `date` computing it whatever stands (`run --recompute`).
    pub async fn recompute(&self, date: &str, cfg: &Config) -> junkrecon::Result<RunRecord> {
        run_recomputing(&self.root(), date, cfg).await
    }

    pub async fn run(&self, date: &str) -> junkrecon::Result<RunRecord> {
        self.run_with(date, &Config::default()).await
    }

    pub async fn run_with(&self, date: &str, cfg: &Config) -> junkrecon::Result<RunRecord> {
        junkrecon::run::run(&self.root(), night(date), cfg).await
    }

    /// Flags of one source's report, keyed by key, reasons unioned over rows.
    pub fn flags(&self, extract: &str, source: &str, date: &str) -> BTreeMap<String, Vec<String>> {
        let (dir, key) = match extract {
            "subscribers" => ("carrier", "msisdn"),
            _ => ("bank", "account_number"),
        };
        let p = self.path().join(format!(
            "reports/{extract}/{dir}={source}/date={date}/flags.parquet"
        ));
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for batch in read_parquet(&p) {
            let keys = batch
                .column_by_name(key)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            let reasons = batch
                .column_by_name("reasons")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::ListArray>()
                .unwrap()
                .clone();
            for i in 0..batch.num_rows() {
                let list = reasons.value(i);
                let list = list.as_any().downcast_ref::<StringArray>().unwrap();
                let e = out.entry(keys.value(i).to_string()).or_default();
                for j in 0..list.len() {
                    e.insert(list.value(j).to_string());
                }
            }
        }
        out.into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect()
    }

    /// carriers.json or banks.json as JSON values keyed by source.
    pub fn metrics(&self, file: &str, date: &str) -> BTreeMap<String, serde_json::Value> {
        let p = self.path().join(format!("metrics/date={date}/{file}.json"));
        let v: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v.into_iter()
            .map(|m| (m["source"].as_str().unwrap().to_string(), m))
            .collect()
    }

    /// sha256 of every file under a sub-folder.
    pub fn hashes(&self, sub: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let base = self.path().join(sub);
        if base.exists() {
            walk(&base, &mut |p| {
                let rel = p
                    .strip_prefix(self.path())
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                out.insert(rel, hex::encode(Sha256::digest(std::fs::read(p).unwrap())));
            });
        }
        out
    }
}

/// A night run by hand with `--recompute`: under the root's lease, computed
/// and published even when its publication stands.
pub async fn run_recomputing(
    root: &Root,
    date: &str,
    cfg: &Config,
) -> junkrecon::Result<RunRecord> {
    use junkrecon::lease::{Acquire, Lease};
    let lease = match Lease::try_acquire(
        root,
        "test",
        "recompute",
        std::time::Duration::from_secs(300),
    )
    .await?
    {
        Acquire::Taken(l) => l,
        Acquire::Busy(h) => panic!("busy: {}", h.describe()),
    };
    let meta = junkrecon::run::RunMeta {
        recompute: true,
        ..junkrecon::run::RunMeta::manual(night(date))
    };
    let record = junkrecon::run::run_as(root, night(date), cfg, &meta, &lease.fence()).await;
    lease.release().await?;
    record
}

pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
            let mut perm = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dest, perm).unwrap();
        }
    }
}

/// The compression codecs of a Parquet file's column chunks ("SNAPPY", ...).
pub fn parquet_codecs(file: bytes::Bytes) -> std::collections::BTreeSet<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(file).unwrap();
    r.metadata()
        .row_groups()
        .iter()
        .flat_map(|g| g.columns().iter().map(|c| format!("{:?}", c.compression())))
        .collect()
}

pub fn read_parquet(p: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

pub fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = vec![];
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    buf
}

fn s(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn d(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(Date32Array::from(
        v.into_iter().map(|x| x.map(days)).collect::<Vec<_>>(),
    ))
}

/// A registry person: (person_id, legacy_id, full_name, date_of_birth, deceased_on).
pub type Person<'a> = (&'a str, Option<&'a str>, &'a str, &'a str, Option<&'a str>);

pub fn identity(rows: &[Person]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("person_id", DataType::Utf8, true),
        Field::new("legacy_id", DataType::Utf8, true),
        Field::new("full_name", DataType::Utf8, true),
        Field::new("date_of_birth", DataType::Date32, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("deceased_on", DataType::Date32, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            s(rows.iter().map(|r| Some(r.0)).collect()),
            s(rows.iter().map(|r| r.1).collect()),
            s(rows.iter().map(|r| Some(r.2)).collect()),
            d(rows.iter().map(|r| Some(r.3)).collect()),
            s(rows.iter().map(|_| Some("M")).collect()),
            d(rows.iter().map(|r| r.4).collect()),
        ],
    )
    .unwrap()
}

/// A subscriber row; `..Sub::ok(...)` fills the common case.
#[derive(Clone)]
pub struct Sub<'a> {
    pub msisdn: Option<&'a str>,
    pub subscriber_type: Option<&'a str>,
    pub id_type: Option<&'a str>,
    pub id_number: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub date_of_birth: Option<&'a str>,
    pub activated_on: Option<&'a str>,
    pub status: Option<&'a str>,
}

impl<'a> Sub<'a> {
    pub fn ok(msisdn: &'a str, p: &Person<'a>) -> Sub<'a> {
        Sub {
            msisdn: Some(msisdn),
            subscriber_type: Some("individual"),
            id_type: Some("CCCD"),
            id_number: Some(p.0),
            full_name: Some(p.2),
            date_of_birth: Some(p.3),
            activated_on: Some("2020-01-01"),
            status: Some("active"),
        }
    }
}

pub fn subscribers(rows: &[Sub]) -> RecordBatch {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    let schema = Schema::new(vec![
        f("msisdn", DataType::Utf8),
        f("subscriber_type", DataType::Utf8),
        f("id_type", DataType::Utf8),
        f("id_number", DataType::Utf8),
        f("full_name", DataType::Utf8),
        f("date_of_birth", DataType::Date32),
        f("activated_on", DataType::Date32),
        f("status", DataType::Utf8),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            s(rows.iter().map(|r| r.msisdn).collect()),
            s(rows.iter().map(|r| r.subscriber_type).collect()),
            s(rows.iter().map(|r| r.id_type).collect()),
            s(rows.iter().map(|r| r.id_number).collect()),
            s(rows.iter().map(|r| r.full_name).collect()),
            d(rows.iter().map(|r| r.date_of_birth).collect()),
            d(rows.iter().map(|r| r.activated_on).collect()),
            s(rows.iter().map(|r| r.status).collect()),
        ],
    )
    .unwrap()
}

/// An account row.
#[derive(Clone)]
pub struct Acc<'a> {
    pub account_number: Option<&'a str>,
    pub holder_type: Option<&'a str>,
    pub id_type: Option<&'a str>,
    pub id_number: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub date_of_birth: Option<&'a str>,
    pub otp_msisdn: Option<&'a str>,
    pub opened_on: Option<&'a str>,
    pub biometric_verified: Option<bool>,
    pub status: Option<&'a str>,
}

impl<'a> Acc<'a> {
    pub fn ok(account: &'a str, p: &Person<'a>, otp: &'a str) -> Acc<'a> {
        Acc {
            account_number: Some(account),
            holder_type: Some("individual"),
            id_type: Some("CCCD"),
            id_number: Some(p.0),
            full_name: Some(p.2),
            date_of_birth: Some(p.3),
            otp_msisdn: Some(otp),
            opened_on: Some("2021-01-01"),
            biometric_verified: Some(true),
            status: Some("active"),
        }
    }
}

pub fn accounts(rows: &[Acc]) -> RecordBatch {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    let schema = Schema::new(vec![
        f("account_number", DataType::Utf8),
        f("holder_type", DataType::Utf8),
        f("id_type", DataType::Utf8),
        f("id_number", DataType::Utf8),
        f("full_name", DataType::Utf8),
        f("date_of_birth", DataType::Date32),
        f("otp_msisdn", DataType::Utf8),
        f("opened_on", DataType::Date32),
        f("biometric_verified", DataType::Boolean),
        f("status", DataType::Utf8),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            s(rows.iter().map(|r| r.account_number).collect()),
            s(rows.iter().map(|r| r.holder_type).collect()),
            s(rows.iter().map(|r| r.id_type).collect()),
            s(rows.iter().map(|r| r.id_number).collect()),
            s(rows.iter().map(|r| r.full_name).collect()),
            d(rows.iter().map(|r| r.date_of_birth).collect()),
            s(rows.iter().map(|r| r.otp_msisdn).collect()),
            d(rows.iter().map(|r| r.opened_on).collect()),
            Arc::new(BooleanArray::from(
                rows.iter()
                    .map(|r| r.biometric_verified)
                    .collect::<Vec<_>>(),
            )),
            s(rows.iter().map(|r| r.status).collect()),
        ],
    )
    .unwrap()
}
