//! A table written by the previous version (full-projection indexes, flat object keys) under
//! this one: `infra/backfill_index_keys.py` gives its records the new index keys, and their
//! files are still found, swept and processed at their old keys.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use picasso::catalog::{Catalog, Scope};
use picasso::domain::{FileId, KeyLayout, Status, now};
use serde_json::json;

use crate::e2e::env;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// An item as the previous version wrote it: status keys of its four indexes, no `open`, no
/// `key_layout`; `owner` only if given (records from before owners have none, nor `shard`).
fn legacy_item(id: FileId, owner: Option<&str>, status: &str) -> HashMap<String, AttributeValue> {
    let h = id.to_string().chars().last().unwrap();
    let mut item = HashMap::from([
        ("id".to_owned(), s(id.to_string())),
        ("filename".to_owned(), s("old.txt")),
        ("content_type".to_owned(), s("text/plain")),
        ("size".to_owned(), AttributeValue::N("5".into())),
        ("status".to_owned(), s(status)),
        ("uploaded_at".to_owned(), s("2026-11-01T00:00:00.000Z")),
        ("status_id".to_owned(), s(format!("{status}#{id}"))),
        ("status_shard".to_owned(), s(format!("{status}#{h}"))),
    ]);
    if let Some(o) = owner {
        item.insert("owner".into(), s(o));
        item.insert("shard".into(), s(format!("file#{h}")));
    }
    item
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn records_of_the_previous_version_are_backfilled_swept_and_processed_at_their_flat_keys() {
    let env = env().await;
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = picasso::aws::s3_client(&sdk);
    let (table, bucket) = (std::env::var("TABLE_NAME").unwrap(), std::env::var("BUCKET_NAME").unwrap());
    let owner = format!("legacy-{}", uuid::Uuid::new_v4().simple());
    let (waiting, ownerless) = (FileId::new(), FileId::new());
    for item in [legacy_item(waiting, Some(&owner), "pending"), legacy_item(ownerless, None, "processed")] {
        dynamo.put_item().table_name(&table).set_item(Some(item)).send().await.unwrap();
    }
    // Its bytes arrived, at the key of that version, but the event was lost.
    let flat = format!("uploads/{waiting}");
    s3.put_object().bucket(&bucket).key(&flat).body(b"hello".to_vec().into()).send().await.unwrap();

    let catalog = env.state.catalog.clone();
    let future = FileId::new();
    let stale = |catalog: std::sync::Arc<dyn Catalog>| async move {
        catalog.stale(now(), future, 1000).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let everyone = |catalog: std::sync::Arc<dyn Catalog>| async move {
        let page = catalog.newest(&Scope::All, None, None, 1000).await.unwrap();
        page.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert!(!stale(catalog.clone()).await.contains(&waiting), "not in the open index yet");
    assert!(!everyone(catalog.clone()).await.contains(&ownerless), "not in the all-files index yet");

    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["infra/backfill_index_keys.py", "--table", &table])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the emulator's Python tools (.venv): run `make test`");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert!(stale(catalog.clone()).await.contains(&waiting), "the sweeper sees it");
    let named = Scope::Named(
        picasso::domain::Owner::parse(&owner).unwrap(),
        picasso::domain::NamePrefix::parse("OLD").unwrap().unwrap(),
    );
    let found = catalog.newest(&named, None, None, 10).await.unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), [waiting], "a search finds it");
    assert!(everyone(catalog.clone()).await.contains(&ownerless), "admins see it");
    let record = catalog.get(waiting).await.unwrap().unwrap();
    assert_eq!((record.key_layout, record.key().to_string()), (KeyLayout::Flat, flat.clone()));

    // Its notification, as the sweeper would send it: processed at the old key.
    let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": flat}}}]});
    env.processor.handle_event(event).await.unwrap();
    let done = catalog.get(waiting).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Processed, "{:?}", done.error);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!stale(catalog.clone()).await.contains(&waiting), "final: out of the open index");
}
