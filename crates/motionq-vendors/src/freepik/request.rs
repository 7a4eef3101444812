//! Building Freepik requests.

use motionq_core::{JobSpec, Tier, Vendor};

use super::wire::{CreateRequest, API_KEY_HEADER};
use crate::adapter::{CreateContext, TaskRef};
use crate::common::{check_job, require_url};
use crate::error::AdapterError;
use crate::http::{encode_component, AuthScheme, HttpRequestSpec};

const AUTH: AuthScheme = AuthScheme::ApiKeyHeader(API_KEY_HEADER);

/// The tier's endpoint, `/v1/ai/video/kling-v3-motion-control-{pro|std}`.
pub fn tier_path(tier: Tier) -> &'static str {
    match tier {
        Tier::Pro => "/v1/ai/video/kling-v3-motion-control-pro",
        Tier::Std => "/v1/ai/video/kling-v3-motion-control-std",
    }
}

/// `POST` to the tier's endpoint.
pub fn build_create(job: &JobSpec, ctx: &CreateContext) -> Result<HttpRequestSpec, AdapterError> {
    let checked = check_job(Vendor::Freepik, job)?;
    let image = require_url(Vendor::Freepik, &checked.image)?;
    let body = CreateRequest {
        image_url: image,
        video_url: job.video_url.trim(),
        prompt: checked.prompt,
        character_orientation: job.orientation.as_str(),
        cfg_scale: job.cfg_scale,
        webhook_url: ctx.callback_url.as_deref(),
    };
    Ok(HttpRequestSpec::post(
        tier_path(job.tier).into(),
        AUTH,
        serde_json::to_value(body).expect("plain structs always serialise"),
    ))
}

/// `GET {tier endpoint}/{task-id}`.
pub fn build_query(task: &TaskRef) -> HttpRequestSpec {
    HttpRequestSpec::get(
        format!(
            "{}/{}",
            tier_path(task.tier),
            encode_component(&task.task_id)
        ),
        AUTH,
    )
}

/// `GET {tier endpoint}`: the tier's task list.
pub fn build_list(tier: Tier) -> HttpRequestSpec {
    HttpRequestSpec::get(tier_path(tier).into(), AUTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::job;
    use motionq_core::Orientation;
    use serde_json::json;

    #[test]
    fn body_path_and_auth_per_tier() {
        let mut j = job();
        j.image = "https://example.com/character.webp".into();
        j.video_url = "https://example.com/motion.webm".into();
        j.prompt = Some("dance".into());
        j.cfg_scale = Some(0.7);
        j.orientation = Orientation::Image;
        j.tier = Tier::Pro;
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "k".into(),
                callback_url: Some("https://hooks.example.com/freepik".into()),
            },
        )
        .unwrap();
        assert_eq!(
            spec.path_and_query,
            "/v1/ai/video/kling-v3-motion-control-pro"
        );
        assert_eq!(spec.auth, AuthScheme::ApiKeyHeader("x-freepik-api-key"));
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "image_url": "https://example.com/character.webp",
                "video_url": "https://example.com/motion.webm",
                "prompt": "dance",
                "character_orientation": "image",
                "cfg_scale": 0.7,
                "webhook_url": "https://hooks.example.com/freepik"
            })
        );
        let spec = build_create(
            &job(),
            &CreateContext {
                idempotency_key: "k".into(),
                callback_url: None,
            },
        )
        .unwrap();
        assert_eq!(
            spec.path_and_query,
            "/v1/ai/video/kling-v3-motion-control-std"
        );
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "image_url": "https://example.com/character.png",
                "video_url": "https://example.com/motion.mp4",
                "character_orientation": "video"
            })
        );
    }

    #[test]
    fn rejects_what_freepik_cannot_express() {
        let ctx = CreateContext {
            idempotency_key: "k".into(),
            callback_url: None,
        };
        let mut j = job();
        j.image = "iVBORw0KGgoAAAANSUhEUg".into();
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "image");
        let mut j = job();
        j.keep_sound = Some(true);
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "keep_sound");
        let mut j = job();
        j.negative_prompt = Some("x".into());
        assert_eq!(
            build_create(&j, &ctx).unwrap_err().field(),
            "negative_prompt"
        );
        let mut j = job();
        j.cfg_scale = Some(-0.1);
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "cfg_scale");
    }

    #[test]
    fn query_and_list_use_the_tier_endpoint() {
        let t = |tier| TaskRef {
            task_id: "046b6c7f-0b8a-43b9-b35d-6489e6daee91".into(),
            tier,
        };
        assert_eq!(
            build_query(&t(Tier::Std)).path_and_query,
            "/v1/ai/video/kling-v3-motion-control-std/046b6c7f-0b8a-43b9-b35d-6489e6daee91"
        );
        assert_eq!(
            build_query(&t(Tier::Pro)).path_and_query,
            "/v1/ai/video/kling-v3-motion-control-pro/046b6c7f-0b8a-43b9-b35d-6489e6daee91"
        );
        assert_eq!(
            build_list(Tier::Pro).path_and_query,
            "/v1/ai/video/kling-v3-motion-control-pro"
        );
    }
}
