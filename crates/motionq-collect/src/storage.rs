//! Object storage: configuration, key layout and the few operations the collector needs.
//!
//! [`Storage`] wraps one `object_store` backend plus a key prefix. It is cheap to clone
//! (an `Arc` inside) and safe to share between tasks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::key::sanitize_segment;

/// Where outputs are stored: a URL plus backend options.
///
/// Deserialisable, so it can sit in the `[storage]` section of the motionq config
/// (`MOTIONQ__STORAGE__URL`, `MOTIONQ__STORAGE__OPTIONS__ENDPOINT`, ...).
///
/// `Debug` shows option values only for options known to hold no secret (endpoint, region,
/// flags); every other value prints as `***`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// `file:///abs/dir`, a bare path (`./out`, `/data/motionq`), `memory://`,
    /// `s3://bucket/prefix` (also `s3a://`), `gs://bucket/prefix`,
    /// `az://container/prefix` (also `azure://`, `abfs://`, `abfss://`, `adl://`).
    pub url: String,
    /// Passed to the backend's `object_store` builder as config keys, after its `from_env()`
    /// (so they override the environment). S3: `endpoint`, `region`, `allow_http`,
    /// `virtual_hosted_style_request`, `access_key_id`, `secret_access_key`, `token`, ...;
    /// GCS: `service_account_path`, ...; Azure: `account_name`, `access_key`, ...
    /// An option the backend does not know is an error (a typo must not be ignored).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl StorageConfig {
    /// A config with no options.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: BTreeMap::new(),
        }
    }

    /// Adds one backend option (builder style).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }
}

/// Options whose values are safe to print. Anything else (keys, tokens, SAS, passwords,
/// service account JSON, ...) is masked, so a new secret-bearing option is masked by default.
const PRINTABLE_OPTIONS: &[&str] = &[
    "endpoint",
    "aws_endpoint",
    "endpoint_url",
    "aws_endpoint_url",
    "region",
    "aws_region",
    "default_region",
    "aws_default_region",
    "allow_http",
    "aws_allow_http",
    "virtual_hosted_style_request",
    "aws_virtual_hosted_style_request",
    "bucket",
    "aws_bucket",
    "account_name",
    "azure_storage_account_name",
    "use_emulator",
    "timeout",
    "connect_timeout",
];

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if PRINTABLE_OPTIONS.contains(&k.to_ascii_lowercase().as_str()) {
                    v.as_str()
                } else {
                    "***"
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("StorageConfig")
            .field("url", &redact_url(&self.url))
            .field("options", &options)
            .finish()
    }
}

/// Which `object_store` implementation a [`Storage`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local directory (`LocalFileSystem`): multipart uploads go to a staging file next to
    /// the target and are renamed onto it on completion.
    Local,
    /// Process memory (`InMemory`): tests and dry runs.
    Memory,
    /// Amazon S3 or an S3-compatible server (MinIO, s3s, ...).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage / ADLS Gen2.
    Azure,
}

impl Backend {
    /// Remote object stores reject multipart parts below 5 MiB (except the last one).
    pub fn min_part_size(self) -> usize {
        match self {
            Backend::Local | Backend::Memory => 1,
            Backend::S3 | Backend::Gcs | Backend::Azure => 5 * 1024 * 1024,
        }
    }

    /// The local and in-memory stores reject attributes such as `Content-Type`.
    fn supports_attributes(self) -> bool {
        !matches!(self, Backend::Local | Backend::Memory)
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Memory => "memory",
            Backend::S3 => "s3",
            Backend::Gcs => "gcs",
            Backend::Azure => "azure",
        }
    }
}

/// Errors from configuring or using storage.
///
/// Configuration errors ([`InvalidUrl`](Self::InvalidUrl), [`UnsupportedScheme`](Self::UnsupportedScheme),
/// [`UnknownOption`](Self::UnknownOption), [`CreateDir`](Self::CreateDir),
/// [`Build`](Self::Build)) happen at start-up and are not retried: fix the config.
/// [`Backend`](Self::Backend) errors happen per operation; inside a collect they are classed
/// [`ErrorClass::Storage`](crate::ErrorClass::Storage) and retried with backoff.
///
/// Messages never contain credentials: URLs are shown without user info and query, and
/// option values are never included.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage URL could not be parsed, or a part of it is unusable. Not retried.
    #[error("storage url `{url}`: {part} is invalid: {reason}")]
    InvalidUrl {
        /// The URL with user info and query removed.
        url: String,
        /// Which part is bad: `url`, `scheme`, `host (bucket)`, `path (prefix)`.
        part: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL scheme names no backend this crate builds. Not retried.
    #[error("storage url scheme `{scheme}` is not supported (use file, memory, s3, gs or az)")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// An option the backend does not recognise (names the option, never its value). Not retried.
    #[error("storage option `{key}` is not known to the {backend} backend")]
    UnknownOption {
        /// Backend name.
        backend: &'static str,
        /// The option key as given.
        key: String,
    },
    /// The local storage directory could not be created. Not retried.
    #[error("cannot create storage directory `{path}`: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The backend builder rejected the configuration (missing bucket, bad endpoint, ...).
    /// Not retried.
    #[error("cannot configure {backend} storage: {source}")]
    Build {
        /// Backend name.
        backend: &'static str,
        /// The builder's error.
        #[source]
        source: object_store::Error,
    },
    /// Removing stale local staging files failed. Harmless to retry later.
    #[error("cannot clean up staging files at `{path}`: {source}")]
    Cleanup {
        /// The file or directory involved.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An operation on the store failed (after `object_store`'s own request retries).
    /// Retried by the collect stage (class `Storage`).
    #[error("storage {op} `{key}` failed: {source}")]
    Backend {
        /// `head`, `get`, `put`, `multipart`, `delete`, `list`, ...
        op: &'static str,
        /// The object key (or prefix) involved.
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

impl StorageError {
    fn backend(op: &'static str, key: &Path, source: object_store::Error) -> Self {
        StorageError::Backend {
            op,
            key: key.to_string(),
            source,
        }
    }
}

/// One configured object store plus the key prefix outputs go under.
///
/// Keys passed to the methods below are full keys inside the store, as returned by
/// [`Storage::object_key`] (they already include the prefix).
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    /// Type-erased backend; holds the credentials, so it is never printed.
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Base of [`Storage::object_url`]: `file:///abs/dir/`, `s3://bucket/`, `memory:///`.
    /// Never contains credentials.
    root_url: Url,
    /// Key prefix (empty for local directories, whose directory is the root).
    prefix: Path,
    /// The directory of a local store, for [`Storage::remove_stale_staging`].
    local_root: Option<std::path::PathBuf>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.inner.backend)
            .field("root_url", &self.inner.root_url.as_str())
            .field("prefix", &self.inner.prefix.as_ref())
            .finish()
    }
}

impl Storage {
    /// Builds the backend named by `config.url` (see [`StorageConfig`]).
    ///
    /// A local directory (bare path or `file://`) is created if missing. S3, GCS and Azure
    /// read credentials from the standard environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`,
    /// `AZURE_STORAGE_ACCOUNT_NAME`, ...) and then apply `config.options` on top.
    pub fn from_config(config: &StorageConfig) -> Result<Storage, StorageError> {
        let raw = config.url.trim();
        if raw.is_empty() {
            return Err(StorageError::InvalidUrl {
                url: String::new(),
                part: "url",
                reason: "empty".into(),
            });
        }
        // A bare path: no scheme, or something that only looks like one (`C:` never occurs
        // on our Linux targets, so `x:` followed by `//` is the only URL form).
        if !raw.contains("://") && !raw.starts_with("file:") && !raw.starts_with("memory:") {
            return Self::local(std::path::Path::new(raw), config);
        }
        let url = Url::parse(raw).map_err(|e| StorageError::InvalidUrl {
            url: redact_url(raw),
            part: "url",
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(invalid(
                        &url,
                        "host",
                        "a file URL has no host: use file:///abs/path",
                    ));
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| invalid(&url, "path", "not an absolute local path"))?;
                Self::local(&path, config)
            }
            "memory" => {
                reject_options(Backend::Memory, config)?;
                let prefix = prefix_of(&url)?;
                Ok(Self::with_store(
                    Arc::new(InMemory::new()),
                    Backend::Memory,
                    Url::parse("memory:///").expect("static URL parses"),
                    prefix,
                ))
            }
            "s3" | "s3a" => {
                let bucket = bucket_of(&url)?;
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                for (k, v) in &config.options {
                    let key = AmazonS3ConfigKey::from_str(&k.to_ascii_lowercase())
                        .map_err(|_| unknown(Backend::S3, k))?;
                    builder = builder.with_config(key, v);
                }
                let store = builder.build().map_err(|source| StorageError::Build {
                    backend: "s3",
                    source,
                })?;
                let root = root_url("s3", bucket);
                Ok(Self::with_store(
                    Arc::new(store),
                    Backend::S3,
                    root,
                    prefix_of(&url)?,
                ))
            }
            "gs" => {
                let bucket = bucket_of(&url)?;
                let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
                for (k, v) in &config.options {
                    let key = GoogleConfigKey::from_str(&k.to_ascii_lowercase())
                        .map_err(|_| unknown(Backend::Gcs, k))?;
                    builder = builder.with_config(key, v);
                }
                let store = builder.build().map_err(|source| StorageError::Build {
                    backend: "gcs",
                    source,
                })?;
                let root = root_url("gs", bucket);
                Ok(Self::with_store(
                    Arc::new(store),
                    Backend::Gcs,
                    root,
                    prefix_of(&url)?,
                ))
            }
            "az" | "azure" | "abfs" | "abfss" | "adl" => {
                bucket_of(&url)?;
                // The Azure builder understands all these URL forms (container, account
                // in `container@account.dfs...`), so hand it the URL without its path.
                let mut base = url.clone();
                base.set_path("");
                base.set_query(None);
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(base.as_str());
                for (k, v) in &config.options {
                    let key = AzureConfigKey::from_str(&k.to_ascii_lowercase())
                        .map_err(|_| unknown(Backend::Azure, k))?;
                    builder = builder.with_config(key, v);
                }
                let store = builder.build().map_err(|source| StorageError::Build {
                    backend: "azure",
                    source,
                })?;
                let root = root_url(url.scheme(), url.host_str().unwrap_or_default());
                Ok(Self::with_store(
                    Arc::new(store),
                    Backend::Azure,
                    root,
                    prefix_of(&url)?,
                ))
            }
            other => Err(StorageError::UnsupportedScheme {
                scheme: other.to_owned(),
            }),
        }
    }

    fn local(dir: &std::path::Path, config: &StorageConfig) -> Result<Storage, StorageError> {
        reject_options(Backend::Local, config)?;
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let canonical = std::fs::canonicalize(dir).map_err(|source| StorageError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let store =
            LocalFileSystem::new_with_prefix(&canonical).map_err(|source| StorageError::Build {
                backend: "local",
                source,
            })?;
        let mut root =
            Url::from_directory_path(&canonical).map_err(|()| StorageError::InvalidUrl {
                url: dir.display().to_string(),
                part: "path",
                reason: "not representable as a file URL".into(),
            })?;
        root.set_query(None);
        Ok(Storage {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                backend: Backend::Local,
                root_url: root,
                prefix: Path::default(),
                local_root: Some(canonical),
            }),
        })
    }

    /// Wraps an already-built store (for callers that build their own, e.g. with a custom
    /// HTTP client). `root_url` must end in `/` and hold no credentials; it is only used to
    /// render [`Storage::object_url`].
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        backend: Backend,
        root_url: Url,
        prefix: Path,
    ) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                store,
                backend,
                root_url,
                prefix,
                local_root: None,
            }),
        }
    }

    /// The backend kind.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The key prefix every object key starts with (may be empty).
    pub fn prefix(&self) -> &Path {
        &self.inner.prefix
    }

    /// The underlying store, for operations this type does not wrap.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The same store with `dir` (a relative, `/`-separated path such as a campaign's
    /// `output_prefix`) appended to the key prefix. Each segment is sanitised like an id and
    /// empty segments are dropped, so the result can never leave the prefix.
    pub fn subdir(&self, dir: &str) -> Storage {
        let mut prefix = self.inner.prefix.clone();
        for seg in dir.split('/').filter(|s| !s.is_empty()) {
            prefix = prefix.join(sanitize_segment(seg).as_str());
        }
        Storage {
            inner: Arc::new(Inner {
                store: self.inner.store.clone(),
                backend: self.inner.backend,
                root_url: self.inner.root_url.clone(),
                prefix,
                local_root: self.inner.local_root.clone(),
            }),
        }
    }

    /// Keys of a job's video and sidecar: `<prefix>/<campaign>/<job>.mp4` and
    /// `<prefix>/<campaign>/<job>.json`, with both ids passed through
    /// [`sanitize_segment`](crate::sanitize_segment) (stable, injective, cannot escape the
    /// prefix).
    pub fn object_key(&self, campaign: &str, job_id: &str) -> (Path, Path) {
        let dir = self
            .inner
            .prefix
            .clone()
            .join(sanitize_segment(campaign).as_str());
        let job = sanitize_segment(job_id);
        (
            dir.clone().join(format!("{job}.mp4").as_str()),
            dir.join(format!("{job}.json").as_str()),
        )
    }

    /// A URL naming the stored object: `file:///abs/dir/c/j.mp4`, `s3://bucket/prefix/c/j.mp4`,
    /// `gs://...`, `az://...`, `memory:///...`. Informational (reports, sidecars); read objects
    /// back through this type.
    pub fn object_url(&self, key: &Path) -> String {
        let mut url = self.inner.root_url.clone();
        {
            // `root_url` always has a path (it is a base URL), so segments are available.
            let mut segs = url
                .path_segments_mut()
                .expect("root_url is a hierarchical URL");
            segs.pop_if_empty();
            for part in key.parts() {
                segs.push(part.as_ref());
            }
        }
        url.to_string()
    }

    /// Size and metadata of an object, `None` if it does not exist.
    pub async fn head(&self, key: &Path) -> Result<Option<ObjectMeta>, StorageError> {
        match self.inner.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::backend("head", key, e)),
        }
    }

    /// The whole object in memory, `None` if it does not exist. Meant for sidecars and tests;
    /// use [`Storage::sha256`] or [`Storage::store`] to read large objects.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>, StorageError> {
        let result = match self.inner.store.get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StorageError::backend("get", key, e)),
        };
        result
            .bytes()
            .await
            .map(Some)
            .map_err(|e| StorageError::backend("get", key, e))
    }

    /// Streams an object and returns its SHA-256 (hex) and length, `None` if it does not
    /// exist. Memory use is one chunk, whatever the size.
    pub async fn sha256(&self, key: &Path) -> Result<Option<(String, u64)>, StorageError> {
        let result = match self.inner.store.get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StorageError::backend("get", key, e)),
        };
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| StorageError::backend("get", key, e))?
        {
            hasher.update(&chunk);
            len += chunk.len() as u64;
        }
        Ok(Some((hex::encode(hasher.finalize()), len)))
    }

    /// Writes a small object in one request (sidecars). Replaces any existing object.
    pub async fn put(
        &self,
        key: &Path,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let mut opts = PutOptions::default();
        if self.inner.backend.supports_attributes() {
            opts.attributes = content_type_attr(content_type);
        }
        self.inner
            .store
            .put_opts(key, PutPayload::from(body), opts)
            .await
            .map(|_| ())
            .map_err(|e| StorageError::backend("put", key, e))
    }

    /// Starts a multipart upload to `key`. Nothing is visible at `key` until the upload
    /// completes; aborting (or, for local directories, dropping) it discards the parts.
    pub async fn start_multipart(
        &self,
        key: &Path,
        content_type: &str,
    ) -> Result<Box<dyn MultipartUpload>, StorageError> {
        let mut opts = PutMultipartOptions::default();
        if self.inner.backend.supports_attributes() {
            opts.attributes = content_type_attr(content_type);
        }
        self.inner
            .store
            .put_multipart_opts(key, opts)
            .await
            .map_err(|e| StorageError::backend("multipart", key, e))
    }

    /// Removes the staging files (`<key>#<n>`) that a local-directory upload leaves behind
    /// when its process is killed mid-upload, if they were last written more than
    /// `older_than` ago (pass the longest time one collect can take, so live uploads of
    /// other workers are left alone). Returns how many were removed. Other backends have
    /// nothing to remove here (S3: use an `AbortIncompleteMultipartUpload` lifecycle rule)
    /// and return 0.
    pub async fn remove_stale_staging(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StorageError> {
        let Some(root) = self.inner.local_root.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || remove_staging_under(&root, older_than))
            .await
            .map_err(|e| StorageError::Cleanup {
                path: String::new(),
                source: std::io::Error::other(e),
            })?
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        match self.inner.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::backend("delete", key, e)),
        }
    }

    /// Every object under `prefix` (a full key prefix, e.g. `storage.prefix()` or a campaign
    /// directory), recursively. Collects the listing into memory: for reports and tests.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, StorageError> {
        let prefix_opt = if prefix.as_ref().is_empty() {
            None
        } else {
            Some(prefix)
        };
        self.inner
            .store
            .list(prefix_opt)
            .try_collect()
            .await
            .map_err(|e| StorageError::backend("list", prefix, e))
    }
}

/// Walks `root` and removes old files named like `object_store`'s local staging files.
fn remove_staging_under(
    root: &std::path::Path,
    older_than: std::time::Duration,
) -> Result<usize, StorageError> {
    let io_err = |path: &std::path::Path, source| StorageError::Cleanup {
        path: path.display().to_string(),
        source,
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| io_err(&path, e))?;
            if meta.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = entry.file_name();
            let is_staging = name
                .to_str()
                .and_then(|n| n.rsplit_once('#'))
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if is_staging && age >= older_than {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    // Finished or cleaned up by its owner meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        }
    }
    Ok(removed)
}

fn content_type_attr(content_type: &str) -> Attributes {
    let mut attrs = Attributes::new();
    attrs.insert(Attribute::ContentType, content_type.to_owned().into());
    attrs
}

fn reject_options(backend: Backend, config: &StorageConfig) -> Result<(), StorageError> {
    match config.options.keys().next() {
        Some(k) => Err(unknown(backend, k)),
        None => Ok(()),
    }
}

fn unknown(backend: Backend, key: &str) -> StorageError {
    StorageError::UnknownOption {
        backend: backend.name(),
        key: key.to_owned(),
    }
}

fn invalid(url: &Url, part: &'static str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl {
        url: redact_url(url.as_str()),
        part,
        reason: reason.into(),
    }
}

fn bucket_of(url: &Url) -> Result<&str, StorageError> {
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(h),
        _ => Err(invalid(
            url,
            "host (bucket)",
            format!("missing: use {}://bucket/prefix", url.scheme()),
        )),
    }
}

fn prefix_of(url: &Url) -> Result<Path, StorageError> {
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            url,
            "query",
            "not allowed: pass settings in `options`",
        ));
    }
    Path::from_url_path(url.path()).map_err(|e| invalid(url, "path (prefix)", e.to_string()))
}

fn root_url(scheme: &str, bucket: &str) -> Url {
    // Both parts were parsed out of a valid URL, so re-joining them parses.
    Url::parse(&format!("{scheme}://{bucket}/")).expect("scheme and host came from a valid URL")
}

/// Removes user info and query (where credentials or SAS tokens could be) from a URL for
/// messages. Input that does not parse as a URL is shown up to its first `?`.
pub(crate) fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                // Both setters only fail for URLs that cannot have credentials at all.
                let _ = url.set_username("***");
                let _ = url.set_password(None);
            }
            if url.query().is_some() {
                url.set_query(Some("***"));
            }
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => raw.split('?').next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_path_and_file_url_create_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let s = Storage::from_config(&StorageConfig::new(dir.to_str().unwrap())).unwrap();
        assert!(dir.is_dir());
        assert_eq!(s.backend(), Backend::Local);
        let dir2 = tmp.path().join("c");
        let url = Url::from_directory_path(&dir2).unwrap();
        Storage::from_config(&StorageConfig::new(url.as_str())).unwrap();
        assert!(dir2.is_dir());
    }

    #[test]
    fn keys_and_urls_follow_the_layout() {
        let s = Storage::from_config(&StorageConfig::new("memory:///out/v1")).unwrap();
        let (mp4, json) = s.object_key("spring", "job-1");
        assert_eq!(mp4.as_ref(), "out/v1/spring/job-1.mp4");
        assert_eq!(json.as_ref(), "out/v1/spring/job-1.json");
        assert_eq!(s.object_url(&mp4), "memory:///out/v1/spring/job-1.mp4");

        let tmp = tempfile::tempdir().unwrap();
        let l = Storage::from_config(&StorageConfig::new(tmp.path().to_str().unwrap())).unwrap();
        let (mp4, _) = l.object_key("c", "../../x");
        let sub = l.subdir("marketing/../2026//");
        let (nested, _) = sub.object_key("c", "j");
        let segs: Vec<&str> = nested.as_ref().split('/').collect();
        assert_eq!(segs.len(), 5, "{nested}");
        assert_eq!(
            (segs[0], segs[2], segs[3], segs[4]),
            ("marketing", "2026", "c", "j.mp4")
        );
        assert!(!segs.contains(&".."), "{nested}");
        let url = Url::parse(&l.object_url(&mp4)).unwrap();
        let file = url.to_file_path().unwrap();
        assert!(file.starts_with(std::fs::canonicalize(tmp.path()).unwrap()));
    }

    #[test]
    fn urls_without_prefix() {
        let m = Storage::from_config(&StorageConfig::new("memory://")).unwrap();
        assert_eq!(m.prefix().as_ref(), "");
        assert_eq!(m.object_key("c", "j").0.as_ref(), "c/j.mp4");
        let s = Storage::from_config(
            &StorageConfig::new("s3://bucket").with_option("region", "us-east-1"),
        )
        .unwrap();
        assert_eq!(s.prefix().as_ref(), "");
        assert_eq!(
            s.object_url(&s.object_key("c", "j").0),
            "s3://bucket/c/j.mp4"
        );
    }

    #[test]
    fn gcs_and_azure_urls_build_and_render() {
        let g = Storage::from_config(
            &StorageConfig::new("gs://gbucket/out").with_option("bearer_token", "tok-secret-1"),
        )
        .unwrap();
        assert_eq!(g.backend(), Backend::Gcs);
        assert_eq!(
            g.object_url(&g.object_key("c", "j").0),
            "gs://gbucket/out/c/j.mp4"
        );
        let a = Storage::from_config(
            &StorageConfig::new("az://container/out")
                .with_option("account_name", "acct")
                .with_option("skip_signature", "true"),
        )
        .unwrap();
        assert_eq!(a.backend(), Backend::Azure);
        assert_eq!(
            a.object_url(&a.object_key("c", "j").1),
            "az://container/out/c/j.json"
        );
        assert!(!format!("{g:?}").contains("tok-secret-1"));
        let e = Storage::from_config(&StorageConfig::new("gs://b/p").with_option("nope", "x"))
            .unwrap_err();
        assert!(
            e.to_string().contains("`nope`") && e.to_string().contains("gcs"),
            "{e}"
        );
    }

    #[test]
    fn s3_url_takes_bucket_prefix_and_options() {
        let cfg = StorageConfig::new("s3://bucket/some/prefix")
            .with_option("endpoint", "http://127.0.0.1:9")
            .with_option("region", "us-east-1")
            .with_option("allow_http", "true")
            .with_option("virtual_hosted_style_request", "false")
            .with_option("access_key_id", "AKIDEXAMPLE")
            .with_option("secret_access_key", "very-secret-value");
        let s = Storage::from_config(&cfg).unwrap();
        assert_eq!(s.backend(), Backend::S3);
        let (mp4, _) = s.object_key("c", "j");
        assert_eq!(s.object_url(&mp4), "s3://bucket/some/prefix/c/j.mp4");
        let dbg = format!("{s:?} {cfg:?}");
        assert!(!dbg.contains("very-secret-value"), "{dbg}");
        assert!(!dbg.contains("AKIDEXAMPLE"), "{dbg}");
        assert!(dbg.contains("127.0.0.1:9"), "endpoint is printable: {dbg}");
    }

    #[test]
    fn errors_name_the_bad_part_and_hide_secrets() {
        let err = |url: &str| {
            Storage::from_config(&StorageConfig::new(url))
                .unwrap_err()
                .to_string()
        };
        assert!(err("s3:///prefix").contains("host (bucket)"));
        assert!(err("ftp://x/y").contains("scheme `ftp`"));
        assert!(err("file://remote/x").contains("host"));
        let e = err("s3://user:hunter2@bucket/p?x-sig=hunter3");
        assert!(!e.contains("hunter2") && !e.contains("hunter3"), "{e}");
        assert!(e.contains("query"), "{e}");

        let e = Storage::from_config(
            &StorageConfig::new("s3://b/p").with_option("secret_acces_key", "hunter4"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("secret_acces_key") && !e.contains("hunter4"),
            "{e}"
        );

        let tmp = tempfile::tempdir().unwrap();
        let e = Storage::from_config(
            &StorageConfig::new(tmp.path().to_str().unwrap()).with_option("endpoint", "x"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`endpoint`") && e.contains("local"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Whatever the ids, both keys are exactly two segments below the prefix, and on a
        /// local directory the files resolve inside the directory.
        #[test]
        fn keys_never_leave_the_prefix(
            campaign in "(\\.|/|\\\\|%2e|[a-z]|\\x00|é){0,40}",
            job in proptest::prelude::any::<String>(),
        ) {
            thread_local! {
                static LOCAL: (tempfile::TempDir, Storage) = {
                    let tmp = tempfile::tempdir().unwrap();
                    let s = Storage::from_config(&StorageConfig::new(tmp.path().to_str().unwrap())).unwrap();
                    (tmp, s)
                };
            }
            let s3 = Storage::from_config(&StorageConfig::new("memory:///out/v1")).unwrap();
            for storage in [s3, LOCAL.with(|(_, s)| s.clone())] {
                let (mp4, json) = storage.object_key(&campaign, &job);
                for key in [&mp4, &json] {
                    proptest::prop_assert!(key.prefix_matches(storage.prefix()));
                    proptest::prop_assert_eq!(
                        key.parts().count(),
                        storage.prefix().parts().count() + 2
                    );
                    let url = Url::parse(&storage.object_url(key)).unwrap();
                    if let Some(root) = &storage.inner.local_root {
                        let file = url.to_file_path().unwrap();
                        proptest::prop_assert!(file.starts_with(root), "{}", file.display());
                        proptest::prop_assert_eq!(file.parent().unwrap().parent().unwrap(), root.as_path());
                    }
                }
            }
        }
    }

    #[test]
    fn prefix_cannot_climb() {
        let e = Storage::from_config(&StorageConfig::new("s3://b/a/../../x"))
            .map(|s| s.prefix().to_string());
        // The URL parser resolves dot segments before we see them; either way the prefix
        // stays inside the bucket.
        match e {
            Ok(p) => assert!(!p.contains(".."), "{p}"),
            Err(e) => assert!(e.to_string().contains("path"), "{e}"),
        }
    }
}
