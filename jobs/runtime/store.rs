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

use serde::{Deserialize, Serialize};

use crate::guard::LandingGuard;
use crate::{Error, Result};

/// One file of a publication.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedFile {
    /// Key relative to the root.
    pub path: String,
    /// Hex sha256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

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
    /// The store as every job sees it: behind [`LandingGuard`].
    store: Arc<dyn ObjectStore>,
    /// The same store without the guard, for [`Root::as_sender`] only.
    unguarded: Arc<dyn ObjectStore>,
    display: String,
    /// The directory of a local root (object stores have no folders to tidy;
    /// a local file system keeps empty ones).
    local: Option<std::path::PathBuf>,
    /// Raw-prefix listings of an S3 root, to list around keys the store
    /// cannot parse (see [`Root::list_landing_dirs`]).
    paged: Option<Paged>,
}

/// The names one landing level may hold: `head` followed by 1 to `max`
/// characters of `alphabet` (`carrier=` and a source code, `date=` and a date).
#[derive(Debug, Clone)]
pub struct NameForm {
    /// The fixed start of every name (`carrier=`, `bank=`, `date=`).
    pub head: String,
    /// The characters that may follow it.
    pub alphabet: &'static str,
    /// How many of them at most.
    pub max: usize,
}

impl NameForm {
    /// `<dir>=CODE`, with CODE as the contract allows (`^[A-Z0-9_]{2,16}$`).
    pub fn source(dir: &str) -> NameForm {
        NameForm {
            head: format!("{dir}="),
            alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
            max: 16,
        }
    }

    /// `date=YYYY-MM-DD`.
    pub fn date() -> NameForm {
        NameForm {
            head: "date=".into(),
            alphabet: "0123456789-",
            max: 10,
        }
    }
}

/// An S3 store's listing by raw key prefix. object_store's ordinary
/// listing fails whole on one key it cannot turn into a path; this one lets
/// a failing listing be narrowed to ever longer prefixes.
#[derive(Clone)]
struct Paged {
    store: Arc<dyn object_store::list::PaginatedListStore>,
    /// The root's prefix inside the bucket, with a trailing `/` (or empty).
    prefix: String,
}

impl std::fmt::Debug for Paged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Paged({:?})", self.prefix)
    }
}

impl Paged {
    /// The folder names (last segment) of every key starting with `raw`,
    /// grouped at the next `/`, over all pages; `Ok(Err(reason))` when a key
    /// there cannot be parsed; `Err` only for a transient failure.
    async fn dirs(&self, raw: &str) -> Result<std::result::Result<Vec<String>, String>> {
        use object_store::list::PaginatedListOptions;
        let full = format!("{}{raw}", self.prefix);
        let (mut out, mut token) = (vec![], None);
        loop {
            let opts = PaginatedListOptions {
                delimiter: Some("/".into()),
                page_token: token.take(),
                ..Default::default()
            };
            match self.store.list_paginated(Some(&full), opts).await {
                Ok(page) => {
                    let names = page.result.common_prefixes.iter();
                    out.extend(names.filter_map(|p| p.filename().map(str::to_string)));
                    match page.page_token {
                        Some(t) => token = Some(t),
                        None => return Ok(Ok(out)),
                    }
                }
                Err(e) if is_transient(&e) => return Err(store_err("list", raw, e)),
                Err(e) => return Ok(Err(short_store_error(&e))),
            }
        }
    }

    /// Whether anything at all is stored under `raw` (a key that cannot be
    /// parsed counts: it is there).
    async fn anything_under(&self, raw: &str) -> Result<bool> {
        use object_store::list::PaginatedListOptions;
        let full = format!("{}{raw}", self.prefix);
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(1),
            ..Default::default()
        };
        match self.store.list_paginated(Some(&full), opts).await {
            Ok(page) => {
                Ok(!page.result.objects.is_empty() || !page.result.common_prefixes.is_empty())
            }
            Err(e) if is_transient(&e) => Err(store_err("list", raw, e)),
            Err(_) => Ok(true),
        }
    }

    /// The folders of `form` under `prefix`, listed around keys that cannot
    /// be parsed: a listing that fails is narrowed by one more character of
    /// the form's alphabet at a time, so only names that share a bad key's
    /// spelling up to the form's length are left unread. Returns the folders
    /// and the (prefix, reason) of every narrowest listing that still failed.
    async fn narrowed(
        &self,
        prefix: &str,
        form: &NameForm,
    ) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let base = format!("{}/{}", prefix.trim_end_matches('/'), form.head);
        let (mut todo, mut dirs, mut bad) = (vec![base.clone()], vec![], vec![]);
        while let Some(raw) = todo.pop() {
            let reason = match self.dirs(&raw).await? {
                Ok(found) => {
                    dirs.extend(found);
                    continue;
                }
                Err(reason) => reason,
            };
            let name = &raw[base.len() - form.head.len()..];
            if raw.len() > base.len() && self.anything_under(&format!("{raw}/")).await? {
                dirs.push(name.to_string());
            }
            if raw.len() - base.len() >= form.max {
                bad.push((format!("{name}..."), reason));
                continue;
            }
            todo.extend(form.alphabet.chars().map(|c| format!("{raw}{c}")));
        }
        dirs.sort();
        dirs.dedup();
        Ok((dirs, bad))
    }
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
        let local: Arc<dyn ObjectStore> = Arc::new(local);
        Ok(Root {
            store: Arc::new(LandingGuard::new(local.clone())),
            unguarded: local,
            display: abs.display().to_string(),
            local: Some(abs),
            paged: None,
        })
    }

    fn open_s3(spec: &str, cfg: &crate::config::S3Settings) -> Result<Root> {
        let url = Url::parse(spec).map_err(|e| Error::Root(format!("{spec}: {e}")))?;
        let bucket = url
            .host_str()
            .ok_or_else(|| Error::Root(format!("{spec}: no bucket")))?
            .to_string();
        // object_store's default backoff starts at 100 ms and grows by a
        // random factor up to 2: ten retries were over in 1.7-3.6 s, so
        // `retry_timeout_secs` was never what ended them. Starting at one
        // second and capping each wait at 30 s lets the retries cover the
        // timeout; whichever of the two limits comes first ends them.
        let retry = object_store::RetryConfig {
            max_retries: cfg.max_retries,
            retry_timeout: std::time::Duration::from_secs(cfg.retry_timeout_secs),
            backoff: object_store::BackoffConfig {
                init_backoff: std::time::Duration::from_secs(1),
                max_backoff: std::time::Duration::from_secs(30),
                base: 2.0,
            },
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
        let s3 = Arc::new(s3);
        let paged = Paged {
            store: s3.clone(),
            prefix: match prefix.is_empty() {
                true => String::new(),
                false => format!("{prefix}/"),
            },
        };
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            s3
        } else {
            Arc::new(PrefixStore::new(s3, prefix.as_str()))
        };
        Ok(Root {
            store: Arc::new(LandingGuard::new(store.clone())),
            unguarded: store,
            display: format!("s3://{bucket}/{prefix}"),
            local: None,
            paged: Some(paged),
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
                    short_store_error(&e)
                ))
            })
    }

    /// Wraps an existing store (tests, other backends).
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Root {
        Root {
            store: Arc::new(LandingGuard::new(store.clone())),
            unguarded: store,
            display: display.into(),
            local: None,
            paged: None,
        }
    }

    /// The underlying store, rooted at the root, behind the landing guard:
    /// whoever writes through it (raw writers, DataFusion) cannot change
    /// anything under `landing/`.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The same root without the landing guard, for the one tool that plays
    /// the senders (`generate`, and tests that upload as senders do). No job
    /// calls it; `tests/layout.rs` checks that no other module does.
    pub fn as_sender(&self) -> Root {
        Root {
            store: self.unguarded.clone(),
            ..self.clone()
        }
    }

    /// Whether the root is a local directory (not an object store).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
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

    /// sha256 (hex) and size of an object, computed while streaming it;
    /// `None` when it does not exist.
    pub async fn sha256_opt(&self, key: &str) -> Result<Option<(String, u64)>> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(hash_stream(key, r).await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err("get", key, e)),
        }
    }

    /// sha256 (hex) and size of an object, computed while streaming it; a
    /// missing object is an error.
    pub async fn sha256(&self, key: &str) -> Result<(String, u64)> {
        let r = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| store_err("get", key, e))?;
        hash_stream(key, r).await
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
    /// On a local root a copy is a hard link renamed into place; when `to`
    /// already is that same file (a publication mirrored again after a
    /// crash), there is nothing to do, and trying would leave the link's
    /// `to#N` staging name behind (renaming a link onto its own file is a
    /// no-op that keeps both names).
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        refuse_landing(to)?;
        if let Some(dir) = &self.local {
            if same_file(&dir.join(from), &dir.join(to)).await {
                return Ok(());
            }
        }
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

    /// The sub-folders of a landing prefix that may be followed, and the
    /// entries that may not, with the reason. On a local root the folder is
    /// read entry by entry without following anything: a symbolic link, a
    /// name that is not UTF-8 or holds a control character, or an entry that
    /// cannot be read is skipped with its reason, never followed and never
    /// an error for the others. On an object store, a listing the store
    /// cannot parse (a key with an empty, `.` or `..` segment or a control
    /// character) is narrowed on S3 to the names of `form`, and only the
    /// narrowest prefixes that still hold such a key are skipped, with the
    /// reason: one sender's bad key leaves every other sender's folders
    /// listed. A store without raw-prefix listings reports the prefix
    /// unlistable ([`Listing::Unlistable`]). Only a transient failure
    /// (network, 5xx after retries) is an `Err`.
    pub async fn list_landing_dirs(&self, prefix: &str, form: &NameForm) -> Result<Listing> {
        if let Some(dir) = &self.local {
            let (base, prefix_owned) = (dir.clone(), prefix.to_string());
            return tokio::task::spawn_blocking(move || local_listing(&base, &prefix_owned))
                .await
                .map_err(|e| Error::Root(format!("listing {prefix}: {e}")));
        }
        let p = Path::from(prefix);
        match self.store.list_with_delimiter(Some(&p)).await {
            Ok(res) => {
                let mut dirs: Vec<String> = res
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_string))
                    .collect();
                dirs.sort();
                Ok(Listing::Dirs {
                    dirs,
                    skipped: vec![],
                })
            }
            Err(e) if is_transient(&e) => Err(store_err("list", prefix, e)),
            Err(e) => match &self.paged {
                None => Ok(Listing::Unlistable(short_store_error(&e))),
                Some(paged) => {
                    let (dirs, bad) = paged.narrowed(prefix, form).await?;
                    let mut skipped = vec![(
                        "*".to_string(),
                        format!(
                            "a key here cannot be listed ({}); only names {}... were looked for and read",
                            short_store_error(&e),
                            form.head
                        ),
                    )];
                    skipped.extend(bad.into_iter().map(|(name, reason)| {
                        let why = format!(
                            "a key whose name starts so and goes on cannot be listed ({reason}); such names are not read"
                        );
                        (crate::display::printable(&name).into_owned(), why)
                    }));
                    Ok(Listing::Dirs { dirs, skipped })
                }
            },
        }
    }

    /// Whether `key` is a plain file that may be read as part of an upload:
    /// `None` when absent, `Some(Err(reason))` for anything else than a
    /// regular file (a symbolic link, a folder, a device or pipe) on a local
    /// root. Object stores only hold objects: present means readable.
    pub async fn regular_file(
        &self,
        key: &str,
    ) -> Result<Option<std::result::Result<u64, String>>> {
        let Some(dir) = &self.local else {
            return Ok(self.head(key).await?.map(|m| Ok(m.size)));
        };
        let path = dir.join(key);
        let shown = crate::display::printable(key).into_owned();
        let meta = match tokio::fs::symlink_metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_permanent_io(&e) => {
                return Ok(Some(Err(format!("{shown} cannot be opened ({e})"))))
            }
            Err(e) => {
                return Err(Error::Root(format!("{}: {shown}: {e}", self.display)));
            }
        };
        let t = meta.file_type();
        if t.is_symlink() {
            return Ok(Some(Err(format!(
                "{shown} is a symbolic link; an upload holds regular files only, links are not followed"
            ))));
        }
        if !t.is_file() {
            return Ok(Some(Err(format!(
                "{shown} is not a regular file (a folder, pipe or device)"
            ))));
        }
        Ok(Some(Ok(meta.len())))
    }

    /// Removes the leftovers of writes a crash interrupted under `prefix`
    /// (a local root writes `name#N` and renames it into place; a killed
    /// writer leaves the `#N` file, which listings hide, so nothing else
    /// would ever remove it). Object stores keep no such leftovers. Only
    /// for prefixes outside `landing/`, under the lease (no write in flight).
    pub async fn remove_strays(&self, prefix: &str) -> Result<usize> {
        refuse_landing(prefix)?;
        let Some(dir) = &self.local else {
            return Ok(0);
        };
        let path = dir.join(prefix);
        tokio::task::spawn_blocking(move || remove_stray_files(&path))
            .await
            .map_err(|e| Error::Root(format!("tidying {prefix}: {e}")))
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
    pub async fn finish(mut self, key: &str) -> Result<PublishedFile> {
        self.inner
            .shutdown()
            .await
            .map_err(|e| Error::encode(key, e))?;
        Ok(PublishedFile {
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

/// What [`Root::list_landing_dirs`] found in one prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    /// Sub-folders that may be followed (sorted), and entries skipped with their reason.
    Dirs {
        /// Folder names (the last segment only).
        dirs: Vec<String>,
        /// (shown name, reason) of every entry not followed.
        skipped: Vec<(String, String)>,
    },
    /// The store could not list this prefix (a key it cannot represent): why.
    Unlistable(String),
}

fn local_listing(base: &std::path::Path, prefix: &str) -> Listing {
    let mut dir = base.to_path_buf();
    for part in prefix.trim_end_matches('/').split('/') {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Listing::Unlistable(format!("{part} is a symbolic link; not followed"))
            }
            Ok(m) if !m.is_dir() => return Listing::Unlistable(format!("{part} is not a folder")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Listing::Dirs {
                    dirs: vec![],
                    skipped: vec![],
                }
            }
            Err(e) => return Listing::Unlistable(format!("cannot be read ({e})")),
        }
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => return Listing::Unlistable(format!("cannot be read ({e})")),
    };
    let (mut dirs, mut skipped) = (vec![], vec![]);
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                skipped.push(("?".to_string(), format!("an entry cannot be read ({e})")));
                continue;
            }
        };
        let raw = entry.file_name();
        let Some(name) = raw.to_str() else {
            let shown = crate::display::printable(&raw.to_string_lossy()).into_owned();
            skipped.push((shown, "name is not valid UTF-8; not read".to_string()));
            continue;
        };
        let shown = crate::display::printable(name).into_owned();
        match entry.file_type() {
            Ok(t) if t.is_symlink() => {
                skipped.push((shown, "is a symbolic link; not followed".to_string()))
            }
            Ok(t) if t.is_dir() => {
                if name.chars().any(char::is_control) {
                    skipped.push((shown, "name holds a control character; not read".into()));
                } else {
                    dirs.push(name.to_string());
                }
            }
            Ok(_) => {}
            Err(e) => skipped.push((shown, format!("cannot be read ({e})"))),
        }
    }
    dirs.sort();
    skipped.sort();
    Listing::Dirs { dirs, skipped }
}

/// Deletes every `name#N` leftover under `dir` (see [`Root::remove_strays`]).
fn remove_stray_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(t) = entry.file_type() else { continue };
        if t.is_dir() {
            removed += remove_stray_files(&entry.path());
        } else if is_stray_name(&entry.file_name().to_string_lossy())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// `name#N`: a local write's staging file (object_store's `LocalFileSystem`).
fn is_stray_name(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(stem, n)| {
        !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether two local paths name the same file (one inode, hard-linked).
async fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (tokio::fs::metadata(a).await, tokio::fs::metadata(b).await) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Local I/O failures that retrying cannot cure (the name itself is the problem).
fn is_permanent_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), NotADirectory | InvalidInput | IsADirectory)
        || matches!(e.raw_os_error(), Some(36 | 40 | 20 | 21 | 22))
}

/// Whether a store failure may pass if tried again (network, throttling,
/// 5xx, local I/O trouble), as opposed to one the request itself causes (a
/// key the store cannot represent, a name too long, a path through a
/// non-folder). Unknown failures count as transient: a sender's upload is
/// only rejected for a reason that is the sender's.
pub fn is_transient(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::InvalidPath { .. } | E::NotFound { .. } | E::AlreadyExists { .. } => false,
        E::NotSupported { .. } | E::NotImplemented { .. } => false,
        _ => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(c) = cause {
                if let Some(io) = c.downcast_ref::<std::io::Error>() {
                    return !is_permanent_io(io);
                }
                if c.downcast_ref::<object_store::path::Error>().is_some() {
                    return false;
                }
                cause = c.source();
            }
            true
        }
    }
}

/// Whether an error is a store or I/O failure underneath, and then whether
/// it is transient (see [`is_transient`]); `None` when neither appears in
/// its chain (an encoding or logic failure of junkrecon's own).
pub fn store_failure(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(s) = c.downcast_ref::<object_store::Error>() {
            return Some(is_transient(s));
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(!is_permanent_io(io));
        }
        cause = c.source();
    }
    None
}

/// A store error in one line, with the S3 error code when the store sent an
/// XML error body (`404 Not Found: <?xml ...` otherwise hides it).
pub fn short_store_error(e: &object_store::Error) -> String {
    let text = e.to_string();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string());
    let first = text.lines().next().unwrap_or(&text);
    let first = first.split("<?xml").next().unwrap_or(first).trim_end();
    let first = crate::display::printable(first).into_owned();
    match code {
        Some(code) => format!("{first} {code}"),
        None => first,
    }
}

fn refuse_landing(key: &str) -> Result<()> {
    if crate::guard::is_landing(key) {
        return Err(Error::Root(format!(
            "refusing to write or delete {key}: landing/ belongs to the senders"
        )));
    }
    Ok(())
}

/// sha256 (hex) and size of a read object's bytes, chunk by chunk.
async fn hash_stream(key: &str, res: object_store::GetResult) -> Result<(String, u64)> {
    let mut stream = res.into_stream();
    let mut h = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| store_err("get", key, e))?
    {
        bytes += chunk.len() as u64;
        h.update(chunk);
    }
    Ok((hex::encode(h.finalize()), bytes))
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
    fn stray_names_are_only_local_staging_files() {
        assert!(is_stray_name("flags.csv#0"));
        assert!(is_stray_name("_PUBLISHED.json#12"));
        assert!(!is_stray_name("flags.csv"));
        assert!(!is_stray_name("#1"));
        assert!(!is_stray_name("a#b"));
        assert!(!is_stray_name("a#"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn local_listing_skips_links_and_bad_names_and_lists_the_rest() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("landing/subscribers");
        std::fs::create_dir_all(base.join("carrier=GOOD")).unwrap();
        std::fs::create_dir_all(base.join("carrier=A\nB")).unwrap();
        std::fs::create_dir_all(base.join(std::ffi::OsStr::from_bytes(b"carrier=\xff"))).unwrap();
        std::os::unix::fs::symlink(dir.path(), base.join("carrier=LINK")).unwrap();
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        let root = Root::open(dir.path().to_str().unwrap()).unwrap();
        let Listing::Dirs { dirs, skipped } = root
            .list_landing_dirs("landing/subscribers", &NameForm::source("carrier"))
            .await
            .unwrap()
        else {
            panic!("unlistable")
        };
        assert_eq!(dirs, vec!["carrier=GOOD".to_string()]);
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(skipped.iter().all(|(n, _)| !n.contains('\n')));
        // A linked folder on the way is not followed either.
        std::os::unix::fs::symlink(
            base.join("carrier=GOOD"),
            dir.path().join("landing/accounts"),
        )
        .unwrap();
        assert!(matches!(
            root.list_landing_dirs("landing/accounts", &NameForm::source("bank"))
                .await
                .unwrap(),
            Listing::Unlistable(_)
        ));
    }

    #[test]
    fn missing_root_is_an_error() {
        let err = Root::open("/definitely/not/here").unwrap_err();
        assert!(err.to_string().contains("not a readable directory"));
    }
}
