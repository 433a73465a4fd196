//! The rule that uploads are never modified, built into the store: every
//! [`crate::store::Root`] hands its callers (its own methods, raw writers,
//! DataFusion) a store wrapped in [`LandingGuard`], which refuses every put,
//! multipart upload, copy, rename and delete whose target is under
//! `landing/`. Reads pass through. Only `generate`, which plays the senders,
//! opens a root without it. Must never alter what it forwards.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Whether a key (relative to the root) is under `landing/`.
pub fn is_landing(key: &str) -> bool {
    key == "landing" || key.starts_with("landing/")
}

fn refused(location: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: location.to_string(),
        source: "landing/ belongs to the senders: junkrecon never writes, moves or deletes there"
            .into(),
    }
}

fn check(location: &Path) -> object_store::Result<()> {
    match is_landing(location.as_ref()) {
        true => Err(refused(location)),
        false => Ok(()),
    }
}

/// A store that refuses every change under `landing/`.
#[derive(Debug)]
pub struct LandingGuard {
    inner: Arc<dyn ObjectStore>,
}

impl LandingGuard {
    /// Wraps `inner`, whose keys are relative to the root.
    pub fn new(inner: Arc<dyn ObjectStore>) -> LandingGuard {
        LandingGuard { inner }
    }
}

impl fmt::Display for LandingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LandingGuard({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LandingGuard {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // A refused key is an error item: the whole delete fails (the
        // store may skip the keys batched with it), and nothing under
        // landing/ is deleted.
        let checked = locations.map(|l| l.and_then(|p| check(&p).map(|()| p)));
        self.inner.delete_stream(checked.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
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
        check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        check(from)?;
        check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn every_change_under_landing_is_refused_and_the_rest_passes() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let upload = Path::from("landing/subscribers/carrier=X/date=2026-11-20/part-0.parquet");
        inner.put(&upload, "sender's".into()).await.unwrap();
        let g = LandingGuard::new(inner.clone());
        let refused = |r: object_store::Result<()>| {
            assert!(
                matches!(r, Err(object_store::Error::PermissionDenied { .. })),
                "{r:?}"
            )
        };
        refused(g.put(&upload, "x".into()).await.map(|_| ()));
        refused(
            g.put(&Path::from("landing/new"), "x".into())
                .await
                .map(|_| ()),
        );
        refused(g.put_multipart(&upload).await.map(|_| ()));
        refused(g.copy(&Path::from("work/a"), &upload).await);
        refused(g.rename(&upload, &Path::from("work/b")).await);
        refused(g.delete(&upload).await);
        // Reads, and changes elsewhere, pass.
        assert_eq!(
            g.get(&upload).await.unwrap().bytes().await.unwrap(),
            "sender's"
        );
        g.put(&Path::from("work/a"), "ok".into()).await.unwrap();
        g.copy(&upload, &Path::from("work/c")).await.unwrap();
        g.delete(&Path::from("work/a")).await.unwrap();
        assert!(!is_landing("landingx/a") && is_landing("landing") && is_landing("landing/a"));
        assert_eq!(
            inner.get(&upload).await.unwrap().bytes().await.unwrap(),
            "sender's"
        );
    }
}
