//! S3 credentials from the standard `AWS_*` environment variables, endpoint and path style
//! from options: the usual MinIO set-up. A test binary of its own, because it changes the
//! process environment (before any thread that could read it is started).

mod common;

use common::{sha256_hex, S3Server, SourceServer};
use motionq_collect::{CollectOptions, CollectRequest, Collector, Storage, StorageConfig};

#[test]
fn s3_credentials_come_from_the_environment() {
    std::env::set_var("AWS_ACCESS_KEY_ID", common::S3_ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", common::S3_SECRET_KEY);
    std::env::set_var("AWS_REGION", "us-east-1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s3 = S3Server::start().await;
        let src = SourceServer::start().await;
        // No credentials in the config: only what an operator puts in MOTIONQ__STORAGE__*.
        let config = StorageConfig::new(format!("s3://{}/from-env", common::S3_BUCKET))
            .with_option("endpoint", &s3.endpoint)
            .with_option("allow_http", "true")
            .with_option("virtual_hosted_style_request", "false");
        let storage = Storage::from_config(&config).unwrap();
        let shown = format!("{storage:?} {config:?}");
        assert!(!shown.contains(common::S3_SECRET_KEY), "{shown}");

        let video = motionq_media::mp4(&motionq_media::VideoSpec::new(3.0, 720, 1280));
        let url = src.put_file("env.mp4", video.clone());
        let done = Collector::new(storage.clone(), common::client(), CollectOptions::default())
            .collect(&CollectRequest {
                campaign: "c".into(),
                job_id: "j".into(),
                url,
                expires_at: None,
                sidecar: serde_json::Value::Null,
            })
            .await
            .expect("collect with credentials from the environment");
        assert_eq!(done.sha256, sha256_hex(&video));
        assert_eq!(
            done.url,
            format!("s3://{}/from-env/c/j.mp4", common::S3_BUCKET)
        );
        // And the object really is in the bucket directory of the S3 server.
        let on_disk = std::fs::read(
            s3.root
                .path()
                .join(common::S3_BUCKET)
                .join("from-env/c/j.mp4"),
        )
        .unwrap();
        assert_eq!(sha256_hex(&on_disk), done.sha256);
    });
}
