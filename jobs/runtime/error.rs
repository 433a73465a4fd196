//! The library's one error type. Messages name what a person needs to act on
//! (file, column, expected versus found) and must never carry personal data:
//! no names, ID numbers or dates of birth, only positions and column names.

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be reached or an object could not be read/written.
    #[error("store: {op} {key}: {source}")]
    Store {
        /// Operation that failed (get, put, list, ...).
        op: &'static str,
        /// Object key relative to the root.
        key: String,
        /// Underlying error.
        #[source]
        source: object_store::Error,
    },
    /// The root URL or path is not usable.
    #[error("root {0}")]
    Root(String),
    /// Configuration could not be read or is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A query or plan failed.
    #[error("query {query}: {source}")]
    Query {
        /// Name of the query file or step.
        query: String,
        /// Underlying error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Arrow or Parquet encoding failed while writing our own outputs.
    #[error("encode {what}: {source}")]
    Encode {
        /// What was being written.
        what: String,
        /// Cause, kept for `source()` chains (is it an I/O error underneath?).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The run cannot proceed (e.g. no identity snapshot).
    #[error("{0}")]
    CannotRun(String),
    /// A document (manifest, ledger, publication) is malformed.
    #[error("{what}: {message}")]
    Invalid {
        /// Which document.
        what: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Wraps a DataFusion error with the step that raised it.
    pub fn query(query: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        Error::Query {
            query: query.into(),
            source,
        }
    }

    /// Wraps an Arrow/Parquet error while writing `what`.
    pub fn encode(
        what: impl Into<String>,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Encode {
            what: what.into(),
            source: e.into(),
        }
    }
}
