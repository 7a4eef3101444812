//! Building KKIAI requests.

use motionq_core::{JobSpec, Tier, Vendor};

use super::wire::{CreateRequest, MODEL_NAME};
use crate::adapter::CreateContext;
use crate::common::{check_job, image_value};
use crate::error::AdapterError;
use crate::http::{encode_component, AuthScheme, HttpRequestSpec};

/// `POST /kling/v1/videos/motion-control`.
pub fn build_create(job: &JobSpec, ctx: &CreateContext) -> Result<HttpRequestSpec, AdapterError> {
    let checked = check_job(Vendor::Kkiai, job)?;
    let image = image_value(&checked.image);
    if ctx.idempotency_key.trim().is_empty() {
        return Err(AdapterError::Invalid {
            vendor: Vendor::Kkiai,
            field: "idempotency_key",
            reason: "an external_task_id is always sent, so the key must not be empty".into(),
        });
    }
    let body = CreateRequest {
        model_name: MODEL_NAME,
        image_url: &image,
        prompt: checked.prompt,
        video_url: job.video_url.trim(),
        keep_original_sound: job.keep_sound.map(|k| if k { "yes" } else { "no" }),
        character_orientation: job.orientation.as_str(),
        mode: match job.tier {
            Tier::Std => "std",
            Tier::Pro => "pro",
        },
        callback_url: ctx.callback_url.as_deref(),
        external_task_id: &ctx.idempotency_key,
    };
    Ok(HttpRequestSpec::post(
        "/kling/v1/videos/motion-control".into(),
        AuthScheme::Bearer,
        serde_json::to_value(body).expect("plain structs always serialise"),
    ))
}

/// `GET /kling/v1/videos/motion-control/{id}`; `id` is a task id or an `external_task_id`.
pub fn build_query(id: &str) -> HttpRequestSpec {
    HttpRequestSpec::get(
        format!("/kling/v1/videos/motion-control/{}", encode_component(id)),
        AuthScheme::Bearer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::job;
    use motionq_core::Orientation;
    use serde_json::json;

    #[test]
    fn create_body_matches_the_docs_example() {
        // vendor-docs/kkiai.txt request example, with callback and external id filled in.
        let mut j = job();
        j.image =
            "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-3.ng.png".into();
        j.video_url =
            "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/dance.mp4".into();
        j.prompt = Some("The girl is wearing a loose gray T-shirt and denim shorts.".into());
        j.keep_sound = Some(true);
        j.orientation = Orientation::Image;
        j.tier = Tier::Pro;
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "xxx".into(),
                callback_url: Some("https://hooks.example.com/kkiai".into()),
            },
        )
        .unwrap();
        assert_eq!(spec.path_and_query, "/kling/v1/videos/motion-control");
        assert_eq!(spec.auth, AuthScheme::Bearer);
        let expected: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/kkiai/create_request.json"
        ))
        .unwrap();
        assert_eq!(spec.body.unwrap(), expected);
    }

    #[test]
    fn base64_is_sent_raw_and_sound_no_is_a_string() {
        let mut j = job();
        j.image = "data:image/png;base64,iVBORw0KGgoAAAA".into();
        j.keep_sound = Some(false);
        let spec = build_create(
            &j,
            &CreateContext {
                idempotency_key: "c1:job-1:0".into(),
                callback_url: None,
            },
        )
        .unwrap();
        assert_eq!(
            spec.body.unwrap(),
            json!({
                "model_name": "kling-v3",
                "image_url": "iVBORw0KGgoAAAA",
                "video_url": "https://example.com/motion.mp4",
                "keep_original_sound": "no",
                "character_orientation": "video",
                "mode": "std",
                "external_task_id": "c1:job-1:0"
            })
        );
    }

    #[test]
    fn rejects_what_kling_cannot_express() {
        let ctx = CreateContext {
            idempotency_key: "k".into(),
            callback_url: None,
        };
        let mut j = job();
        j.negative_prompt = Some("blurry".into());
        assert_eq!(
            build_create(&j, &ctx).unwrap_err().field(),
            "negative_prompt"
        );
        let mut j = job();
        j.cfg_scale = Some(0.3);
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "cfg_scale");
        let mut j = job();
        j.image = "https://x/a.webp".into();
        assert_eq!(build_create(&j, &ctx).unwrap_err().field(), "image");
        let empty = CreateContext {
            idempotency_key: " ".into(),
            callback_url: None,
        };
        assert_eq!(
            build_create(&job(), &empty).unwrap_err().field(),
            "idempotency_key"
        );
    }

    #[test]
    fn query_path() {
        assert_eq!(
            build_query("860260753860210752").path_and_query,
            "/kling/v1/videos/motion-control/860260753860210752"
        );
    }
}
