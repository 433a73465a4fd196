//! One object-store root and the handful of operations the jobs need. Every
//! read and write of junkrecon goes through here (local directory, `file://`,
//! `s3://`). It must never write under `landing/`: uploads belong to their
//! senders and are never modified or deleted.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use parquet::arrow::async_writer::AsyncFileWriter;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::{Error, Result};

/// Removes `dir` and the folders under it that hold no file, deepest first;
/// a folder that still holds something (or cannot be read) stays.
fn remove_empty_dirs(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// URL under which the root is registered with DataFusion: queries read
/// `junkrecon://root/<key>` whatever the real store is.
pub const DATAFUSION_URL: &str = "junkrecon://root/";

/// The store root all paths of the contract are relative to.
#[derive(Clone, Debug)]
pub struct Root {
    store: Arc<dyn ObjectStore>,
    display: String,
    /// The directory of a local root (object stores have no folders to tidy;
    /// a local file system keeps empty ones).
    local: Option<std::path::PathBuf>,
}

impl Root {
    /// Opens a root given as a plain path, a `file://` URL or an `s3://bucket/prefix` URL.
    /// A local root must be an existing directory.
    pub fn open(spec: &str) -> Result<Root> {
        Self::open_with(spec, &crate::config::S3Settings::default())
    }

    /// Like [`Root::open`], with the S3 settings of the configuration.
    pub fn open_with(spec: &str, s3: &crate::config::S3Settings) -> Result<Root> {
        if spec.starts_with("s3://") {
            return Self::open_s3(spec, s3);
        }
        let path = if spec.starts_with("file://") {
            Url::parse(spec)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| Error::Root(format!("{spec}: not a usable file:// URL")))?
        } else {
            std::path::PathBuf::from(spec)
        };
        if !path.is_dir() {
            return Err(Error::Root(format!(
                "{}: not a readable directory",
                path.display()
            )));
        }
        let abs = path
            .canonicalize()
            .map_err(|e| Error::Root(format!("{}: {e}", path.display())))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(&abs)
            .map_err(|e| Error::Root(format!("{}: {e}", abs.display())))?;
        Ok(Root {
            store: Arc::new(local),
            display: abs.display().to_string(),
            local: Some(abs),
        })
    }

    fn open_s3(spec: &str, cfg: &crate::config::S3Settings) -> Result<Root> {
        let url = Url::parse(spec).map_err(|e| Error::Root(format!("{spec}: {e}")))?;
        let bucket = url
            .host_str()
            .ok_or_else(|| Error::Root(format!("{spec}: no bucket")))?
            .to_string();
        let retry = object_store::RetryConfig {
            max_retries: cfg.max_retries,
            retry_timeout: std::time::Duration::from_secs(cfg.retry_timeout_secs),
            ..Default::default()
        };
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_retry(retry);
        if !cfg.endpoint.is_empty() {
            b = b.with_endpoint(&cfg.endpoint);
        }
        if !cfg.region.is_empty() {
            b = b.with_region(&cfg.region);
        }
        if cfg.allow_http {
            b = b.with_allow_http(true);
        }
        let s3 = b
            .build()
            .map_err(|e| Error::Root(format!("s3 bucket {bucket}: {e}")))?;
        let prefix = url.path().trim_matches('/').to_string();
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix.as_str()))
        };
        Ok(Root {
            store,
            display: format!("s3://{bucket}/{prefix}"),
            local: None,
        })
    }

    /// Checks that the root can be listed, so a wrong bucket, endpoint or
    /// credentials give one line naming the root instead of a failure mid-run.
    pub async fn probe(&self) -> Result<()> {
        let p = Path::from("landing");
        self.store
            .list_with_delimiter(Some(&p))
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Root(format!(
                    "{}: cannot list landing/: {}",
                    self.display,
                    first_line(&e.to_string())
                ))
            })
    }

    /// Wraps an existing store (tests, other backends).
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Root {
        Root {
            store,
            display: display.into(),
            local: None,
        }
    }

    /// The underlying store, rooted at the root.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// How the root is shown to people (never contains credentials).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Reads an object whole; `None` when it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| store_err("get", key, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err("get", key, e)),
        }
    }

    /// Reads a JSON document; `None` when it does not exist. A document that
    /// does not parse is an error naming its key.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(bytes) = self.get_opt(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Invalid {
                what: key.to_string(),
                message: e.to_string(),
            })
    }

    /// Reads an object whole; a missing object is an error.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let r = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| store_err("get", key, e))?;
        r.bytes().await.map_err(|e| store_err("get", key, e))
    }

    /// Metadata of an object; `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.store.head(&Path::from(key)).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err("head", key, e)),
        }
    }

    /// Writes an object whole (atomic for readers: whole or absent).
    pub async fn put(&self, key: &str, data: impl Into<Bytes>) -> Result<()> {
        refuse_landing(key)?;
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(data.into()))
            .await
            .map_err(|e| store_err("put", key, e))?;
        Ok(())
    }

    /// Copies an object inside the store (server-side where the store can).
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        refuse_landing(to)?;
        self.store
            .copy(&Path::from(from), &Path::from(to))
            .await
            .map_err(|e| store_err("copy", from, e))
    }

    /// Creates an object only if the key is free: `false` when another writer
    /// got there first (atomic on local files and on S3).
    pub async fn put_if_absent(&self, key: &str, data: Vec<u8>) -> Result<bool> {
        refuse_landing(key)?;
        let create = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&Path::from(key), PutPayload::from(data), create)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_err("put", key, e)),
        }
    }

    /// Writes a small pointer object with a conditional put: create when absent,
    /// compare-and-swap on the current version when the store supports it
    /// (S3), plain overwrite where it does not (local files, whose writes are
    /// atomic renames). A concurrent writer makes this fail instead of both winning.
    pub async fn put_pointer(&self, key: &str, data: Vec<u8>) -> Result<()> {
        refuse_landing(key)?;
        let path = Path::from(key);
        let payload = PutPayload::from(data);
        let create = PutOptions::from(PutMode::Create);
        match self.store.put_opts(&path, payload.clone(), create).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(store_err("put", key, e)),
        }
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| store_err("head", key, e))?;
        let version = UpdateVersion {
            e_tag: meta.e_tag,
            version: meta.version,
        };
        let update = PutOptions::from(PutMode::Update(version));
        match self.store.put_opts(&path, payload.clone(), update).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store
                    .put(&path, payload)
                    .await
                    .map_err(|e| store_err("put", key, e))?;
                Ok(())
            }
            Err(e) => Err(store_err("put", key, e)),
        }
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        refuse_landing(key)?;
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err("delete", key, e)),
        }
    }

    /// Deletes every object under a prefix (never under `landing/`); on a
    /// local root, the folders it leaves empty too.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        refuse_landing(prefix)?;
        for meta in self.list(prefix).await? {
            self.delete(meta.location.as_ref()).await?;
        }
        if let Some(dir) = &self.local {
            let path = dir.join(Path::from(prefix).as_ref());
            tokio::task::spawn_blocking(move || remove_empty_dirs(&path))
                .await
                .map_err(|e| Error::Root(format!("tidying {prefix}: {e}")))?;
        }
        Ok(())
    }

    /// Lists every object under a prefix, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let p = Path::from(prefix);
        let mut out: Vec<ObjectMeta> = self
            .store
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|e| store_err("list", prefix, e))?;
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Lists the immediate "sub-folders" of a prefix (last segment only), sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let p = Path::from(prefix);
        let res = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| store_err("list", prefix, e))?;
        let mut out: Vec<String> = res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Lists the objects directly in a prefix (not deeper), sorted.
    pub async fn list_files(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let p = Path::from(prefix);
        let res = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| store_err("list", prefix, e))?;
        let mut out = res.objects;
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// The URL DataFusion reads `key` at (see [`DATAFUSION_URL`]).
    pub fn datafusion_url(key: &str) -> String {
        format!("{DATAFUSION_URL}{key}")
    }
}

/// Writer that hashes every byte it uploads (multipart, bounded memory).
pub struct HashingWriter {
    inner: BufWriter,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    /// Starts a multipart upload of `key` (relative to the store).
    pub fn new(store: Arc<dyn ObjectStore>, key: &str) -> Self {
        HashingWriter {
            inner: BufWriter::new(store, Path::from(key)),
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Appends bytes.
    pub async fn put(&mut self, bs: Bytes) -> std::io::Result<()> {
        self.hasher.update(&bs);
        self.bytes += bs.len() as u64;
        self.inner.put(bs).await.map_err(std::io::Error::other)
    }

    /// Completes the upload; returns its key, sha256 and size.
    pub async fn finish(mut self, key: &str) -> Result<crate::publish::PublishedFile> {
        self.inner
            .shutdown()
            .await
            .map_err(|e| Error::encode(key, e))?;
        Ok(crate::publish::PublishedFile {
            path: key.to_string(),
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        })
    }
}

impl AsyncFileWriter for HashingWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        async move {
            self.put(bs)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        async { Ok(()) }.boxed()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn refuse_landing(key: &str) -> Result<()> {
    if key == "landing" || key.starts_with("landing/") {
        return Err(Error::Root(format!(
            "refusing to write or delete {key}: landing/ belongs to the senders"
        )));
    }
    Ok(())
}

pub(crate) fn store_err(op: &'static str, key: &str, source: object_store::Error) -> Error {
    Error::Store {
        op,
        key: key.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_to_touch_landing() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path().to_str().unwrap()).unwrap();
        assert!(root.put("landing/x", "y").await.is_err());
        assert!(root.delete("landing/x").await.is_err());
        root.put("curated/x", "y").await.unwrap();
        assert_eq!(root.get("curated/x").await.unwrap(), "y");
    }

    #[test]
    fn missing_root_is_an_error() {
        let err = Root::open("/definitely/not/here").unwrap_err();
        assert!(err.to_string().contains("not a readable directory"));
    }
}
