//! A store wrapper that misbehaves on writes (or reads) under one prefix:
//! they pass, then fail (a dying process, an outage), then pass again, each
//! optionally slowed.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

#[derive(Debug)]
pub struct Flaky {
    pub inner: Arc<dyn ObjectStore>,
    /// Only writes under this prefix count (and fail or slow down).
    pub prefix: String,
    /// Writes that succeed before the failures start.
    pub pass_first: usize,
    /// Writes that fail after those (usize::MAX: all of them, as if the process died).
    pub then_fail: usize,
    /// Added to every counted write.
    pub delay: Duration,
    pub writes: AtomicUsize,
    /// Count (and fail) reads under the prefix instead of writes.
    pub reads: bool,
    /// `prefix` may stand anywhere in the key, not only at its start.
    pub anywhere: bool,
}

impl Flaky {
    /// Every write under `prefix` after `budget` fails.
    pub fn dies_after(inner: Arc<dyn ObjectStore>, prefix: &str, budget: usize) -> Flaky {
        Flaky::new(inner, prefix, budget, usize::MAX, Duration::ZERO)
    }

    /// The first `n` writes under `prefix` fail, then the store recovers.
    pub fn fails_first(inner: Arc<dyn ObjectStore>, prefix: &str, n: usize) -> Flaky {
        Flaky::new(inner, prefix, 0, n, Duration::ZERO)
    }

    /// The first `n` writes whose key holds `part` anywhere fail, then the
    /// store recovers (`part` may name a step written once per attempt, so
    /// that each attempt meets exactly one failure).
    pub fn fails_first_where(inner: Arc<dyn ObjectStore>, part: &str, n: usize) -> Flaky {
        Flaky {
            anywhere: true,
            ..Flaky::new(inner, part, 0, n, Duration::ZERO)
        }
    }

    /// The first `n` reads under `prefix` fail (a store outage while
    /// uploads are read), then the store recovers; writes are untouched.
    pub fn reads_fail_first(inner: Arc<dyn ObjectStore>, prefix: &str, n: usize) -> Flaky {
        Flaky {
            reads: true,
            ..Flaky::new(inner, prefix, 0, n, Duration::ZERO)
        }
    }

    /// Every write under `prefix` takes `delay` longer.
    pub fn slow(inner: Arc<dyn ObjectStore>, prefix: &str, delay: Duration) -> Flaky {
        Flaky::new(inner, prefix, usize::MAX, 0, delay)
    }

    fn new(
        inner: Arc<dyn ObjectStore>,
        prefix: &str,
        pass_first: usize,
        then_fail: usize,
        delay: Duration,
    ) -> Flaky {
        Flaky {
            inner,
            prefix: prefix.into(),
            pass_first,
            then_fail,
            delay,
            writes: AtomicUsize::new(0),
            reads: false,
            anywhere: false,
        }
    }

    async fn spend(&self, location: &Path) -> object_store::Result<()> {
        if self.reads {
            return Ok(());
        }
        self.count(location).await
    }

    async fn spend_read(&self, location: &Path) -> object_store::Result<()> {
        if !self.reads {
            return Ok(());
        }
        self.count(location).await
    }

    async fn count(&self, location: &Path) -> object_store::Result<()> {
        let key = location.as_ref();
        let hit = if self.anywhere {
            key.contains(&self.prefix)
        } else {
            key.starts_with(&self.prefix)
        };
        if !hit {
            return Ok(());
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n >= self.pass_first && n - self.pass_first < self.then_fail {
            return Err(object_store::Error::Generic {
                store: "Flaky",
                source: "injected write failure".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.spend(location).await?;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.spend(location).await?;
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.spend_read(location).await?;
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.spend(to).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// A process that dies at one change of the store: the first `budget`
/// changes (puts, multipart uploads, copies, deletes) under `prefixes`
/// succeed; from the next one on, every operation anywhere fails, reads
/// included, as if the process were gone. With `budget` = usize::MAX it
/// only counts, so a clean run tells how many steps its path has.
#[derive(Debug, Clone)]
pub struct Dying {
    pub inner: Arc<dyn ObjectStore>,
    pub prefixes: Vec<String>,
    pub budget: usize,
    pub changes: Arc<AtomicUsize>,
    dead: Arc<std::sync::atomic::AtomicBool>,
}

fn gone() -> object_store::Error {
    object_store::Error::Generic {
        store: "Dying",
        source: "injected crash: the process is gone".into(),
    }
}

impl Dying {
    pub fn new(inner: Arc<dyn ObjectStore>, prefixes: &[&str], budget: usize) -> Dying {
        Dying {
            inner,
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            budget,
            changes: Arc::new(AtomicUsize::new(0)),
            dead: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Whether the process still answers at `location`. The lease
    /// (`locks/`) is exempt: a real crash's lease lapses after `lease_secs`;
    /// here it is given back, so the next run need not wait that long.
    fn alive(&self, location: Option<&Path>) -> object_store::Result<()> {
        let lease = location.is_some_and(|l| l.as_ref().starts_with("locks"));
        match self.dead.load(Ordering::SeqCst) && !lease {
            true => Err(gone()),
            false => Ok(()),
        }
    }

    /// Counts one change at `location`; the one past the budget kills the process.
    fn change(&self, location: &Path) -> object_store::Result<()> {
        self.alive(Some(location))?;
        if !self
            .prefixes
            .iter()
            .any(|p| location.as_ref().starts_with(p))
        {
            return Ok(());
        }
        if self.changes.fetch_add(1, Ordering::SeqCst) >= self.budget {
            self.dead.store(true, Ordering::SeqCst);
            return Err(gone());
        }
        Ok(())
    }
}

impl fmt::Display for Dying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dying({})", self.inner)
    }
}

/// A multipart upload that fails once its process has died.
#[derive(Debug)]
struct DyingUpload {
    inner: Box<dyn MultipartUpload>,
    dead: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl MultipartUpload for DyingUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        if self.dead.load(Ordering::SeqCst) {
            return Box::pin(async { Err(gone()) });
        }
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(gone());
        }
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(gone());
        }
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Dying {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.change(location)?;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.change(location)?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DyingUpload {
            inner,
            dead: self.dead.clone(),
        }))
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.alive(Some(location))?;
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        let me = self.clone();
        // One delete at a time, each counted as a change before it is made.
        let checked = locations.map(move |l| l.and_then(|p| me.change(&p).map(|()| p)));
        let inner = self.inner.clone();
        checked
            .then(move |l| {
                let inner = inner.clone();
                async move {
                    let p = l?;
                    let one = futures::stream::once(futures::future::ready(Ok(p))).boxed();
                    inner
                        .delete_stream(one)
                        .next()
                        .await
                        .unwrap_or_else(|| Err(gone()))
                }
            })
            .boxed()
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        use futures::StreamExt;
        match self.alive(prefix) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
        }
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.alive(prefix)?;
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.change(to)?;
        self.inner.copy_opts(from, to, options).await
    }
}
