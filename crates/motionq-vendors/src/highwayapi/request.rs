//! Building HighwayAPI requests.

use motionq_core::{JobSpec, Tier, Vendor};

use super::wire::CreateRequest;
use crate::adapter::{CreateContext, TaskRef};
use crate::common::{check_job, image_value};
use crate::error::AdapterError;
use crate::http::{encode_component, AuthScheme, HttpRequestSpec};

/// `POST /v3/async/kling-v3.0-motion-control`. The context's `callback_url` is ignored: this
/// endpoint has no callback field (the job is polled).
pub fn build_create(job: &JobSpec, _ctx: &CreateContext) -> Result<HttpRequestSpec, AdapterError> {
    let checked = check_job(Vendor::Highwayapi, job)?;
    let image = image_value(&checked.image);
    let body = CreateRequest {
        image: &image,
        video: job.video_url.trim(),
        prompt: checked.prompt,
        model_name: match job.tier {
            Tier::Std => "kling-v3-0-std",
            Tier::Pro => "kling-v3-0-pro",
        },
        negative_prompt: checked.negative_prompt,
        keep_original_sound: job.keep_sound,
        character_orientation: job.orientation.as_str(),
    };
    Ok(HttpRequestSpec::post(
        "/v3/async/kling-v3.0-motion-control".into(),
        AuthScheme::Bearer,
        serde_json::to_value(body).expect("plain structs always serialise"),
    ))
}

/// `GET /v3/async/task-result?task_id=…`.
pub fn build_query(task: &TaskRef) -> HttpRequestSpec {
    HttpRequestSpec::get(
        format!(
            "/v3/async/task-result?task_id={}",
            encode_component(&task.task_id)
        ),
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
            idempotency_key: "k".into(),
            callback_url: Some("https://hooks.example.com/ignored".into()),
        }
    }

    #[test]
    fn full_body_with_every_field() {
        let mut j = job();
        j.prompt = Some("a dancer".into());
        j.negative_prompt = Some("blurry, extra limbs".into());
        j.keep_sound = Some(true);
        j.tier = Tier::Pro;
        j.orientation = Orientation::Image;
        let spec = build_create(&j, &ctx()).unwrap();
        assert_eq!(spec.path_and_query, "/v3/async/kling-v3.0-motion-control");
        assert_eq!(spec.auth, AuthScheme::Bearer);
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "image": "https://example.com/character.png",
                "video": "https://example.com/motion.mp4",
                "prompt": "a dancer",
                "model_name": "kling-v3-0-pro",
                "negative_prompt": "blurry, extra limbs",
                "keep_original_sound": true,
                "character_orientation": "image"
            })
        );
    }

    #[test]
    fn field_names_and_types_match_the_docs_template() {
        // vendor-docs/highwayapi.txt cURL body: every field, with its JSON type.
        let template: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/highwayapi/create_request_template.json"
        ))
        .unwrap();
        let mut j = job();
        j.prompt = Some("p".into());
        j.negative_prompt = Some("n".into());
        j.keep_sound = Some(true);
        let body = build_create(&j, &ctx()).unwrap().body.unwrap();
        let (t, b) = (template.as_object().unwrap(), body.as_object().unwrap());
        assert_eq!(
            t.keys().collect::<std::collections::BTreeSet<_>>(),
            b.keys().collect::<std::collections::BTreeSet<_>>()
        );
        for (k, v) in t {
            assert_eq!(
                std::mem::discriminant(v),
                std::mem::discriminant(&b[k]),
                "type of `{k}`"
            );
        }
    }

    #[test]
    fn minimal_body_base64_and_no_callback() {
        let mut j = job();
        j.image = "data:image/jpeg;base64,/9j/4AAQSkZJRg".into();
        j.keep_sound = Some(false);
        let spec = build_create(&j, &ctx()).unwrap();
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "image": "/9j/4AAQSkZJRg",
                "video": "https://example.com/motion.mp4",
                "model_name": "kling-v3-0-std",
                "keep_original_sound": false,
                "character_orientation": "video"
            })
        );
    }

    #[test]
    fn rejects_cfg_scale() {
        let mut j = job();
        j.cfg_scale = Some(0.5);
        assert_eq!(build_create(&j, &ctx()).unwrap_err().field(), "cfg_scale");
    }

    #[test]
    fn query_uses_the_task_result_endpoint() {
        let spec = build_query(&TaskRef {
            task_id: "830d9c90-8f7a-4a4b-9d4e-1a2b3c4d5e6f".into(),
            tier: Tier::Std,
        });
        assert_eq!(
            spec.path_and_query,
            "/v3/async/task-result?task_id=830d9c90-8f7a-4a4b-9d4e-1a2b3c4d5e6f"
        );
        let spec = build_query(&TaskRef {
            task_id: "a&b=c".into(),
            tier: Tier::Std,
        });
        assert_eq!(
            spec.path_and_query,
            "/v3/async/task-result?task_id=a%26b%3Dc"
        );
    }
}
