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
        if !location.as_ref().starts_with(&self.prefix) {
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
