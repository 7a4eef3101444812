//! One conformance suite, run against every vendor dialect over real HTTP: create → query until
//! terminal → download → valid MP4; duration rules; doc examples; error bodies; auth.

mod common;

use common::*;
use motionq_sim::{Tier, Vendor};
use serde_json::{json, Value};

#[tokio::test]
async fn lifecycle_download_and_ledger_for_every_vendor() {
    let sim = start(config()).await;
    for v in Vendor::ALL {
        for tier in [Tier::Std, Tier::Pro] {
            let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
            job.tier = tier;
            let id = create_ok(&sim, v, &job).await;
            let seen = wait_terminal(&sim, v, &id, tier).await;
            let statuses: Vec<_> = seen.iter().map(|s| s.0).collect();
            assert_eq!(statuses.last(), Some(&"completed"), "{v}: {statuses:?}");
            // The order never goes backwards.
            let rank = |s: &str| {
                ["pending", "processing", "completed"]
                    .iter()
                    .position(|x| *x == s)
            };
            assert!(
                statuses.windows(2).all(|w| rank(w[0]) < rank(w[1])),
                "{v}: {statuses:?}"
            );
            let url = output_url(v, &seen.last().unwrap().1);
            let (st, bytes) = download(&url).await;
            assert_eq!(st, 200, "{v} download");
            let secs = mp4_seconds(&bytes);
            assert!((secs - 8.0).abs() < 0.01, "{v} output is {secs} s");
            let ledger = sim.ledger();
            let rec = ledger.find_task(&id).expect("create recorded");
            assert_eq!(
                rec.output_sha256.as_deref(),
                Some(sha256_hex(&bytes).as_str())
            );
            assert_eq!(rec.output_seconds, 8);
            assert_eq!(rec.tier, tier);
            let k = ledger.key(v, ALIAS).unwrap();
            let dl = &k.downloads.tasks[&id];
            assert_eq!((dl.count, dl.bytes), (1, bytes.len() as u64));
            assert_eq!(dl.sha256, sha256_hex(&bytes));
        }
    }
    let ledger = sim.ledger();
    for v in Vendor::ALL {
        let k = ledger.key(v, ALIAS).unwrap();
        assert_eq!(k.creates.len(), 2, "{v}");
        assert_eq!((k.completed, k.failed, k.in_flight), (2, 0, 0), "{v}");
        assert_eq!(k.duplicates, 1, "{v}: same image+video+prompt twice");
        // Billing: per second of output, by tier, in the vendor's unit.
        let d = motionq_sim::VendorDefaults::of(v).price_per_second;
        let expected = 8.0 * (d.std + d.pro);
        assert!(
            (k.charged - expected).abs() < 1e-6,
            "{v}: {} vs {expected}",
            k.charged
        );
        assert!(
            (k.initial_balance - k.balance - expected).abs() < 1e-6,
            "{v}"
        );
        assert_eq!(k.refunded, 0.0);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn duration_rules_per_vendor() {
    let sim = start(config()).await;
    // (vendor, orientation, video, expected output seconds or None for a 400)
    let cases = [
        (Vendor::Evolink, "image", "dance-12s.mp4", None),
        (Vendor::Evolink, "image", "dance-10s.mp4", Some(10.0)),
        (Vendor::Evolink, "video", "dance-12s.mov", Some(12.0)),
        (Vendor::Kkiai, "image", "dance-12s.mp4", None),
        (Vendor::Kkiai, "video", "dance-12s.mp4", Some(12.0)),
        (Vendor::Aivideoapi, "image", "dance-12s.mp4", Some(10.0)),
        (Vendor::Highwayapi, "image", "dance-12s.mp4", Some(5.0)),
        (Vendor::Highwayapi, "video", "dance-3s.mp4", Some(3.0)),
        (Vendor::Freepik, "image", "dance-12s.mov", Some(10.0)),
    ];
    for (v, orientation, video, expected) in cases {
        let mut job = Job::new(&sim, "square-1024x1024.jpg", video);
        job.orientation = orientation;
        let (st, body) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        match expected {
            None => assert_eq!(st, 400, "{v} {orientation} {video}: {body}"),
            Some(secs) => {
                assert_eq!(st, 200, "{v} {orientation} {video}: {body}");
                let id = task_id(v, &body);
                let done = finish(&sim, v, &id, Tier::Std).await;
                let (_, bytes) = download(&output_url(v, &done)).await;
                let got = mp4_seconds(&bytes);
                assert!(
                    (got - secs).abs() < 0.01,
                    "{v} {orientation} {video}: {got} s"
                );
                // Pre-charged on the reference length, settled on the output length.
                let ledger = sim.ledger();
                let per_s = motionq_sim::VendorDefaults::of(v).price_per_second.std;
                let rec = ledger.find_task(&id).unwrap();
                assert!(
                    (rec.charge - per_s * rec.ref_seconds.round()).abs() < 1e-6,
                    "{v}"
                );
                let k = ledger.key(v, ALIAS).unwrap();
                let moves: Vec<_> = k.charges.iter().filter(|c| c.task_id == id).collect();
                let settled = moves
                    .iter()
                    .find(|c| c.kind == motionq_sim::ChargeKind::Settle)
                    .unwrap();
                assert!(
                    (settled.amount - per_s * secs).abs() < 1e-6,
                    "{v}: {moves:?}"
                );
                let back: f64 = moves
                    .iter()
                    .filter(|c| c.kind == motionq_sim::ChargeKind::Refund)
                    .map(|c| c.amount)
                    .sum();
                assert!(
                    (rec.charge - back - settled.amount).abs() < 1e-6,
                    "{v}: {moves:?}"
                );
                if secs < rec.ref_seconds.round() {
                    assert!(
                        back > 0.0,
                        "{v}: a capped output gives part of the pre-charge back"
                    );
                }
            }
        }
    }
}

/// KKIAI's request example from its doc excerpt, comments removed (which also removes the
/// dangling comma the commented-out lines leave behind).
const KKIAI_DOC_EXAMPLE: &str = r#"{
    "model_name": "kling-v3",
    "image_url": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-3.ng.png",
    "prompt": "The girl is wearing a loose gray T-shirt and denim shorts.",
    "video_url": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/dance.mp4",
    "keep_original_sound": "yes",
    "character_orientation": "image",
    "mode": "pro",
    // "callback_url": "",
    // "external_task_id": "xxx"
}"#;

fn strip_comments(s: &str) -> String {
    let kept: Vec<&str> = s
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let joined = kept.join("\n");
    // The last kept member now ends with a comma before "}".
    let trimmed = joined.trim_end().trim_end_matches('}').trim_end();
    format!("{}\n}}", trimmed.trim_end_matches(','))
}

fn doc_requests() -> Vec<(Vendor, Tier, Value)> {
    vec![
        // VENDORS.md 1.2, the OpenAPI example `hd_no_sound`.
        (
            Vendor::Evolink,
            Tier::Pro,
            json!({"model":"kling-v3-motion-control","prompt":"A robot performing martial arts",
            "image_urls":["https://example.com/robot.png"],"video_urls":["https://example.com/martial-arts.mp4"],
            "quality":"1080p","model_params":{"character_orientation":"video","keep_sound":false}}),
        ),
        // evolink.txt example values.
        (
            Vendor::Evolink,
            Tier::Std,
            json!({"model":"kling-v3-motion-control",
            "image_urls":["https://example.com/character.jpg"],
            "video_urls":["https://example.com/dance-reference.mp4"],
            "prompt":"A girl dancing gracefully","quality":"720p",
            "model_params":{"character_orientation":"image"},
            "callback_url":"https://your-domain.com/webhooks/video-task-completed"}),
        ),
        (
            Vendor::Kkiai,
            Tier::Pro,
            serde_json::from_str(&strip_comments(KKIAI_DOC_EXAMPLE)).unwrap(),
        ),
        // The same with the commented-out members restored.
        (Vendor::Kkiai, Tier::Pro, {
            let mut v: Value = serde_json::from_str(&strip_comments(KKIAI_DOC_EXAMPLE)).unwrap();
            v["callback_url"] = json!("");
            v["external_task_id"] = json!("xxx");
            v
        }),
        // aivideoapi.txt, both curl examples.
        (
            Vendor::Aivideoapi,
            Tier::Std,
            json!({"model":"kling-v3-motion-control",
            "callback_url":"https://your-server.com/webhook",
            "input":{"input_urls":["https://example.com/character.png"],
                     "video_urls":["https://example.com/reference-motion.mp4"],
                     "character_orientation":"video","mode":"720p"}}),
        ),
        (
            Vendor::Aivideoapi,
            Tier::Pro,
            json!({"model":"kling-v3-motion-control",
            "callback_url":"https://your-server.com/webhook",
            "input":{"input_urls":["https://example.com/dancer.png"],
                     "video_urls":["https://example.com/dance-clip.mp4"],
                     "character_orientation":"image","mode":"1080p",
                     "prompt":"The character performs the dance smoothly with no distortion"}}),
        ),
        // highwayapi.txt: the curl example's members with its placeholders filled in.
        (
            Vendor::Highwayapi,
            Tier::Std,
            json!({"image":"https://example.com/character.png",
            "video":"https://example.com/dance.mp4","prompt":"a dancer","model_name":"kling-v3-0-std",
            "negative_prompt":"blurry","keep_original_sound":true,"character_orientation":"video"}),
        ),
        // freepik.txt: every documented parameter.
        (
            Vendor::Freepik,
            Tier::Pro,
            json!({"image_url":"https://example.com/character.webp",
            "video_url":"https://example.com/motion.webm","prompt":"dance",
            "character_orientation":"video","cfg_scale":0.5,
            "webhook_url":"https://example.com/webhook"}),
        ),
        (
            Vendor::Freepik,
            Tier::Std,
            json!({"image_url":"https://example.com/character.jpg",
            "video_url":"https://example.com/motion.mp4"}),
        ),
    ]
}

#[tokio::test]
async fn doc_request_examples_are_accepted_as_written() {
    // Public callback URLs only: the examples must pass the strict (default) callback rules.
    let mut c = config();
    c.allow_private_callbacks = false;
    let sim = start(c).await;
    for (v, tier, body) in doc_requests() {
        let (st, answer) = post(&sim, v, tier, key(v), &body).await;
        assert_eq!(st, 200, "{v} rejected its own doc example {body}: {answer}");
        let id = task_id(v, &answer);
        let done = finish(&sim, v, &id, tier).await;
        assert_eq!(status(v, &done), "completed");
    }
}

#[tokio::test]
async fn task_ids_have_the_vendor_format() {
    let sim = start(config()).await;
    for v in Vendor::ALL {
        let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        let id = create_ok(&sim, v, &job).await;
        match v {
            Vendor::Evolink => {
                let rest = id.strip_prefix("task-unified-").expect(&id);
                let (secs, tail) = rest.split_once('-').expect(&id);
                assert!(secs.parse::<u64>().is_ok(), "{id}");
                assert_eq!(tail.len(), 8, "{id}");
                assert!(
                    tail.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                    "{id}"
                );
            }
            Vendor::Kkiai => {
                assert!(
                    id.len() >= 18 && id.chars().all(|c| c.is_ascii_digit()),
                    "{id}"
                )
            }
            _ => assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}"),
        }
    }
}

/// Response examples from VENDORS.md / vendor-docs, by vendor and common status.
fn doc_responses() -> Vec<(Vendor, &'static str, Value)> {
    vec![
        (
            Vendor::Evolink,
            "create",
            json!({"created":1757169743,"id":"task-unified-1757169743-7cvnl5zw","model":"kling-v3-motion-control",
            "object":"video.generation.task","progress":0,"status":"pending",
            "task_info":{"can_cancel":true,"estimated_time":300,"video_duration":8},
            "type":"video","usage":{"billing_rule":"per_second","credits_reserved":408240,"user_group":"default"}}),
        ),
        (
            Vendor::Evolink,
            "pending",
            json!({"id":"x","object":"video.generation.task","created":1,"model":"kling-v3-motion-control","status":"pending","progress":0,"type":"video","task_info":{"can_cancel":true,"estimated_time":165,"video_duration":5}}),
        ),
        (
            Vendor::Evolink,
            "processing",
            json!({"id":"x","object":"video.generation.task","created":1,"model":"m","status":"processing","progress":65,"task_info":{"can_cancel":true}}),
        ),
        (
            Vendor::Evolink,
            "completed",
            json!({"id":"x","object":"video.generation.task","created":1,"model":"m","status":"completed","progress":100,"results":["https://x/video.mp4"],"task_info":{"can_cancel":false}}),
        ),
        (
            Vendor::Evolink,
            "failed",
            json!({"id":"x","object":"video.generation.task","created":1,"model":"m","status":"failed","progress":0,"error":{"code":"content_policy_violation","message":"m","type":"task_error"}}),
        ),
        (
            Vendor::Kkiai,
            "create",
            json!({"code":0,"message":"SUCCEED","request_id":"7e91db5f",
            "data":{"task_id":"860260753860210752","task_info":{"external_task_id":"xxx"},
                    "task_status":"submitted","created_at":1722769557708u64,"updated_at":1722769557708u64}}),
        ),
        (
            Vendor::Kkiai,
            "completed",
            json!({"code":0,"message":"SUCCEED","request_id":"r",
            "data":{"task_id":"1","task_status":"succeed","task_status_msg":"",
             "task_info":{"external_task_id":"e"},
             "task_result":{"videos":[{"id":"v","url":"https://x.mp4","watermark_url":"https://w","duration":"8.041"}]},
             "watermark_info":{"enabled":false},"final_unit_deduction":"7.2",
             "created_at":1722769557708u64,"updated_at":1722769557708u64}}),
        ),
        (
            Vendor::Kkiai,
            "failed",
            json!({"code":0,"message":"SUCCEED","request_id":"r",
            "data":{"task_id":"1","task_status":"failed","task_status_msg":"risk","task_info":{"external_task_id":"e"},
                    "final_unit_deduction":"0","created_at":1u64,"updated_at":1u64}}),
        ),
        (
            Vendor::Aivideoapi,
            "create",
            json!({"code":200,"msg":"success","data":{"taskId":"8b6a5162-5c91-4a42-8e80-4c8ef5486f24"}}),
        ),
        (
            Vendor::Aivideoapi,
            "pending",
            json!({"id":"x","status":"pending","model":"kling-v3-motion-control","created_at":1781136227,"progress":null}),
        ),
        (
            Vendor::Aivideoapi,
            "processing",
            json!({"id":"x","status":"processing","model":"m","created_at":1,"progress":null}),
        ),
        (
            Vendor::Aivideoapi,
            "completed",
            json!({"id":"8b6a5162-5c91-4a42-8e80-4c8ef5486f24","status":"completed","model":"kling-v3-motion-control",
            "created_at":1781136227,"completed_at":1781136589,
            "output":{"urls":["https://file.aivideoapi.ai/videos/2026/06/15/abc.mp4"],"metadata":{"model":"kling-3.0/motion-control"}}}),
        ),
        (
            Vendor::Aivideoapi,
            "failed",
            json!({"id":"57c8772c-f834-46f3-9b7d-81f92e104050","status":"failed","model":"kling-v3-motion-control",
            "created_at":1781136227,"error":{"code":"upstream_error","message":"Video generation failed"}}),
        ),
        (Vendor::Highwayapi, "create", json!({"task_id":"<string>"})),
        (
            Vendor::Highwayapi,
            "completed",
            json!({"task":{"task_id":"830d9c90","task_type":"t","status":"TASK_STATUS_SUCCEED","reason":"","eta":0,"progress_percent":100},
            "extra":{"seed":"1","debug_info":{"request_info":"","submit_time_ms":"","execute_time_ms":"","complete_time_ms":""}},
            "videos":[{"video_url":"https://x.mp4","video_url_ttl":"3600","video_type":"mp4"}],
            "images":[],"audios":[]}),
        ),
        (
            Vendor::Highwayapi,
            "failed",
            json!({"task":{"task_id":"1","status":"TASK_STATUS_FAILED","reason":"r"}}),
        ),
        (
            Vendor::Freepik,
            "create",
            json!({"data":{"task_id":"046b6c7f-0b8a-43b9-b35d-6489e6daee91","status":"CREATED","generated":[]}}),
        ),
        (
            Vendor::Freepik,
            "completed",
            json!({"data":{"task_id":"046b6c7f","status":"COMPLETED","generated":["https://x/video.mp4"]}}),
        ),
        (
            Vendor::Freepik,
            "failed",
            json!({"data":{"task_id":"046b6c7f","status":"FAILED","generated":[]}}),
        ),
    ]
}

#[tokio::test]
async fn doc_response_examples_have_the_shape_the_simulator_returns() {
    // Three simulators so each status is observed without depending on timing: one whose
    // tasks stay pending, one whose tasks stay processing, one that finishes quickly.
    let frozen = |queue: f64, generation: f64| {
        let mut c = config();
        for v in Vendor::ALL {
            c.vendor_mut(v).queue_seconds = Some(queue);
            c.vendor_mut(v).generation_seconds = Some(motionq_sim::Tiered {
                std: generation,
                pro: generation,
            });
        }
        c
    };
    let pending = start(frozen(1e8, 1.0)).await;
    let processing = start(frozen(0.0, 1e8)).await;
    let done = start(config()).await;
    let docs = doc_responses();
    for v in Vendor::ALL {
        let job = |sim: &motionq_sim::SimHandle, ext: &str| {
            let mut job = Job::new(sim, "portrait-720x1280.png", "dance-8s.mp4");
            job.external = (v == Vendor::Kkiai).then(|| ext.to_string());
            job.watermark = true;
            job
        };
        let mut bodies = Vec::new();
        let (st, created) = post(
            &pending,
            v,
            Tier::Std,
            key(v),
            &create_body(v, &job(&pending, "e1")),
        )
        .await;
        assert_eq!(st, 200);
        bodies.push(("create", created.clone()));
        let (_, b) = get(
            v,
            &query_url(&pending, v, &task_id(v, &created), Tier::Std),
            key(v),
        )
        .await;
        bodies.push(("pending", b));
        let id = create_ok(&processing, v, &job(&processing, "e2")).await;
        // Leaving pending takes no simulated time here; poll until the driver moved it.
        let url = query_url(&processing, v, &id, Tier::Std);
        let mut b = get(v, &url, key(v)).await.1;
        for _ in 0..2000 {
            if status(v, &b) == "processing" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            b = get(v, &url, key(v)).await.1;
        }
        bodies.push(("processing", b));
        let id = create_ok(&done, v, &job(&done, "e3")).await;
        bodies.push(("completed", finish(&done, v, &id, Tier::Std).await));
        let mut failing = job(&done, "e4");
        failing.prompt = Some("sim:content_policy".into());
        let id = create_ok(&done, v, &failing).await;
        bodies.push(("failed", finish(&done, v, &id, Tier::Std).await));
        for (s, b) in &bodies {
            if *s != "create" {
                assert_eq!(status(v, b), *s, "{v}: {b}");
            }
        }
        for (dv, what, doc) in docs.iter().filter(|d| d.0 == v) {
            let sim_body = &bodies.iter().find(|b| b.0 == *what).unwrap().1;
            same_shape(doc, sim_body, what)
                .unwrap_or_else(|e| panic!("{dv} {what}: {e}\nsim: {sim_body}"));
        }
    }
}

#[tokio::test]
async fn invalid_requests_get_the_vendor_error_body() {
    let sim = start(config()).await;
    let good = |v| create_body(v, &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"));
    let long_prompt = "é".repeat(2501);
    // (vendor, mutation, expected HTTP status, check on the body)
    type Check = fn(&Value) -> bool;
    type Case = (Vendor, Box<dyn Fn(&mut Value)>, u16, Check);
    let cases: Vec<Case> = vec![
        (
            Vendor::Evolink,
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("model_params");
            }),
            400,
            |e| {
                e["error"]["code"] == "invalid_request"
                    && e["error"]["type"] == "invalid_request_error"
            },
        ),
        (
            Vendor::Evolink,
            Box::new(|b| b["model_params"]["keep_original_sound"] = json!("yes")),
            200,
            |_| true,
        ),
        (
            Vendor::Evolink,
            Box::new(|b| b["model_params"]["keep_sound"] = json!("no")),
            400,
            |e| e["error"]["param"] == "model_params.keep_sound",
        ),
        (
            Vendor::Evolink,
            Box::new(|b| b["quality"] = json!("4k")),
            400,
            |e| e["error"]["param"] == "quality",
        ),
        (
            Vendor::Evolink,
            Box::new(|b| b["image_urls"] = json!(["https://a/x.png", "https://a/y.png"])),
            400,
            |e| e["error"]["param"] == "image_urls",
        ),
        (
            Vendor::Kkiai,
            Box::new(|b| b["keep_original_sound"] = json!(true)),
            400,
            |e| e["code"] == 1200,
        ),
        (
            Vendor::Kkiai,
            Box::new(|b| b["keep_original_sound"] = json!("maybe")),
            400,
            |e| e["code"] == 1201,
        ),
        (
            Vendor::Kkiai,
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("mode");
            }),
            400,
            |e| e["code"] == 1200 && e["request_id"].is_string(),
        ),
        (
            Vendor::Kkiai,
            Box::new(|b| b["element_list"] = json!([{"element_id":"1"},{"element_id":"2"}])),
            400,
            |e| e["code"] == 1201,
        ),
        (
            Vendor::Aivideoapi,
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("model");
            }),
            400,
            |e| {
                e["error"]["message"] == "'model' is required."
                    && e["error"]["type"] == "invalid_request_error"
            },
        ),
        (
            Vendor::Aivideoapi,
            Box::new(|b| b["model"] = json!("sora")),
            404,
            |e| e["error"]["code"] == "model_not_found",
        ),
        (
            Vendor::Aivideoapi,
            Box::new(|b| b["input"]["duration"] = json!(5)),
            400,
            |e| e["error"]["code"] == "invalid_request",
        ),
        (
            Vendor::Highwayapi,
            Box::new(|b| b["keep_original_sound"] = json!("yes")),
            400,
            |e| e["reason"] == "INVALID_REQUEST_BODY" && e["code"] == 400,
        ),
        (
            Vendor::Highwayapi,
            Box::new(|b| b["model_name"] = json!("kling-v3-0-ultra")),
            400,
            |e| e["reason"] == "INVALID_REQUEST_BODY",
        ),
        (
            Vendor::Highwayapi,
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("character_orientation");
            }),
            400,
            |e| e["reason"] == "INVALID_REQUEST_BODY",
        ),
        (
            Vendor::Freepik,
            Box::new(|b| b["cfg_scale"] = json!(1.5)),
            400,
            |e| e["message"].is_string() && e["invalid_params"][0]["name"] == "cfg_scale",
        ),
        (
            Vendor::Freepik,
            Box::new(|b| b["character_orientation"] = json!("diagonal")),
            400,
            |e| e["message"].is_string(),
        ),
    ];
    for (v, mutate, want, check) in cases {
        let mut body = good(v);
        mutate(&mut body);
        let (st, answer) = post(&sim, v, Tier::Std, key(v), &body).await;
        assert_eq!(st, want, "{v} {body}: {answer}");
        assert!(check(&answer), "{v} {body}: {answer}");
    }
    // Prompt limits count Unicode characters, not bytes.
    for v in Vendor::ALL {
        let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        job.prompt = Some(long_prompt.clone());
        let (st, _) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 400, "{v}");
        job.prompt = Some("é".repeat(2500));
        let (st, answer) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 200, "{v}: {answer}");
    }
    // Media limits from our own /media samples, with each vendor's error envelope.
    let media_cases = [
        (Vendor::Evolink, "portrait-720x1280.webp", "dance-8s.mp4"),
        (Vendor::Kkiai, "small-200x200.jpg", "dance-8s.mp4"),
        (
            Vendor::Aivideoapi,
            "portrait-720x1280.png",
            "dance-8s-truncated.mp4",
        ),
        (Vendor::Highwayapi, "wide-3000x500.png", "dance-8s.mp4"),
        (Vendor::Freepik, "portrait-720x1280.png", "dance-31s.mp4"),
        (
            Vendor::Evolink,
            "portrait-720x1280.png",
            "huge-4000x2250-8s.mp4",
        ),
        (Vendor::Kkiai, "portrait-720x1280.png", "no-such-file.mp4"),
    ];
    for (v, image, video) in media_cases {
        let job = Job::new(&sim, image, video);
        let (st, answer) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 400, "{v} {image} {video}: {answer}");
        let (_, shape) = motionq_sim_error_shape(v);
        assert!(shape(&answer), "{v}: {answer}");
    }
    let ledger = sim.ledger();
    assert!(
        ledger
            .key(Vendor::Evolink, ALIAS)
            .unwrap()
            .rejected("invalid_request")
            >= 5
    );
}

/// The error envelope per vendor (VENDORS.md 6.4).
fn motionq_sim_error_shape(v: Vendor) -> (Vendor, fn(&Value) -> bool) {
    let f: fn(&Value) -> bool = match v {
        Vendor::Evolink | Vendor::Aivideoapi => {
            |e| e["error"]["code"].is_string() && e["error"]["type"].is_string()
        }
        Vendor::Kkiai => {
            |e| e["code"].is_u64() && e["message"].is_string() && e["request_id"].is_string()
        }
        Vendor::Highwayapi => {
            |e| e["code"].is_u64() && e["reason"].is_string() && e["metadata"].is_object()
        }
        Vendor::Freepik => |e| e["message"].is_string(),
    };
    (v, f)
}

#[tokio::test]
async fn base64_images_and_element_lists() {
    use base64::Engine as _;
    let sim = start(config()).await;
    let b64 = |w, h| base64::engine::general_purpose::STANDARD.encode(motionq_media::png(w, h));
    // KKIAI and HighwayAPI take raw base64 images, measured like any other image.
    for (v, field) in [(Vendor::Kkiai, "image_url"), (Vendor::Highwayapi, "image")] {
        let mut body = create_body(v, &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"));
        body[field] = json!(b64(400, 600));
        let (st, e) = post(&sim, v, Tier::Std, key(v), &body).await;
        assert_eq!(st, 200, "{v}: {e}");
        body[field] = json!(b64(120, 600));
        let (st, _) = post(&sim, v, Tier::Std, key(v), &body).await;
        assert_eq!(st, 400, "{v}: too small");
        body[field] = json!(format!("data:image/png;base64,{}", b64(400, 600)));
        let (st, _) = post(&sim, v, Tier::Std, key(v), &body).await;
        assert_eq!(st, 400, "{v}: no data: prefix");
    }
    // EvoLink and AI Video API take URLs only.
    let mut body = create_body(
        Vendor::Evolink,
        &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
    );
    body["image_urls"] = json!([b64(400, 600)]);
    let (st, _) = post(
        &sim,
        Vendor::Evolink,
        Tier::Std,
        key(Vendor::Evolink),
        &body,
    )
    .await;
    assert_eq!(st, 400);
    // An element forces the `video` orientation.
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.orientation = "image";
    let mut body = create_body(Vendor::Evolink, &job);
    body["model_params"]["element_list"] = json!([{"element_id": "e1"}]);
    let (st, e) = post(
        &sim,
        Vendor::Evolink,
        Tier::Std,
        key(Vendor::Evolink),
        &body,
    )
    .await;
    assert_eq!(
        (st, e["error"]["param"].as_str()),
        (400, Some("model_params.character_orientation"))
    );
    body["model_params"]["character_orientation"] = json!("video");
    let (st, _) = post(
        &sim,
        Vendor::Evolink,
        Tier::Std,
        key(Vendor::Evolink),
        &body,
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn auth_errors_per_vendor() {
    let sim = start(config()).await;
    let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    for v in Vendor::ALL {
        let body = create_body(v, &job);
        // Unknown key.
        let (st, e) = post(&sim, v, Tier::Std, "sk-nope", &body).await;
        match v {
            Vendor::Evolink => assert_eq!(
                (st, e["error"]["code"].as_str()),
                (401, Some("unauthorized"))
            ),
            Vendor::Kkiai => assert_eq!((st, e["code"].as_u64()), (401, Some(1002))),
            Vendor::Aivideoapi => assert_eq!(
                (st, e["error"]["code"].as_str()),
                (401, Some("invalid_api_key"))
            ),
            Vendor::Highwayapi => {
                assert_eq!((st, e["reason"].as_str()), (401, Some("FAILED_TO_AUTH")))
            }
            Vendor::Freepik => assert_eq!((st, e["message"].is_string()), (401, true)),
        }
        // No key at all.
        let r = client()
            .post(create_url(&sim, v, Tier::Std))
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        match v {
            Vendor::Highwayapi => {
                assert_eq!((st, e["reason"].as_str()), (403, Some("INVALID_API_KEY")))
            }
            Vendor::Kkiai => assert_eq!((st, e["code"].as_u64()), (401, Some(1001))),
            _ => assert_eq!(st, 401, "{v}: {e}"),
        }
    }
    // AI Video API: a configured key that does not start with sk- is refused before lookup.
    let mut c = config();
    c.aivideoapi
        .keys
        .push(motionq_sim::KeyConfig::new("plain-key").alias("plain"));
    let sim2 = start(c).await;
    let body = create_body(
        Vendor::Aivideoapi,
        &Job::new(&sim2, "portrait-720x1280.png", "dance-8s.mp4"),
    );
    let (st, e) = post(&sim2, Vendor::Aivideoapi, Tier::Std, "plain-key", &body).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    // Freepik also takes the Magnific header.
    let body = create_body(Vendor::Freepik, &job);
    let r = client()
        .post(create_url(&sim, Vendor::Freepik, Tier::Std))
        .header("x-magnific-api-key", key(Vendor::Freepik))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ledger = sim.ledger();
    for v in Vendor::ALL {
        assert_eq!(ledger.vendor(v).unwrap().auth_failures, 2, "{v}");
    }
}

#[tokio::test]
async fn unknown_tasks_and_other_tiers_are_not_found() {
    let sim = start(config()).await;
    let (st, e) = get(
        Vendor::Evolink,
        &query_url(&sim, Vendor::Evolink, "abc", Tier::Std),
        key(Vendor::Evolink),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("invalid_task_id"))
    );
    let (st, e) = get(
        Vendor::Evolink,
        &query_url(&sim, Vendor::Evolink, "task-unified-1-abcdefgh", Tier::Std),
        key(Vendor::Evolink),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (404, Some("task_not_found"))
    );
    let (st, e) = get(
        Vendor::Kkiai,
        &query_url(&sim, Vendor::Kkiai, "812345", Tier::Std),
        key(Vendor::Kkiai),
    )
    .await;
    assert_eq!((st, e["code"].as_u64()), (404, Some(1203)));
    let (st, e) = get(
        Vendor::Aivideoapi,
        &query_url(&sim, Vendor::Aivideoapi, "x", Tier::Std),
        key(Vendor::Aivideoapi),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (404, Some("task_not_found"))
    );
    let (st, e) = get(
        Vendor::Highwayapi,
        &query_url(&sim, Vendor::Highwayapi, "x", Tier::Std),
        key(Vendor::Highwayapi),
    )
    .await;
    assert_eq!((st, e["reason"].as_str()), (404, Some("TASK_NOT_FOUND")));
    let url = format!(
        "{}/v3/async/task-result",
        sim.vendor_base_url(Vendor::Highwayapi)
    );
    let (st, e) = get(Vendor::Highwayapi, &url, key(Vendor::Highwayapi)).await;
    assert_eq!(
        (st, e["reason"].as_str()),
        (400, Some("INVALID_REQUEST_BODY"))
    );
    // Freepik: a pro task is not visible on the std endpoint.
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.tier = Tier::Pro;
    let id = create_ok(&sim, Vendor::Freepik, &job).await;
    let (st, e) = get(
        Vendor::Freepik,
        &query_url(&sim, Vendor::Freepik, &id, Tier::Std),
        key(Vendor::Freepik),
    )
    .await;
    assert_eq!((st, e["message"].is_string()), (404, true));
    let (st, _) = get(
        Vendor::Freepik,
        &query_url(&sim, Vendor::Freepik, &id, Tier::Pro),
        key(Vendor::Freepik),
    )
    .await;
    assert_eq!(st, 200);
    let unknown_model = format!(
        "{}/v1/ai/video/kling-v9-motion-control-pro",
        sim.vendor_base_url(Vendor::Freepik)
    );
    let (st, _) = get(Vendor::Freepik, &unknown_model, key(Vendor::Freepik)).await;
    assert_eq!(st, 404);
    // Freepik lists per tier.
    let list = format!(
        "{}/v1/ai/video/kling-v3-motion-control-pro",
        sim.vendor_base_url(Vendor::Freepik)
    );
    let (st, l) = get(Vendor::Freepik, &list, key(Vendor::Freepik)).await;
    assert_eq!(st, 200);
    assert_eq!(l["data"][0]["task_id"], json!(id));
    let list_std = format!(
        "{}/v1/ai/video/kling-v3-motion-control-std",
        sim.vendor_base_url(Vendor::Freepik)
    );
    let (_, l) = get(Vendor::Freepik, &list_std, key(Vendor::Freepik)).await;
    assert_eq!(l["data"], json!([]));
    // Another key's task is invisible.
    let mut c = config();
    c.freepik
        .keys
        .push(motionq_sim::KeyConfig::new("fp-other").alias("other"));
    let sim2 = start(c).await;
    let id = create_ok(
        &sim2,
        Vendor::Freepik,
        &Job::new(&sim2, "portrait-720x1280.png", "dance-8s.mp4"),
    )
    .await;
    let (st, _) = get(
        Vendor::Freepik,
        &query_url(&sim2, Vendor::Freepik, &id, Tier::Std),
        "fp-other",
    )
    .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn kkiai_external_task_id_query_list_and_duplicates() {
    let sim = start(config()).await;
    let v = Vendor::Kkiai;
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.external = Some("job-42".into());
    let (st, created) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
    assert_eq!(st, 200);
    assert_eq!(created["data"]["task_info"]["external_task_id"], "job-42");
    let id = task_id(v, &created);
    let done = finish(&sim, v, "job-42", Tier::Std).await;
    assert_eq!(done["data"]["task_id"], json!(id));
    assert_eq!(
        done["data"]["final_unit_deduction"], "7.2",
        "8 s × 0.9 units"
    );
    assert_eq!(
        done["data"]["task_result"]["videos"][0]["duration"],
        "8.000"
    );
    // The same external id again on the same key: Kling 1201, nothing charged.
    let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
    assert_eq!((st, e["code"].as_u64()), (400, Some(1201)), "{e}");
    let list = format!(
        "{}/kling/v1/videos/motion-control?pageNum=1&pageSize=10",
        sim.vendor_base_url(v)
    );
    let (st, l) = get(v, &list, key(v)).await;
    assert_eq!(st, 200);
    assert_eq!(l["code"], 0);
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    let bad = format!(
        "{}/kling/v1/videos/motion-control?pageSize=501",
        sim.vendor_base_url(v)
    );
    let (st, e) = get(v, &bad, key(v)).await;
    assert_eq!((st, e["code"].as_u64()), (400, Some(1201)));
    let k = sim.ledger().key(v, ALIAS).unwrap().clone();
    assert_eq!(k.creates.len(), 1);
    assert_eq!(k.rejected("duplicate_external_task_id"), 1);
}

#[tokio::test]
async fn kkiai_can_answer_in_the_new_api_wrapping() {
    let mut c = config();
    c.kkiai.wrapped_queries = true;
    let sim = start(c).await;
    let v = Vendor::Kkiai;
    let id = create_ok(
        &sim,
        v,
        &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
    )
    .await;
    let url = query_url(&sim, v, &id, Tier::Std);
    for _ in 0..4000 {
        let (st, b) = get(v, &url, key(v)).await;
        assert_eq!(st, 200);
        assert_eq!(b["code"], "success");
        // The Kling answer sits at data.data; its task at data.data.data.
        let inner = &b["data"]["data"]["data"];
        assert_eq!(inner["task_id"], json!(id));
        if b["data"]["status"] == "SUCCESS" {
            assert_eq!(inner["task_status"], "succeed");
            assert_eq!(b["data"]["progress"], "100%");
            assert!(inner["task_result"]["videos"][0]["url"].is_string());
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("never completed");
}

#[tokio::test]
async fn kkiai_gateway_errors_use_the_openai_envelope() {
    let mut c = config();
    c.kkiai.gateway_errors = true;
    c.kkiai.keys[0].balance = 1.0;
    let sim = start(c).await;
    let v = Vendor::Kkiai;
    let body = create_body(v, &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"));
    let (st, e) = post(&sim, v, Tier::Std, "wrong", &body).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (401, Some("invalid_token")),
        "{e}"
    );
    let (st, e) = post(&sim, v, Tier::Std, key(v), &body).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (403, Some("insufficient_user_quota")),
        "{e}"
    );
    // Kling's own refusals keep Kling's envelope.
    let mut bad = body.clone();
    bad["mode"] = json!("ultra");
    let (st, e) = post(&sim, v, Tier::Std, key(v), &bad).await;
    assert_eq!((st, e["code"].as_u64()), (400, Some(1201)), "{e}");
}
