//! File events without AWS: what a stream batch publishes, where a batch resumes when the bus
//! refuses an entry, webhook messages read from the bus's envelope, and the WebSocket API's
//! `$connect` authorizer.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use picasso::aws::change_of;
use picasso::change::{Change, EventType, EventTypes};
use picasso::notify::webhook::from_envelope;
use picasso::notify::{Logged, Publisher, body, publish_batch};
use serde_json::Value;

use crate::common::repo_path;

fn stream_file() -> StreamEvent {
    serde_json::from_str(&std::fs::read_to_string(repo_path("events/dynamodb-stream.json")).unwrap()).unwrap()
}

fn logged(event: &StreamEvent) -> Vec<Logged> {
    event
        .records
        .iter()
        .map(|r| Logged { position: r.change.sequence_number.clone().unwrap(), change: change_of(r) })
        .collect()
}

/// A bus that keeps what it accepts and refuses the events whose ids it is told.
#[derive(Default)]
struct Bus {
    refuse: Vec<String>,
    got: Mutex<Vec<Change>>,
    down: bool,
}

#[async_trait]
impl Publisher for Bus {
    async fn publish(&self, changes: &[Change]) -> anyhow::Result<Vec<bool>> {
        anyhow::ensure!(!self.down, "the bus is unreachable");
        let accepted: Vec<bool> = changes.iter().map(|c| !self.refuse.contains(&c.id())).collect();
        let mut got = self.got.lock().unwrap();
        got.extend(changes.iter().zip(&accepted).filter(|(_, ok)| **ok).map(|(c, _)| c.clone()));
        Ok(accepted)
    }
}

#[test]
fn a_stream_batch_of_a_files_life_is_its_events_and_the_claim_is_none() {
    let event = stream_file();
    let changes: Vec<Option<Change>> = event.records.iter().map(|r| change_of(r).unwrap()).collect();
    let seen: Vec<Option<(EventType, u64)>> = changes.iter().map(|c| c.as_ref().map(|c| (c.kind, c.version))).collect();
    assert_eq!(
        seen,
        [Some((EventType::Created, 1)), None, Some((EventType::Processed, 3)), Some((EventType::Deleted, 4))]
    );
    let processed = body(changes[2].as_ref().unwrap());
    assert_eq!(processed["id"], "0192f6d8-7a1b-7c3d-8e4f-5a6b7c8d9e8a.3");
    assert_eq!(processed["type"], "file.processed");
    assert_eq!(processed["timestamp"], "2026-11-30T06:00:02.000Z", "the stream record's commit time");
    assert_eq!(processed["data"]["metadata"]["width"], 640);
    assert_eq!(processed["data"]["owner"], "3f8e5f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
    assert!(processed["data"].get("thumbnail_url").is_none());
}

#[test]
fn records_that_are_no_file_are_no_event_and_an_unreadable_file_is_an_error() {
    let mut event = stream_file();
    let mut usage = event.records[0].clone();
    usage.change.keys = serde_json::from_value(serde_json::json!({"id": {"S": "usage#alice"}})).unwrap();
    assert!(change_of(&usage).unwrap().is_none(), "per-user usage items are no file");
    let broken = &mut event.records[0];
    broken.change.new_image =
        serde_json::from_value(serde_json::json!({"id": {"S": "0192f6d8-7a1b-7c3d-8e4f-5a6b7c8d9e8a"}})).unwrap();
    assert!(change_of(broken).is_err(), "an image without the file's fields is not skipped silently");
}

#[tokio::test]
async fn a_batch_publishes_the_chosen_types_and_resumes_from_the_first_refused() {
    let event = stream_file();
    let bus = Bus::default();
    assert_eq!(publish_batch(logged(&event), &EventTypes::default_published(), &bus).await, None);
    let kinds: Vec<EventType> = bus.got.lock().unwrap().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [EventType::Processed, EventType::Deleted], "created is not published by default");

    let refusing = Bus { refuse: vec!["0192f6d8-7a1b-7c3d-8e4f-5a6b7c8d9e8a.3".into()], ..Bus::default() };
    let resume = publish_batch(logged(&event), &EventTypes::all(), &refusing).await;
    assert_eq!(resume.as_deref(), Some("100000000000000000003"), "the processed record's position");

    let down = Bus { down: true, ..Bus::default() };
    assert_eq!(
        publish_batch(logged(&event), &EventTypes::all(), &down).await.as_deref(),
        Some("100000000000000000001")
    );

    let mut unreadable = logged(&event);
    unreadable[2].change = Err(anyhow::anyhow!("corrupt image"));
    let bus = Bus::default();
    assert_eq!(publish_batch(unreadable, &EventTypes::all(), &bus).await.as_deref(), Some("100000000000000000003"));
    let kinds: Vec<EventType> = bus.got.lock().unwrap().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [EventType::Created], "what came before is published, nothing after");
}

#[test]
fn a_webhook_message_is_the_envelopes_detail() {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("events/sqs-webhook.json")).unwrap()).unwrap();
    let (id, json) = from_envelope(file["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(id, "0192f6d8-7a1b-7c3d-8e4f-5a6b7c8d9e8a.3");
    let event: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((event["type"].as_str(), event["data"]["version"].as_u64()), (Some("file.processed"), Some(3)));
    for bad in ["not json", "{}", r#"{"detail": "x"}"#, r#"{"detail": {"type": "file.created"}}"#] {
        assert!(from_envelope(bad).is_err(), "{bad}");
    }
}

mod authorizer {
    use super::*;
    use picasso::domain::Owner;
    use picasso::jwt::{JwtVerifier, Keys};
    use picasso::lambda::Authorizer;
    use picasso_local::auth::dev::{DEV_AUDIENCE, DevIssuer};

    const ISSUER: &str = "http://127.0.0.1:1";

    fn dev_issuer() -> DevIssuer {
        let dir = std::env::temp_dir().join(format!("picasso-authorizer-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        DevIssuer::open(&dir, ISSUER, "cognito:groups").unwrap()
    }

    fn issuer() -> (DevIssuer, Authorizer) {
        let dev = dev_issuer();
        let verifier = JwtVerifier::fixed(ISSUER, DEV_AUDIENCE, "cognito:groups", Keys::from_jwks(&dev.jwks()));
        (dev, Authorizer::new(verifier, "admins"))
    }

    fn connect(query: &[(&str, &str)]) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(repo_path("events/websocket-authorizer.json")).unwrap())
                .unwrap();
        event["queryStringParameters"] = query.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        event["multiValueQueryStringParameters"] =
            query.iter().map(|(k, v)| (k.to_string(), Value::from(vec![*v]))).collect();
        serde_json::from_value(event).unwrap()
    }

    #[tokio::test]
    async fn a_valid_token_connects_to_its_owners_events_only() {
        let (dev, auth) = issuer();
        let (token, _) = dev.mint(&Owner::parse("alice").unwrap(), &[]).unwrap();
        let allowed = auth.authorize(connect(&[("token", &token)])).await.unwrap();
        assert_eq!(allowed["principalId"], "alice");
        assert_eq!(allowed["context"]["audience"], "owner#alice");
        let statement = &allowed["policyDocument"]["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Resource"][0], "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/live/$connect");
    }

    #[tokio::test]
    async fn everyone_is_for_admins_and_anything_else_is_unauthorized() {
        let (dev, auth) = issuer();
        let (admin, _) = dev.mint(&Owner::parse("root").unwrap(), &["admins".into()]).unwrap();
        let all = auth.authorize(connect(&[("token", &admin), ("scope", "all")])).await.unwrap();
        assert_eq!(all["context"]["audience"], "all");
        let (alice, _) = dev.mint(&Owner::parse("alice").unwrap(), &[]).unwrap();
        let stranger = dev_issuer();
        let (forged, _) = stranger.mint(&Owner::parse("alice").unwrap(), &[]).unwrap();
        for (why, query) in [
            ("no token", vec![]),
            ("not a JWT", vec![("token", "nonsense")]),
            ("signed by another key", vec![("token", forged.as_str())]),
            ("everyone's, not an admin", vec![("token", alice.as_str()), ("scope", "all")]),
            ("an unknown scope", vec![("token", alice.as_str()), ("scope", "others")]),
        ] {
            let e = auth.authorize(connect(&query)).await.unwrap_err();
            assert_eq!(e.to_string(), "Unauthorized", "{why}");
        }
    }
}
