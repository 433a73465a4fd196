//! The extract contracts of §2, read from `schemas/*.toml` (embedded at build
//! time so the binary and the published files cannot drift apart), and the
//! check of a Parquet file's schema against them. Never reads row values.

use std::fmt;

use arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

/// The three extract kinds of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Extract {
    /// National registry snapshot.
    Identity,
    /// One carrier's subscriber extract.
    Subscribers,
    /// One bank's KYC extract.
    Accounts,
}

impl Extract {
    /// All kinds, in processing order (identity first).
    pub const ALL: [Extract; 3] = [Extract::Identity, Extract::Subscribers, Extract::Accounts];

    /// Name used in paths and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Extract::Identity => "identity",
            Extract::Subscribers => "subscribers",
            Extract::Accounts => "accounts",
        }
    }

    /// Parses a manifest/path name.
    pub fn parse(s: &str) -> Option<Extract> {
        Extract::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The contract for this kind at schema_version 1.
    pub fn contract(self) -> &'static ExtractSchema {
        self.contract_at(1)
            .expect("version 1 exists for every kind")
    }

    /// The contract for this kind at a schema version (§7: 1 or 2; for
    /// identity and accounts, 2 is the same as 1), `None` for another.
    pub fn contract_at(self, version: u32) -> Option<&'static ExtractSchema> {
        let all = contracts();
        let v1 = match self {
            Extract::Identity => &all[0],
            Extract::Subscribers => &all[1],
            Extract::Accounts => &all[2],
        };
        match (self, version) {
            (_, 1) => Some(v1),
            (Extract::Subscribers, 2) => Some(&all[3]),
            (_, 2) => Some(v1),
            _ => None,
        }
    }

    /// Path segment naming the source (`carrier`, `bank`), `None` for identity.
    pub fn source_dir(self) -> Option<&'static str> {
        match self {
            Extract::Identity => None,
            Extract::Subscribers => Some("carrier"),
            Extract::Accounts => Some("bank"),
        }
    }
}

impl fmt::Display for Extract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Column type names used by the schema files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Utf8, LargeUtf8 or Utf8View (or a dictionary of them).
    Utf8,
    /// Date32, or a Timestamp of any unit.
    Date32,
    /// Boolean.
    Boolean,
}

impl ColumnType {
    fn contract_name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "Utf8",
            ColumnType::Date32 => "Date32",
            ColumnType::Boolean => "Boolean",
        }
    }

    /// Whether an Arrow type found in a file satisfies this contract type.
    pub fn accepts(self, found: &DataType) -> bool {
        match (self, found) {
            (ColumnType::Utf8, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => true,
            (ColumnType::Utf8, DataType::Dictionary(_, v)) => self.accepts(v),
            (ColumnType::Date32, DataType::Date32 | DataType::Timestamp(_, _)) => true,
            (ColumnType::Boolean, DataType::Boolean) => true,
            _ => false,
        }
    }
}

/// One column of an extract contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Exact column name.
    pub name: String,
    /// Contract type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether nulls are allowed.
    pub nullable: bool,
    /// Allowed values (compared case-insensitively), if restricted.
    #[serde(default)]
    pub values: Vec<String>,
    /// (identity) non-null values must not repeat within an upload.
    #[serde(default)]
    pub unique: bool,
    /// Human description.
    #[serde(default)]
    pub meaning: String,
}

/// What a null in a required column rejects (§1 for the registry, §3 for
/// carriers and banks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NullInRequired {
    /// The whole upload (the registry's snapshot).
    RejectUpload,
    /// The row alone (`INVALID_VALUE`), the rest of the upload is used.
    RejectRow,
}

/// One extract contract (a file under `schemas/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSchema {
    /// Extract kind.
    pub extract: Extract,
    /// Version this file describes.
    pub schema_version: u32,
    /// Fixed source code (identity only).
    #[serde(default)]
    pub source_code: Option<String>,
    /// Path segment naming the source.
    #[serde(default)]
    pub source_dir: Option<String>,
    /// What a null in a required column (`nullable = false`) rejects.
    pub null_in_required: NullInRequired,
    /// The columns, in contract order.
    pub columns: Vec<ColumnSpec>,
}

impl ExtractSchema {
    /// Looks a column up by name.
    pub fn column(&self, name: &str) -> &ColumnSpec {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("schema {} has no column {name}", self.extract))
    }

    /// Checks a file's Arrow schema: every contract column present with an
    /// accepted type. Returns the first problem as `column X: ...`.
    pub fn check(&self, found: &Schema) -> std::result::Result<(), String> {
        for col in &self.columns {
            match found.field_with_name(&col.name) {
                Err(_) => return Err(format!("missing column {}", col.name)),
                Ok(f) if !col.ty.accepts(f.data_type()) => {
                    return Err(format!(
                        "column {} is {}, contract says {}",
                        col.name,
                        // A nested type's Display names its child fields,
                        // which come from the sender's file.
                        crate::display::excerpt(&f.data_type().to_string(), 160),
                        col.ty.contract_name()
                    ));
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

/// Reads one schema file, refusing what junkrecon cannot honour: the
/// registry has no per-row rejects (no report goes back to it), so its file
/// must say `null_in_required = "reject_upload"`.
pub fn parse_schema(text: &str) -> std::result::Result<ExtractSchema, String> {
    let schema: ExtractSchema = toml::from_str(text).map_err(|e| e.to_string())?;
    if schema.extract == Extract::Identity
        && schema.null_in_required != NullInRequired::RejectUpload
    {
        return Err(
            "identity: null_in_required must be \"reject_upload\" (the registry gets no row rejects)"
                .into(),
        );
    }
    Ok(schema)
}

fn contracts() -> &'static [ExtractSchema; 4] {
    static CELL: std::sync::OnceLock<[ExtractSchema; 4]> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let parse = |text: &str| -> ExtractSchema {
            parse_schema(text).expect("schemas/*.toml embedded at build time must be valid")
        };
        [
            parse(include_str!("../../schemas/identity.v1.toml")),
            parse(include_str!("../../schemas/subscribers.v1.toml")),
            parse(include_str!("../../schemas/accounts.v1.toml")),
            parse(include_str!("../../schemas/subscribers.v2.toml")),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};

    #[test]
    fn the_registrys_nulls_can_only_reject_the_snapshot() {
        let text = include_str!("../../schemas/identity.v1.toml");
        assert!(parse_schema(text).is_ok());
        let row = text.replace(
            "null_in_required = \"reject_upload\"",
            "null_in_required = \"reject_row\"",
        );
        assert_ne!(row, text);
        let e = parse_schema(&row).unwrap_err();
        assert!(e.contains("null_in_required"), "{e}");
    }

    #[test]
    fn embedded_contracts_parse_and_match_kinds() {
        for e in Extract::ALL {
            let c = e.contract();
            assert_eq!(c.extract, e);
            assert_eq!(c.schema_version, 1);
            assert_eq!(c.source_dir.as_deref(), e.source_dir());
            let whole = e == Extract::Identity;
            assert_eq!(c.null_in_required == NullInRequired::RejectUpload, whole);
            assert_eq!(c.source_code.is_some(), whole);
        }
        assert_eq!(Extract::Subscribers.contract().columns.len(), 8);
        assert_eq!(Extract::Accounts.contract().columns.len(), 10);
        assert_eq!(Extract::Identity.contract().columns.len(), 6);
        let v2 = Extract::Subscribers.contract_at(2).unwrap();
        assert_eq!(v2.schema_version, 2);
        assert_eq!(v2.columns.len(), 10);
        assert_eq!(
            v2.columns[..8].iter().map(|c| &c.name).collect::<Vec<_>>(),
            Extract::Subscribers
                .contract()
                .columns
                .iter()
                .map(|c| &c.name)
                .collect::<Vec<_>>()
        );
        assert_eq!(Extract::Accounts.contract_at(2).unwrap().schema_version, 1);
        assert!(Extract::Identity.contract_at(3).is_none());
    }

    #[test]
    fn type_acceptance() {
        assert!(ColumnType::Utf8.accepts(&DataType::LargeUtf8));
        assert!(ColumnType::Utf8.accepts(&DataType::Utf8View));
        assert!(ColumnType::Utf8.accepts(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8)
        )));
        assert!(!ColumnType::Utf8.accepts(&DataType::Int64));
        assert!(ColumnType::Date32.accepts(&DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("+07:00".into())
        )));
        assert!(!ColumnType::Date32.accepts(&DataType::Date64));
        assert!(!ColumnType::Date32.accepts(&DataType::Utf8));
        assert!(!ColumnType::Boolean.accepts(&DataType::Int8));
    }

    #[test]
    fn check_names_column_and_types() {
        let c = Extract::Identity.contract();
        let schema = Schema::new(vec![
            Field::new("person_id", DataType::Utf8, false),
            Field::new("legacy_id", DataType::Utf8, true),
            Field::new("full_name", DataType::Utf8, false),
            Field::new("date_of_birth", DataType::Utf8, false),
            Field::new("sex", DataType::Utf8, false),
        ]);
        assert_eq!(
            c.check(&schema).unwrap_err(),
            "column date_of_birth is Utf8, contract says Date32"
        );
        let schema = Schema::new(vec![Field::new("person_id", DataType::Utf8, false)]);
        assert_eq!(c.check(&schema).unwrap_err(), "missing column legacy_id");
    }
}
