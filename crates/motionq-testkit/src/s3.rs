//! An S3-compatible server for tests: `s3s-fs` in this process on 127.0.0.1:0, SigV4 checked
//! with fixed test credentials, objects stored as files under a temp dir (a bucket is a
//! directory). Pinned to s3s 0.14.1 (later versions need a newer rustc; see TOOLING.md).

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Access key id the server accepts.
pub const S3_ACCESS_KEY: &str = "MOTIONQTESTACCESSKEY";
/// Secret key the server accepts.
pub const S3_SECRET_KEY: &str = "motionq-test-secret-key-0123456789";
/// The bucket created at start.
pub const S3_BUCKET: &str = "motionq-test";

/// A running server; stopped when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where objects are stored (`<root>/<bucket>/<key>`).
    pub root: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Starts the server with the bucket [`S3_BUCKET`].
    pub async fn start() -> Result<S3Server> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;
        use s3s::auth::SimpleAuth;
        use s3s::service::S3ServiceBuilder;

        let root = tempfile::tempdir().context("temp dir for the S3 server")?;
        std::fs::create_dir(root.path().join(S3_BUCKET)).context("create the test bucket")?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| anyhow::anyhow!("s3s-fs root: {e:?}"))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(S3Server {
            endpoint,
            root,
            task,
        })
    }

    /// `object_store` S3 options for this server: endpoint, region, plain HTTP, path-style
    /// requests and the test credentials.
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("endpoint", self.endpoint.as_str()),
            ("region", "us-east-1"),
            ("allow_http", "true"),
            ("virtual_hosted_style_request", "false"),
            ("access_key_id", S3_ACCESS_KEY),
            ("secret_access_key", S3_SECRET_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
