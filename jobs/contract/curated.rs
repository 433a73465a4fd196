//! The curated layout (contract §3 applied): the schemas of the tables
//! ingest writes under `curated/` and the SQL of `queries/` reads, and of the
//! row-level rejects. Only schemas: it must never read, write or normalise.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::Extract;

/// Curated schemas: what the SQL of `queries/` reads. Names are folded keys,
/// never raw names; phones are normalised; codes are upper-case, values lower-case.
pub fn curated_schema(extract: Extract) -> SchemaRef {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let d = |n: &str, null| Field::new(n, DataType::Date32, null);
    let fields = match extract {
        Extract::Identity => vec![
            Field::new("row_id", DataType::Int64, false),
            s("person_id", false),
            s("legacy_id", true),
            s("name_key", false),
            d("date_of_birth", false),
            d("deceased_on", true),
        ],
        Extract::Subscribers => vec![
            s("carrier", false),
            Field::new("row_id", DataType::Int64, false),
            s("msisdn", false),
            s("subscriber_type", false),
            s("id_type", true),
            s("id_number", true),
            s("id_number_masked", true),
            s("name_key", true),
            d("date_of_birth", true),
            d("activated_on", false),
            s("status", false),
            // §7 (schema version 2); null for a version-1 extract, and for
            // curated files written before version 2 (read as null).
            Field::new("biometric_verified", DataType::Boolean, true),
            s("owner_confirmation", true),
        ],
        Extract::Accounts => vec![
            s("bank", false),
            Field::new("row_id", DataType::Int64, false),
            s("account_number", false),
            s("holder_type", false),
            s("id_type", true),
            s("id_number", true),
            s("id_number_masked", true),
            s("name_key", true),
            d("date_of_birth", true),
            Field::new("otp_present", DataType::Boolean, false),
            s("otp_msisdn", true),
            d("opened_on", false),
            // Required by the schema file (a null is a row reject), so never null
            // unless the file says it may be.
            Field::new("biometric_verified", DataType::Boolean, true),
            s("status", false),
        ],
    };
    Arc::new(Schema::new(fields))
}

/// Schema of the row-level rejects output (§3): positions, never values.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("extract", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row_number", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("column", DataType::Utf8, false),
    ]))
}
