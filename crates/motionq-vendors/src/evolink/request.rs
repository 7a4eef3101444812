//! Building EvoLink requests.

use motionq_core::vendor::MAX_CALLBACK_URL_LEN;
use motionq_core::{JobSpec, Tier, Vendor};

use super::wire::{CreateRequest, ModelParams, MODEL};
use crate::adapter::{CreateContext, TaskRef};
use crate::common::{check_job, require_url};
use crate::error::AdapterError;
use crate::http::{encode_component, AuthScheme, HttpRequestSpec};

/// `POST /v1/videos/generations`.
pub fn build_create(job: &JobSpec, ctx: &CreateContext) -> Result<HttpRequestSpec, AdapterError> {
    let checked = check_job(Vendor::Evolink, job)?;
    let image = require_url(Vendor::Evolink, &checked.image)?;
    if let Some(cb) = &ctx.callback_url {
        if cb.len() > MAX_CALLBACK_URL_LEN {
            return Err(AdapterError::Invalid {
                vendor: Vendor::Evolink,
                field: "callback_url",
                reason: format!("{} characters, at most {MAX_CALLBACK_URL_LEN}", cb.len()),
            });
        }
    }
    let body = CreateRequest {
        model: MODEL,
        prompt: checked.prompt,
        image_urls: [image],
        video_urls: [job.video_url.trim()],
        quality: match job.tier {
            Tier::Std => "720p",
            Tier::Pro => "1080p",
        },
        model_params: ModelParams {
            character_orientation: job.orientation.as_str(),
            keep_sound: job.keep_sound,
        },
        callback_url: ctx.callback_url.as_deref(),
    };
    Ok(HttpRequestSpec::post(
        "/v1/videos/generations".into(),
        AuthScheme::Bearer,
        serde_json::to_value(body).expect("plain structs always serialise"),
    ))
}

/// `GET /v1/tasks/{id}`.
pub fn build_query(task: &TaskRef) -> HttpRequestSpec {
    HttpRequestSpec::get(
        format!("/v1/tasks/{}", encode_component(&task.task_id)),
        AuthScheme::Bearer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::job;
    use motionq_core::Orientation;
    use serde_json::json;

    fn ctx() -> CreateContext {
        CreateContext {
            idempotency_key: "c1-job-1-g0".into(),
            callback_url: None,
        }
    }

    #[test]
    fn create_body_matches_the_docs_example() {
        // VENDORS.md §1.2 example `hd_no_sound`.
        let mut j = job();
        j.prompt = Some("A robot performing martial arts".into());
        j.image = "https://example.com/robot.png".into();
        j.video_url = "https://example.com/martial-arts.mp4".into();
        j.tier = Tier::Pro;
        j.keep_sound = Some(false);
        let spec = build_create(&j, &ctx()).unwrap();
        assert_eq!(spec.method, reqwest::Method::POST);
        assert_eq!(spec.path_and_query, "/v1/videos/generations");
        assert_eq!(spec.auth, AuthScheme::Bearer);
        let expected: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/evolink/create_request_hd_no_sound.json"
        ))
        .unwrap();
        assert_eq!(spec.body.unwrap(), expected);
    }

    #[test]
    fn minimal_body_and_callback() {
        let mut j = job();
        j.orientation = Orientation::Image;
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "k".into(),
                callback_url: Some("https://hooks.example.com/evolink/c1/job-1".into()),
            },
        )
        .unwrap();
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "model": "kling-v3-motion-control",
                "image_urls": ["https://example.com/character.png"],
                "video_urls": ["https://example.com/motion.mp4"],
                "quality": "720p",
                "model_params": {"character_orientation": "image"},
                "callback_url": "https://hooks.example.com/evolink/c1/job-1"
            })
        );
    }

    #[test]
    fn rejects_what_evolink_cannot_express() {
        let mut j = job();
        j.image = "data:image/png;base64,iVBORw0KGgo".into();
        assert_eq!(build_create(&j, &ctx()).unwrap_err().field(), "image");
        let mut j = job();
        j.negative_prompt = Some("blurry".into());
        assert_eq!(
            build_create(&j, &ctx()).unwrap_err().field(),
            "negative_prompt"
        );
        let mut j = job();
        j.cfg_scale = Some(0.5);
        assert_eq!(build_create(&j, &ctx()).unwrap_err().field(), "cfg_scale");
        let c = CreateContext {
            idempotency_key: "k".into(),
            callback_url: Some(format!("https://x.example/{}", "a".repeat(2100))),
        };
        assert_eq!(
            build_create(&job(), &c).unwrap_err().field(),
            "callback_url"
        );
    }

    #[test]
    fn query_path_encodes_the_id() {
        let spec = build_query(&TaskRef {
            task_id: "task-unified-1757169743-7cvnl5zw".into(),
            tier: Tier::Std,
        });
        assert_eq!(
            spec.path_and_query,
            "/v1/tasks/task-unified-1757169743-7cvnl5zw"
        );
        assert_eq!(spec.method, reqwest::Method::GET);
        assert!(spec.body.is_none());
        let spec = build_query(&TaskRef {
            task_id: "a/b?c".into(),
            tier: Tier::Std,
        });
        assert_eq!(spec.path_and_query, "/v1/tasks/a%2Fb%3Fc");
    }
}
