//! Building AI Video API requests.

use motionq_core::{JobSpec, Tier, Vendor};

use super::wire::{CreateRequest, Input, MODEL};
use crate::adapter::{CreateContext, TaskRef};
use crate::common::{check_job, require_url};
use crate::error::AdapterError;
use crate::http::{encode_component, AuthScheme, HttpRequestSpec};

/// `POST /v1/videos/generations`.
pub fn build_create(job: &JobSpec, ctx: &CreateContext) -> Result<HttpRequestSpec, AdapterError> {
    let checked = check_job(Vendor::Aivideoapi, job)?;
    let image = require_url(Vendor::Aivideoapi, &checked.image)?;
    let body = CreateRequest {
        model: MODEL,
        callback_url: ctx.callback_url.as_deref(),
        input: Input {
            input_urls: [image],
            video_urls: [job.video_url.trim()],
            character_orientation: job.orientation.as_str(),
            mode: match job.tier {
                Tier::Std => "720p",
                Tier::Pro => "1080p",
            },
            prompt: checked.prompt,
        },
    };
    Ok(HttpRequestSpec::post(
        "/v1/videos/generations".into(),
        AuthScheme::Bearer,
        serde_json::to_value(body).expect("plain structs always serialise"),
    ))
}

/// `GET /v1/tasks/{taskId}`.
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

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/aivideoapi/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn basic_example_from_the_docs() {
        let mut j = job();
        j.image = "https://example.com/character.png".into();
        j.video_url = "https://example.com/reference-motion.mp4".into();
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "k".into(),
                callback_url: Some("https://your-server.com/webhook".into()),
            },
        )
        .unwrap();
        assert_eq!(spec.path_and_query, "/v1/videos/generations");
        assert_eq!(spec.body.unwrap(), fixture("create_request_basic.json"));
    }

    #[test]
    fn pro_with_prompt_example_from_the_docs() {
        let mut j = job();
        j.image = "https://example.com/dancer.png".into();
        j.video_url = "https://example.com/dance-clip.mp4".into();
        j.orientation = Orientation::Image;
        j.tier = Tier::Pro;
        j.prompt = Some("The character performs the dance smoothly with no distortion".into());
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "k".into(),
                callback_url: Some("https://your-server.com/webhook".into()),
            },
        )
        .unwrap();
        assert_eq!(
            spec.body.unwrap(),
            fixture("create_request_1080p_prompt.json")
        );
    }

    #[test]
    fn rejects_what_it_cannot_express() {
        let ctx = CreateContext {
            idempotency_key: "k".into(),
            callback_url: None,
        };
        let mut j = job();
        j.keep_sound = Some(true);
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "keep_sound");
        let mut j = job();
        j.image = "/9j/4AAQSkZJRg".into();
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "image");
        let mut j = job();
        j.negative_prompt = Some("x".into());
        assert_eq!(
            build_create(&j, &ctx).unwrap_err().field(),
            "negative_prompt"
        );
        let mut j = job();
        j.cfg_scale = Some(0.1);
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "cfg_scale");
    }

    #[test]
    fn query_path() {
        let spec = build_query(&TaskRef {
            task_id: "8b6a5162-5c91-4a42-8e80-4c8ef5486f24".into(),
            tier: Tier::Pro,
        });
        assert_eq!(
            spec.path_and_query,
            "/v1/tasks/8b6a5162-5c91-4a42-8e80-4c8ef5486f24"
        );
    }
}
