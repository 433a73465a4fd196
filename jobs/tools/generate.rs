//! `junkrecon generate`: synthetic, contract-legal landing trees for tests,
//! demos and benchmarks. It plays the senders' part: it is the only module
//! that writes under `landing/`, and only into the root it was asked to fill.
//!
//! Persons are produced in fixed-size chunks, each from its own seeded random
//! stream, and every day's extracts are written in the same pass through
//! per-source Parquet writers (row groups flushed as they fill), so memory is
//! bounded by the chunk size and the number of sources, not by the country.
//! Day-to-day changes (fixes, terminations, new lines, new junk, deaths) are
//! decided by stateless hashes of (seed, entity, day), so day k is consistent
//! with day k−1 without keeping any state.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Date32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};
use parquet::arrow::async_writer::AsyncArrowWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

use crate::normalize::name_key;
use crate::store::{HashingWriter, Root};
use crate::{Error, Result};

/// Appendix A province codes (first 3 digits of a CCCD).
pub const PROVINCES: [&str; 63] = [
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020",
    "022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038",
    "040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060",
    "062", "064", "066", "067", "068", "070", "072", "074", "075", "077", "079", "080", "082",
    "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
];

/// Carriers and their market shares (subscriptions).
const CARRIERS: [(&str, f64); 5] = [
    ("VIETTEL", 0.54),
    ("VINAPHONE", 0.24),
    ("MOBIFONE", 0.17),
    ("VIETNAMOBILE", 0.04),
    ("GMOBILE", 0.01),
];

/// Banks and their shares (payment accounts).
const BANKS: [(&str, f64); 6] = [
    ("VCB", 0.21),
    ("BIDV", 0.20),
    ("TCB", 0.17),
    ("MBB", 0.20),
    ("ACB", 0.11),
    ("VPB", 0.11),
];

const SURNAMES: [(&str, f64); 15] = [
    ("Nguyễn", 38.0),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.1),
    ("Hoàng", 4.0),
    ("Huỳnh", 3.0),
    ("Phan", 4.5),
    ("Vũ", 2.0),
    ("Võ", 2.0),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
];
const MIDDLE_M: [&str; 8] = [
    "Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Thành", "Xuân",
];
const MIDDLE_F: [&str; 8] = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ", "Hồng", "Bảo"];
const GIVEN_M: [&str; 20] = [
    "An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Long", "Minh",
    "Nam", "Phúc", "Quân", "Sơn", "Thắng", "Trung", "Tuấn", "Việt",
];
const GIVEN_F: [&str; 20] = [
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hằng", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngọc",
    "Nhung", "Phương", "Quỳnh", "Thảo", "Trang", "Uyên", "Vân", "Yến",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of persons in the registry.
    pub persons: u64,
    /// Number of consecutive days (one landing tree per day).
    pub days: u32,
    /// Random seed: the same seed gives the same files.
    pub seed: u64,
    /// First day.
    pub start: NaiveDate,
    /// Plant upload-level faults on the last day (an upload left without
    /// manifest, a checksum mismatch, a missing column).
    pub faults: bool,
    /// Persons per chunk (memory bound).
    pub chunk: u64,
    /// Rows per Parquet part file before a new part starts.
    pub rows_per_file: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Contract v2 over many nights (§7–§10): see [`V2_CARRIERS`] and
    /// [`v2_scenario`] for what it adds.
    pub v2: bool,
    /// Write only this day (index from 0) of the `days`: the same files as a
    /// full run writes for it, so senders can be played night by night.
    pub only_day: Option<u32>,
}

/// With `v2`: the carriers that send schema version 2 (biometric match and
/// the owner's VNeID answer); the others stay on version 1.
pub const V2_CARRIERS: [&str; 2] = ["MOBIFONE", "VIETNAMOBILE"];

/// With `v2` (and at least 6 days), what the senders do besides the daily
/// churn, for tests and the demo to exercise §8–§10 (day indexes from 0):
/// - VIETTEL locks its flagged SIMs on time (one way a day after a line
///   turns junk, both ways after two days, terminates it after three);
///   VINAPHONE does it late (one way after three days, both after five);
///   the others never do; VCB suspends flagged accounts after two days;
/// - fixed lines may turn junk again later (a new clock);
/// - day 2: every row of VIETNAMOBILE's upload is a row-level reject (held);
/// - day 3: GMOBILE's upload lost 40% of its clean lines (held), and it
///   sends nothing on day 4;
/// - day 4: the registry's snapshot lost 3% of the persons (held).
pub fn v2_scenario() -> &'static str {
    "VIETTEL locks on time, VINAPHONE late, VCB suspends; day 2 VIETNAMOBILE all rows rejected; day 3 GMOBILE shrinks 40% (none on day 4); day 4 registry shrinks 3%"
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            persons: 10_000,
            days: 2,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date"),
            faults: false,
            chunk: 50_000,
            rows_per_file: 2_000_000,
            progress: false,
            v2: false,
            only_day: None,
        }
    }
}

/// Row counts written, per (extract, source, day).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenerateReport {
    /// `extract/source/date` → rows.
    pub rows: BTreeMap<String, u64>,
}

/// Stateless 64-bit mixing (splitmix64) for per-entity, per-day decisions.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Uniform in [0, 1) from (seed, entity, salt).
fn chance(seed: u64, entity: u64, salt: u64) -> f64 {
    (mix(seed ^ mix(entity ^ mix(salt))) >> 11) as f64 / (1u64 << 53) as f64
}

/// First day index (1-based, ≥ 1) on which an event with daily rate `rate`
/// happens to `entity`, or `None` within `days`. Day 0 is the baseline.
fn first_event_day(seed: u64, entity: u64, salt: u64, rate: f64, days: u32) -> Option<u32> {
    (1..days).find(|d| chance(seed, entity, salt ^ ((*d as u64) << 40)) < rate)
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn pick_weighted<'a>(rng: &mut ChaCha8Rng, items: &[(&'a str, f64)]) -> (usize, &'a str) {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, (name, w)) in items.iter().enumerate() {
        if x < *w {
            return (i, name);
        }
        x -= w;
    }
    (items.len() - 1, items[items.len() - 1].0)
}

/// A registry person.
#[derive(Clone)]
struct Person {
    idx: u64,
    person_id: String,
    legacy_id: Option<String>,
    name: String,
    dob: NaiveDate,
    female: bool,
    /// Day index on which the person dies, with its date (0 = already dead on day 0).
    death: Option<(u32, NaiveDate)>,
}

/// Kinds of junk planted on a line; `None` is a clean line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Junk {
    None,
    MissingId,
    MalformedId,
    NotFound,
    Legacy,
    NameMismatch,
    DobMismatch,
}

/// One SIM or account line before formatting.
#[derive(Clone)]
struct Line {
    entity: u64,
    holder: usize,
    holder_type: &'static str,
    junk: Junk,
    since: NaiveDate,
    /// Line first appears on this day index.
    born_day: u32,
}

const SIM_SALT: u64 = 0x51;
const ACC_SALT: u64 = 0xAC;

/// Generates `opts.days` days of landing extracts under `root`.
pub async fn generate(root: &Root, opts: &GenerateOptions) -> Result<GenerateReport> {
    // The generator plays the senders: it writes their uploads under landing/.
    let root = &root.as_sender();
    let mut out = Writers::new(root, opts);
    let bar = progress_bar(opts);
    let mut start = 0u64;
    while start < opts.persons {
        let end = (start + opts.chunk).min(opts.persons);
        let chunk = build_chunk(opts, start, end);
        for day in (0..opts.days).filter(|d| opts.only_day.is_none_or(|o| o == *d)) {
            write_chunk_day(&mut out, opts, &chunk, day).await?;
        }
        bar.inc(end - start);
        start = end;
    }
    bar.finish_and_clear();
    out.finish(opts).await
}

fn progress_bar(opts: &GenerateOptions) -> indicatif::ProgressBar {
    if !opts.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(opts.persons);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} generating persons {bar:40} {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar
}

/// Persons and their lines for persons `[start, end)`.
struct Chunk {
    persons: Vec<Person>,
    sims: Vec<Line>,
    accounts: Vec<Line>,
}

fn build_chunk(opts: &GenerateOptions, start: u64, end: u64) -> Chunk {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(opts.seed ^ mix(start)));
    let persons: Vec<Person> = (start..end)
        .map(|i| make_person(&mut rng, opts, i))
        .collect();
    let mut sims = vec![];
    let mut accounts = vec![];
    for (h, p) in persons.iter().enumerate() {
        let n_sims = sim_count(&mut rng);
        for j in 0..n_sims {
            let entity = p.idx * 16 + j as u64;
            sims.push(make_line(&mut rng, opts, entity, h, p, SIM_SALT));
        }
        let n_acc = account_count(&mut rng, p);
        for j in 0..n_acc {
            let entity = p.idx * 8 + j as u64;
            accounts.push(make_line(&mut rng, opts, entity, h, p, ACC_SALT));
        }
    }
    Chunk {
        persons,
        sims,
        accounts,
    }
}

fn sim_count(rng: &mut ChaCha8Rng) -> u32 {
    let x: f64 = rng.gen();
    match x {
        x if x < 0.10 => 0,
        x if x < 0.52 => 1,
        x if x < 0.82 => 2,
        x if x < 0.95 => 3,
        x if x < 0.998 => 4,
        _ => rng.gen_range(11..=14), // SIM farms: OVER_LIMIT
    }
}

fn account_count(rng: &mut ChaCha8Rng, p: &Person) -> u32 {
    let age = 2026 - p.dob.year();
    if age < 15 {
        return 0;
    }
    let x: f64 = rng.gen();
    match x {
        x if x < 0.22 => 0,
        x if x < 0.62 => 1,
        x if x < 0.90 => 2,
        _ => 3,
    }
}

fn make_person(rng: &mut ChaCha8Rng, opts: &GenerateOptions, idx: u64) -> Person {
    let female = rng.gen_bool(0.5);
    let year = rng.gen_range(1935..=2012);
    let dob = NaiveDate::from_ymd_opt(year, rng.gen_range(1..=12), rng.gen_range(1..=28))
        .expect("valid date");
    // Unique by construction: province by idx mod 63, serial by idx / 63.
    let province = PROVINCES[(idx % 63) as usize];
    let serial = (idx / 63) % 900_000;
    let century = if year < 2000 { 0 } else { 2 } + u32::from(female);
    let person_id = format!("{province}{century}{:02}{serial:06}", year % 100);
    let legacy_id = (year < 2000 && rng.gen_bool(0.55)).then(|| {
        format!(
            "{:09}",
            100_000_000 + (idx.wrapping_mul(7_919) % 899_999_999)
        )
    });
    let (_, surname) = pick_weighted(rng, &SURNAMES);
    let middle = if female { MIDDLE_F } else { MIDDLE_M }[rng.gen_range(0..8)];
    let given = if female { GIVEN_F } else { GIVEN_M }[rng.gen_range(0..20)];
    let name = if rng.gen_bool(0.15) {
        let second = if female { MIDDLE_F } else { MIDDLE_M }[rng.gen_range(0..8)];
        format!("{surname} {middle} {second} {given}")
    } else {
        format!("{surname} {middle} {given}")
    };
    let end = opts.start + chrono::Days::new(u64::from(opts.days));
    let death = if rng.gen_bool(0.012) {
        Some((0, opts.start - chrono::Days::new(rng.gen_range(1..2000))))
    } else {
        first_event_day(opts.seed, idx, 0xDEAD, 0.0005, opts.days)
            .map(|d| (d, (opts.start + chrono::Days::new(u64::from(d))).min(end)))
    };
    Person {
        idx,
        person_id,
        legacy_id,
        name,
        dob,
        female,
        death,
    }
}

fn make_line(
    rng: &mut ChaCha8Rng,
    opts: &GenerateOptions,
    entity: u64,
    holder: usize,
    p: &Person,
    salt: u64,
) -> Line {
    let x: f64 = rng.gen();
    let holder_type = match x {
        x if x < 0.012 => "foreigner",
        x if x < 0.028 => "organization",
        _ => "individual",
    };
    let j: f64 = rng.gen();
    let junk = match j {
        j if j < 0.020 => Junk::MissingId,
        j if j < 0.034 => Junk::MalformedId,
        j if j < 0.046 => Junk::NotFound,
        j if j < 0.060 && p.legacy_id.is_some() => Junk::Legacy,
        j if j < 0.075 => Junk::NameMismatch,
        j if j < 0.085 => Junk::DobMismatch,
        _ => Junk::None,
    };
    let earliest = NaiveDate::from_ymd_opt(p.dob.year() + 15, 1, 1)
        .unwrap_or(p.dob)
        .max(NaiveDate::from_ymd_opt(2005, 1, 1).expect("date"));
    let span = (opts.start - earliest).num_days().max(1) as u64;
    let since = earliest + chrono::Days::new(rng.gen_range(0..span));
    let born_day = first_event_day(opts.seed, entity, salt ^ 0xB0, 0.01, opts.days).unwrap_or(0);
    Line {
        entity,
        holder,
        holder_type,
        junk,
        since,
        born_day,
    }
}

/// Whether a line exists on `day`, its junk that day (fixes and new junk
/// applied) and the day that junk began; with
/// `again`, a fixed line may turn junk again later (contract v2 trees).
fn line_state(
    seed: u64,
    l: &Line,
    salt: u64,
    day: u32,
    days: u32,
    again: bool,
) -> Option<(Junk, u32)> {
    if l.born_day > day {
        return None;
    }
    if first_event_day(seed, l.entity, salt ^ 0x7E, 0.008, days).is_some_and(|d| d <= day) {
        return None; // terminated / closed
    }
    let event = |x: u64, rate: f64| first_event_day(seed, l.entity, salt ^ x, rate, days);
    if l.junk != Junk::None {
        return match event(0xF1, 0.22).filter(|&d| d <= day) {
            None => Some((l.junk, 0)),
            // Fixed by the carrier or bank; in a v2 tree, wrong again later.
            Some(fixed) => match event(0xAF, 0.3).filter(|&d| again && d > fixed && d <= day) {
                Some(d) => Some((Junk::NameMismatch, d)),
                None => Some((Junk::None, fixed)),
            },
        };
    }
    match event(0x4E, 0.003).filter(|&d| d <= day) {
        Some(d) => Some((Junk::NameMismatch, d)), // a fresh data-entry error
        None => Some((Junk::None, 0)),
    }
}

/// msisdn digits after `84`: a bijection of the entity number onto 5×10^8
/// numbers, so lines never collide unless a duplicate is planted.
fn msisdn_of(entity: u64) -> String {
    const SPACE: u64 = 500_000_000;
    let n = (entity % SPACE).wrapping_mul(387_420_489) % SPACE; // 3^18, coprime to 10
    let lead = [3, 5, 7, 8, 9][(n / 100_000_000) as usize];
    format!("84{lead}{:08}", n % 100_000_000)
}

fn account_of(entity: u64, bank: usize) -> String {
    let n = entity.wrapping_mul(6_364_136_223_846_793_005) % 10_000_000_000;
    format!("{}{bank}{n:010}", 1 + (entity % 9))
}

/// The forms carriers send: 84…, 0…, +84…, with spaces, dots or dashes.
fn phone_form(rng: &mut ChaCha8Rng, normalised: &str) -> String {
    let local = &normalised[2..];
    match rng.gen_range(0..100) {
        0..=59 => normalised.to_string(),
        60..=84 => format!("0{local}"),
        85..=91 => format!("+84{local}"),
        92..=94 => format!("0{} {} {}", &local[..2], &local[2..5], &local[5..]),
        95..=97 => format!("0{}.{}.{}", &local[..2], &local[2..5], &local[5..]),
        _ => format!("+84-{}-{}", &local[..2], &local[2..]),
    }
}

/// Spellings real systems produce for the same name (all fold equal).
fn name_form(rng: &mut ChaCha8Rng, name: &str) -> String {
    match rng.gen_range(0..100) {
        0..=54 => name.to_string(),
        55..=74 => name_key(name),
        75..=84 => name.nfd().collect(),
        85..=89 => format!(" {}  ", name.replace(' ', "  ")),
        90..=94 => name.replace(' ', "\u{a0}"),
        _ => name.to_lowercase(),
    }
}

fn other_name(rng: &mut ChaCha8Rng, p: &Person) -> String {
    let pool = if p.female { GIVEN_F } else { GIVEN_M };
    let words: Vec<&str> = p.name.split(' ').collect();
    let last = words[words.len() - 1];
    let mut given = pool[rng.gen_range(0..pool.len())];
    if name_key(given) == name_key(last) {
        given = pool[(pool.iter().position(|g| *g == given).unwrap_or(0) + 1) % pool.len()];
    }
    format!("{} {given}", words[..words.len() - 1].join(" "))
}

fn malformed_id(
    rng: &mut ChaCha8Rng,
    p: &Person,
    as_of_year: i32,
) -> (Option<String>, Option<String>) {
    let id = &p.person_id;
    let cccd = |s: String| (Some("CCCD".to_string()), Some(s));
    match rng.gen_range(0..8) {
        0 => cccd(id[..11].to_string()),                 // 11 digits
        1 => cccd(format!("003{}", &id[3..])),           // not a province code
        2 => cccd(format!("{}7{}", &id[..3], &id[4..])), // 4th digit not 0-3
        3 => cccd(format!(
            "{}3{:02}{}",
            &id[..3],
            (as_of_year % 100) + 1 + rng.gen_range(0..5),
            &id[6..]
        )), // born in the future
        4 => (
            Some("CMND".into()),
            Some(format!("{:08}", rng.gen_range(0..100_000_000u64))),
        ), // 8 digits
        5 => (
            Some("PASSPORT".into()),
            Some(format!("C{:07}", rng.gen_range(0..10_000_000u64))),
        ),
        6 => (
            Some("BRN".into()),
            Some(format!("0{:09}", rng.gen_range(0..1_000_000_000u64))),
        ),
        _ => (Some("CMT".into()), Some(id.clone())),
    }
}

/// The ID columns of a line: (id_type, id_number), spelled as senders do.
fn id_columns(
    rng: &mut ChaCha8Rng,
    p: &Person,
    l: &Line,
    junk: Junk,
    as_of_year: i32,
) -> (Option<String>, Option<String>) {
    if l.holder_type == "organization" {
        return (
            Some("BRN".into()),
            Some(format!("0{:09}", mix(l.entity) % 1_000_000_000)),
        );
    }
    if l.holder_type == "foreigner" {
        return (
            Some("PASSPORT".into()),
            Some(format!("B{:07}", mix(l.entity) % 10_000_000)),
        );
    }
    let spelling = rng.gen_range(0..20);
    let id_type = |s: &str| match spelling {
        0 => s.to_lowercase(),
        1 => format!(" {s} "),
        _ => s.to_string(),
    };
    match junk {
        Junk::MissingId => match rng.gen_range(0..3) {
            0 => (None, None),
            1 => (Some("CCCD".into()), None),
            _ => (Some("CCCD".into()), Some("  ".into())),
        },
        Junk::MalformedId => malformed_id(rng, p, as_of_year),
        Junk::NotFound => {
            if rng.gen_bool(0.7) {
                let fake = format!(
                    "{}{:06}",
                    &p.person_id[..6],
                    900_000 + mix(l.entity) % 100_000
                );
                (Some(id_type("CCCD")), Some(fake))
            } else {
                (
                    Some(id_type("CMND")),
                    Some(format!("0{:08}", mix(l.entity) % 100_000_000)),
                )
            }
        }
        Junk::Legacy => (Some(id_type("CMND")), p.legacy_id.clone()),
        _ => (Some(id_type("CCCD")), Some(p.person_id.clone())),
    }
}

/// Sender-side column builders of one extract kind for one (source, day).
struct Rows {
    schema: SchemaRef,
    cols: Vec<Col>,
    len: usize,
}

enum Col {
    Text(StringBuilder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
}

impl Rows {
    fn new(schema: SchemaRef) -> Rows {
        let cols = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Col::Text(StringBuilder::new()),
                DataType::Date32 => Col::Date(Date32Builder::new()),
                _ => Col::Bool(BooleanBuilder::new()),
            })
            .collect();
        Rows {
            schema,
            cols,
            len: 0,
        }
    }

    fn boolean_option(&mut self, i: usize, v: Option<bool>) {
        if let Col::Bool(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn text(&mut self, i: usize, v: Option<&str>) {
        if let Col::Text(b) = &mut self.cols[i] {
            b.append_option(v);
        }
    }

    fn date(&mut self, i: usize, v: Option<NaiveDate>) {
        if let Col::Date(b) = &mut self.cols[i] {
            b.append_option(v.map(days_since_epoch));
        }
    }

    fn boolean(&mut self, i: usize, v: bool) {
        if let Col::Bool(b) = &mut self.cols[i] {
            b.append_value(v);
        }
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::Text(b) => Arc::new(b.finish()),
                    Col::Date(b) => Arc::new(b.finish()),
                    Col::Bool(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.len = 0;
        RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::encode("generate", e))
    }
}

/// The Parquet schema senders use, read from the contract's schema files
/// (`schemas/*.toml`: names, order, types and nullability), version 2 for a
/// subscriber extract of the v2 carriers (§7).
fn sender_schema_version(kind: &str, v2: bool) -> SchemaRef {
    let extract = crate::schema::Extract::parse(kind).expect("a contract extract kind");
    let contract = extract
        .contract_at(if v2 { 2 } else { 1 })
        .expect("versions 1 and 2 exist");
    let fields: Vec<Field> = contract
        .columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                crate::schema::ColumnType::Utf8 => DataType::Utf8,
                crate::schema::ColumnType::Date32 => DataType::Date32,
                crate::schema::ColumnType::Boolean => DataType::Boolean,
            };
            Field::new(&c.name, ty, c.nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn folder(kind: &str, source: &str, date: NaiveDate) -> String {
    match kind {
        "identity" => format!("landing/identity/date={date}/"),
        "subscribers" => format!("landing/subscribers/carrier={source}/date={date}/"),
        _ => format!("landing/accounts/bank={source}/date={date}/"),
    }
}

/// One upload being written: its open part and the parts already closed.
struct Upload {
    kind: &'static str,
    source: String,
    date: NaiveDate,
    writer: Option<AsyncArrowWriter<HashingWriter>>,
    rows_in_part: usize,
    parts: Vec<(String, u64, String)>,
    pending: Rows,
    /// Schema version 2 (§7), for its manifest.
    v2: bool,
}

struct Writers {
    root: Root,
    uploads: BTreeMap<(u32, &'static str, String), Upload>,
    rows_per_file: usize,
}

impl Writers {
    fn new(root: &Root, opts: &GenerateOptions) -> Writers {
        Writers {
            root: root.clone(),
            uploads: BTreeMap::new(),
            rows_per_file: opts.rows_per_file,
        }
    }

    fn rows(
        &mut self,
        opts: &GenerateOptions,
        day: u32,
        kind: &'static str,
        source: &str,
    ) -> &mut Rows {
        let date = opts.start + chrono::Days::new(u64::from(day));
        let v2 = opts.v2 && kind == "subscribers" && V2_CARRIERS.contains(&source);
        &mut self
            .uploads
            .entry((day, kind, source.to_string()))
            .or_insert_with(|| Upload {
                kind,
                source: source.to_string(),
                date,
                writer: None,
                rows_in_part: 0,
                parts: vec![],
                pending: Rows::new(sender_schema_version(kind, v2)),
                v2,
            })
            .pending
    }

    /// Writes every pending batch (called once per chunk and day).
    async fn flush(&mut self) -> Result<()> {
        for up in self.uploads.values_mut() {
            if up.pending.len == 0 {
                continue;
            }
            let batch = up.pending.finish()?;
            up.write(&self.root, &batch, self.rows_per_file).await?;
        }
        Ok(())
    }

    async fn finish(mut self, opts: &GenerateOptions) -> Result<GenerateReport> {
        self.flush().await?;
        let mut report = GenerateReport::default();
        let last_day = opts.days.saturating_sub(1);
        let faults = fault_plan(opts, &self.uploads);
        for ((day, kind, source), mut up) in std::mem::take(&mut self.uploads) {
            up.close_part().await?;
            let fault = if opts.faults && day == last_day {
                faults.get(&(kind, source.clone())).copied()
            } else {
                None
            };
            let rows: u64 = up.parts.iter().map(|p| p.1).sum();
            report
                .rows
                .insert(format!("{kind}/{source}/{}", up.date), rows);
            up.write_manifest(&self.root, fault).await?;
        }
        Ok(report)
    }
}

/// Faults planted on the last day when asked: the smallest carrier's upload is
/// left without manifest, the second-smallest carrier's manifest has a wrong
/// checksum, and the smallest bank's upload misses a column.
fn fault_plan(
    opts: &GenerateOptions,
    uploads: &BTreeMap<(u32, &'static str, String), Upload>,
) -> BTreeMap<(&'static str, String), Fault> {
    let mut plan = BTreeMap::new();
    if !opts.faults || opts.days < 2 {
        return plan;
    }
    let last = opts.days - 1;
    let smallest = |kind: &'static str| {
        let mut v: Vec<(u64, String)> = uploads
            .iter()
            .filter(|((d, k, _), _)| *d == last && *k == kind)
            .map(|((_, _, s), u)| {
                (
                    u.parts.iter().map(|p| p.1).sum::<u64>() + u.rows_in_part as u64,
                    s.clone(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, s)| s).collect::<Vec<_>>()
    };
    let carriers = smallest("subscribers");
    if let Some(c) = carriers.first() {
        plan.insert(("subscribers", c.clone()), Fault::NoManifest);
    }
    if let Some(c) = carriers.get(1) {
        plan.insert(("subscribers", c.clone()), Fault::BadChecksum);
    }
    if let Some(b) = smallest("accounts").first() {
        plan.insert(("accounts", b.clone()), Fault::MissingColumn);
    }
    plan
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    NoManifest,
    BadChecksum,
    MissingColumn,
}

impl Upload {
    async fn write(
        &mut self,
        root: &Root,
        batch: &RecordBatch,
        rows_per_file: usize,
    ) -> Result<()> {
        if self.writer.is_none() {
            let name = format!("part-{}.parquet", self.parts.len());
            let key = format!("{}{name}", folder(self.kind, &self.source, self.date));
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .set_max_row_group_row_count(Some(131_072))
                .build();
            let w = AsyncArrowWriter::try_new(
                HashingWriter::new(root.store(), &key),
                batch.schema(),
                Some(props),
            )
            .map_err(|e| Error::encode(&key, e))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("opened above");
        w.write(batch)
            .await
            .map_err(|e| Error::encode("generate", e))?;
        self.rows_in_part += batch.num_rows();
        if self.rows_in_part >= rows_per_file {
            self.close_part().await?;
        }
        Ok(())
    }

    async fn close_part(&mut self) -> Result<()> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        w.finish().await.map_err(|e| Error::encode("generate", e))?;
        let name = format!("part-{}.parquet", self.parts.len());
        let key = format!("{}{name}", folder(self.kind, &self.source, self.date));
        let f = w.into_inner().finish(&key).await?;
        self.parts.push((name, self.rows_in_part as u64, f.sha256));
        self.rows_in_part = 0;
        Ok(())
    }

    async fn write_manifest(&mut self, root: &Root, fault: Option<Fault>) -> Result<()> {
        let dir = folder(self.kind, &self.source, self.date);
        if matches!(fault, Some(Fault::MissingColumn)) {
            self.rewrite_without_column(root, &dir, "biometric_verified")
                .await?;
        }
        if matches!(fault, Some(Fault::NoManifest)) || self.parts.is_empty() {
            return Ok(());
        }
        let files: Vec<_> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, (name, rows, sha))| {
                let sha = if i == 0 && matches!(fault, Some(Fault::BadChecksum)) {
                    "0".repeat(64)
                } else {
                    sha.clone()
                };
                json!({"name": name, "rows": rows, "sha256": sha})
            })
            .collect();
        let source = if self.kind == "identity" {
            "NATIONAL"
        } else {
            self.source.as_str()
        };
        let m = json!({
            "extract": self.kind,
            "source": source,
            "as_of": self.date.to_string(),
            "schema_version": if self.v2 { 2 } else { 1 },
            "files": files,
        });
        let body = serde_json::to_vec_pretty(&m).map_err(|e| Error::encode("manifest", e))?;
        let key = format!("{dir}{}", crate::manifest::MANIFEST);
        object_store::ObjectStoreExt::put(
            root.store().as_ref(),
            &object_store::path::Path::from(key.as_str()),
            body.into(),
        )
        .await
        .map_err(|e| crate::store::store_err("put", &key, e))?;
        Ok(())
    }

    /// Rewrites the first part without one column (a sender's schema slip).
    async fn rewrite_without_column(&mut self, root: &Root, dir: &str, column: &str) -> Result<()> {
        let Some((name, _, _)) = self.parts.first().cloned() else {
            return Ok(());
        };
        let key = format!("{dir}{name}");
        let bytes = root.get(&key).await?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| Error::encode(&key, e))?;
        let mut batches = vec![];
        for b in reader {
            let b = b.map_err(|e| Error::encode(&key, e))?;
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|&i| b.schema().field(i).name() != column)
                .collect();
            batches.push(b.project(&keep).map_err(|e| Error::encode(&key, e))?);
        }
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let mut w =
            AsyncArrowWriter::try_new(HashingWriter::new(root.store(), &key), first.schema(), None)
                .map_err(|e| Error::encode(&key, e))?;
        for b in &batches {
            w.write(b).await.map_err(|e| Error::encode(&key, e))?;
        }
        w.finish().await.map_err(|e| Error::encode(&key, e))?;
        let f = w.into_inner().finish(&key).await?;
        self.parts[0].2 = f.sha256;
        Ok(())
    }
}

async fn write_chunk_day(
    out: &mut Writers,
    opts: &GenerateOptions,
    chunk: &Chunk,
    day: u32,
) -> Result<()> {
    let date = opts.start + chrono::Days::new(u64::from(day));
    let mut rng = ChaCha8Rng::seed_from_u64(mix(opts.seed
        ^ mix(chunk.persons[0].idx)
        ^ 0xDA7
        ^ u64::from(day)));
    write_identity(out, opts, chunk, day, date);
    let phones = write_sims(out, opts, chunk, day, date, &mut rng);
    write_accounts(out, opts, chunk, day, date, &mut rng, &phones);
    out.flush().await
}

fn write_identity(
    out: &mut Writers,
    opts: &GenerateOptions,
    chunk: &Chunk,
    day: u32,
    date: NaiveDate,
) {
    let rows = out.rows(opts, day, "identity", "NATIONAL");
    for p in &chunk.persons {
        // Day 4 of the v2 scenario: an export of the registry that lost 3% of the persons.
        if scenario(opts) && day == 4 && chance(opts.seed, p.idx, 0x1D) < 0.03 {
            continue;
        }
        rows.text(0, Some(&p.person_id));
        rows.text(1, p.legacy_id.as_deref());
        rows.text(2, Some(&p.name));
        rows.date(3, Some(p.dob));
        rows.text(4, Some(if p.female { "F" } else { "M" }));
        let dead = p
            .death
            .filter(|(d, on)| *d <= day && *on <= date)
            .map(|(_, on)| on);
        rows.date(5, dead);
        rows.len += 1;
    }
}

/// Writes the SIM lines of a day; returns each holder's normalised phones.
fn write_sims(
    out: &mut Writers,
    opts: &GenerateOptions,
    chunk: &Chunk,
    day: u32,
    date: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<String>> {
    let mut phones = vec![vec![]; chunk.persons.len()];
    for l in &chunk.sims {
        let Some((junk, since)) = line_state(opts.seed, l, SIM_SALT, day, opts.days, opts.v2)
        else {
            continue;
        };
        let p = &chunk.persons[l.holder];
        let (ci, carrier) = pick_weighted(
            &mut ChaCha8Rng::seed_from_u64(mix(l.entity ^ opts.seed)),
            &CARRIERS,
        );
        let msisdn = msisdn_of(l.entity);
        phones[l.holder].push(msisdn.clone());
        let dup = chance(opts.seed, l.entity, 0xD0) < 0.003;
        let copies = if dup { 2 } else { 1 };
        for copy in 0..copies {
            let carrier = if copy == 0 {
                carrier
            } else {
                CARRIERS[(ci + 1) % CARRIERS.len()].0
            };
            let age = (junk != Junk::None).then(|| day - since);
            if scenario(opts) && skipped(opts, carrier, day, l, junk, age) {
                continue;
            }
            write_sim_row(
                out,
                opts,
                rng,
                (day, date),
                carrier,
                p,
                l,
                (junk, age),
                &msisdn,
            );
        }
    }
    // Row-level rejects: an msisdn that does not normalise, an unknown status.
    if chunk.persons.len() >= 200 {
        let rows = out.rows(opts, day, "subscribers", "VIETTEL");
        for (msisdn, status) in [("09123", "active"), ("0912345678", "suspended_by_mistake")] {
            rows.text(0, Some(msisdn));
            rows.text(1, Some("individual"));
            rows.text(2, None);
            rows.text(3, None);
            rows.text(4, None);
            rows.date(5, None);
            rows.date(6, Some(date));
            rows.text(7, Some(status));
            rows.len += 1;
        }
    }
    phones
}

/// Whether the many-night v2 scenario applies (see [`v2_scenario`]).
fn scenario(opts: &GenerateOptions) -> bool {
    opts.v2 && opts.days >= 6
}

/// Rows the v2 scenario leaves out: SIMs VIETTEL terminated (three days
/// after they turned junk), GMOBILE's broken export of day 3 (40% of its
/// clean lines) and its missing upload of day 4.
fn skipped(
    opts: &GenerateOptions,
    carrier: &str,
    day: u32,
    l: &Line,
    junk: Junk,
    age: Option<u32>,
) -> bool {
    match carrier {
        "VIETTEL" => age.is_some_and(|a| a >= 3),
        "GMOBILE" => {
            day == 4 || (day == 3 && junk == Junk::None && chance(opts.seed, l.entity, 0x5A) < 0.4)
        }
        _ => false,
    }
}

/// The status a carrier gives a line in the v2 scenario: VIETTEL locks a
/// junk line on time, VINAPHONE late; `None` leaves the usual status.
fn enforced_status(carrier: &str, age: Option<u32>) -> Option<&'static str> {
    let a = age?;
    match carrier {
        "VIETTEL" if a >= 2 => Some("blocked_two_way"),
        "VIETTEL" if a >= 1 => Some("blocked_one_way"),
        "VINAPHONE" if a >= 5 => Some("blocked_two_way"),
        "VINAPHONE" if a >= 3 => Some("blocked_one_way"),
        _ => None,
    }
}

/// The owner's VNeID answer on a v2 line, in the forms senders write.
fn owner_answer(opts: &GenerateOptions, l: &Line, day: u32) -> Option<&'static str> {
    let asked = chance(opts.seed, l.entity, 0x0C1) < 0.5 || day >= 3;
    if !asked {
        return None;
    }
    Some(match chance(opts.seed, l.entity, 0x0C2) {
        x if x < 0.02 => " Denied ",
        x if x < 0.03 => "denied",
        x if x < 0.15 => "PENDING",
        x if x < 0.25 => "pending",
        x if x < 0.5 => "Confirmed",
        _ => "confirmed",
    })
}

#[allow(clippy::too_many_arguments)]
fn write_sim_row(
    out: &mut Writers,
    opts: &GenerateOptions,
    rng: &mut ChaCha8Rng,
    (day, date): (u32, NaiveDate),
    carrier: &str,
    p: &Person,
    l: &Line,
    (junk, age): (Junk, Option<u32>),
    msisdn: &str,
) {
    let (id_type, id_number) = id_columns(rng, p, l, junk, date.year());
    let name = match junk {
        Junk::NameMismatch => Some(other_name(rng, p)),
        Junk::MissingId if rng.gen_bool(0.5) => None,
        _ => Some(name_form(rng, &p.name)),
    };
    let dob = match junk {
        Junk::DobMismatch if rng.gen_bool(0.3) => None,
        Junk::DobMismatch => Some(p.dob + chrono::Days::new(rng.gen_range(1..400))),
        _ => Some(p.dob),
    };
    let flagged_hint = junk != Junk::None || p.death.is_some();
    let usual = match (chance(opts.seed, l.entity, 0x57) * 100.0) as u32 {
        0..=5 => "blocked_one_way",
        6..=8 => "blocked_two_way",
        9..=14 if flagged_hint => "blocked_one_way",
        _ => "active",
    };
    let enforced = scenario(opts)
        .then(|| enforced_status(carrier, age))
        .flatten();
    let status = enforced.unwrap_or(usual);
    let v2 = opts.v2 && V2_CARRIERS.contains(&carrier);
    // Day 2 of the scenario: VIETNAMOBILE's export garbled every number.
    let garbled = scenario(opts) && carrier == "VIETNAMOBILE" && day == 2;
    let rows = out.rows(opts, day, "subscribers", carrier);
    if garbled {
        rows.text(0, Some("#N/A"));
    } else {
        rows.text(0, Some(&phone_form(rng, msisdn)));
    }
    let shouted = l.holder_type == "individual" && rng.gen_range(0..30) == 0;
    rows.text(1, Some(if shouted { "INDIVIDUAL" } else { l.holder_type }));
    rows.text(2, id_type.as_deref());
    rows.text(3, id_number.as_deref());
    rows.text(4, name.as_deref());
    rows.date(5, dob);
    rows.date(6, Some(l.since.min(date)));
    rows.text(7, Some(status));
    if v2 {
        // 5% of the faces never matched the chip card; 20% not checked yet.
        let face = chance(opts.seed, l.entity, 0xFA);
        rows.boolean_option(8, (face >= 0.2).then_some(face >= 0.25));
        rows.text(9, owner_answer(opts, l, day));
    }
    rows.len += 1;
}

fn write_accounts(
    out: &mut Writers,
    opts: &GenerateOptions,
    chunk: &Chunk,
    day: u32,
    date: NaiveDate,
    rng: &mut ChaCha8Rng,
    phones: &[Vec<String>],
) {
    for l in &chunk.accounts {
        let Some((junk, since)) = line_state(opts.seed, l, ACC_SALT, day, opts.days, opts.v2)
        else {
            continue;
        };
        let p = &chunk.persons[l.holder];
        let (bi, bank) = pick_weighted(
            &mut ChaCha8Rng::seed_from_u64(mix(l.entity ^ opts.seed ^ 0xBA)),
            &BANKS,
        );
        let account = account_of(l.entity, bi);
        let (id_type, id_number) = id_columns(rng, p, l, junk, date.year());
        let name = match junk {
            Junk::NameMismatch => Some(other_name(rng, p)),
            _ => Some(name_form(rng, &p.name)),
        };
        let dob = match junk {
            Junk::DobMismatch => Some(p.dob + chrono::Days::new(rng.gen_range(1..400))),
            _ => Some(p.dob),
        };
        let own = &phones[l.holder];
        let otp_roll = chance(
            opts.seed,
            l.entity,
            0x07 ^ u64::from(day > 0 && chance(opts.seed, l.entity, 0x08) < 0.2),
        );
        let otp = match otp_roll {
            x if x < 0.08 => None,
            x if x < 0.09 => Some(" ".to_string()),
            x if x < 0.095 => Some("0912-345".to_string()),
            x if x < 0.14 || own.is_empty() => {
                let other = &phones[(l.holder + 1) % phones.len()];
                Some(
                    other
                        .first()
                        .cloned()
                        .unwrap_or_else(|| msisdn_of(mix(l.entity))),
                )
            }
            _ => Some(own[(l.entity % own.len() as u64) as usize].clone()),
        };
        let otp = otp.map(|o| {
            if o.len() == 11 && o.starts_with("84") {
                phone_form(rng, &o)
            } else {
                o
            }
        });
        // 8 % never matched their face to the chip card; 30 % of those do it by day 2.
        let biometric = chance(opts.seed, l.entity, 0xB10) >= 0.08
            || (day > 0 && chance(opts.seed, l.entity, 0xB11) < 0.3);
        // The v2 scenario: VCB suspends a junk account two days after it turned junk.
        let suspends = scenario(opts) && bank == "VCB" && junk != Junk::None && day - since >= 2;
        let status = if suspends || chance(opts.seed, l.entity, 0x58) < 0.04 {
            "suspended"
        } else {
            "active"
        };
        let dup = chance(opts.seed, l.entity, 0xDA) < 0.002;
        let rows = out.rows(opts, day, "accounts", bank);
        for _ in 0..(if dup { 2 } else { 1 }) {
            rows.text(0, Some(&account));
            rows.text(1, Some(l.holder_type));
            rows.text(2, id_type.as_deref());
            rows.text(3, id_number.as_deref());
            rows.text(4, name.as_deref());
            rows.date(5, dob);
            rows.text(6, otp.as_deref());
            rows.date(7, Some(l.since.min(date)));
            rows.boolean(8, biometric);
            rows.text(9, Some(status));
            rows.len += 1;
        }
    }
    if chunk.persons.len() >= 200 {
        let rows = out.rows(opts, day, "accounts", "VCB");
        rows.text(0, Some("   "));
        rows.text(1, Some("individual"));
        rows.text(2, None);
        rows.text(3, None);
        rows.text(4, None);
        rows.date(5, None);
        rows.text(6, None);
        rows.date(7, Some(date));
        rows.boolean(8, true);
        rows.text(9, Some("active"));
        rows.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdns_are_unique_and_normalised() {
        let mut seen = std::collections::HashSet::new();
        for e in 0..200_000u64 {
            let m = msisdn_of(e);
            assert_eq!(crate::normalize::phone(&m).as_deref(), Some(m.as_str()));
            assert!(seen.insert(m));
        }
    }

    #[test]
    fn phone_forms_normalise_back() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for e in 0..2000u64 {
            let m = msisdn_of(e);
            assert_eq!(crate::normalize::phone(&phone_form(&mut rng, &m)), Some(m));
        }
    }

    #[test]
    fn name_forms_fold_equal_and_other_names_do_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let opts = GenerateOptions::default();
        for i in 0..500 {
            let p = make_person(&mut rng, &opts, i);
            assert_eq!(name_key(&name_form(&mut rng, &p.name)), name_key(&p.name));
            assert_ne!(name_key(&other_name(&mut rng, &p)), name_key(&p.name));
        }
    }

    #[test]
    fn person_ids_are_well_formed_and_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let opts = GenerateOptions::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..50_000 {
            let p = make_person(&mut rng, &opts, i);
            assert_eq!(p.person_id.len(), 12);
            assert!(PROVINCES.contains(&&p.person_id[..3]));
            assert!(seen.insert(p.person_id.clone()));
        }
    }
}
