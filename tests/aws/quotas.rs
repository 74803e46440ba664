//! Per-user quotas on DynamoDB: the usage item written before each new file (its slot) and
//! in the same transaction as each delete, and settled from the files when read.

use std::sync::Arc;

use picasso::catalog::Catalog;

use crate::common::quota;

async fn catalog() -> Arc<dyn Catalog> {
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME: run `make test`");
    Arc::new(picasso::aws::DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), table))
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn two_requests_at_the_limit_admit_exactly_one() {
    quota::one_of_two_at_the_limit(catalog().await).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn usage_follows_random_creates_finishes_deletes_and_expiries() {
    quota::usage_follows_random_sequences(catalog().await, 40).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn twenty_slots_asked_at_once_are_all_admitted() {
    quota::a_burst_within_the_limit_is_all_admitted(catalog().await, 20).await;
}

/// A slot whose file never committed (the upload function died between the two writes, or
/// the file's put failed): it counts as pending while the file may still be on its way, and
/// then gives its slot and bytes back.
#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_slot_whose_file_never_committed_counts_for_a_minute_then_is_given_back() {
    use picasso::catalog::{Admission, Limits, Usage};
    use picasso::domain::{ContentType, FileName, FileRecord, FileSize, Owner, now};

    let cat = catalog().await;
    let owner = Owner::parse(&format!("crash-{}", uuid::Uuid::new_v4())).unwrap();
    let file = || {
        FileRecord::pending(
            owner.clone(),
            FileName::parse("f.txt").unwrap(),
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(7),
        )
    };
    let limits = Limits { pending: Some(1), bytes: None };
    let later = now() + std::time::Duration::from_secs(3600);
    let lost = file();
    assert_eq!(cat.admit(&lost, later, &limits).await.unwrap(), Admission::Admitted);
    // Its file's write never happened: take the item away behind the catalog's back.
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let table = std::env::var("TABLE_NAME").unwrap();
    aws_sdk_dynamodb::Client::new(&sdk)
        .delete_item()
        .table_name(&table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(lost.id.to_string()))
        .send()
        .await
        .unwrap();

    assert_eq!(cat.usage(&owner, now()).await.unwrap(), Usage { pending: 1, bytes: 7 }, "it may still be committing");
    let next = file();
    assert!(matches!(cat.admit(&next, later, &limits).await.unwrap(), Admission::Refused(..)), "never too little");
    let minute_on = now() + std::time::Duration::from_secs(61);
    assert_eq!(cat.usage(&owner, minute_on).await.unwrap(), Usage::default(), "given back");
    let next = FileRecord { uploaded_at: minute_on, ..file() };
    assert_eq!(cat.admit(&next, later, &limits).await.unwrap(), Admission::Admitted);
    assert_eq!(cat.usage(&owner, minute_on).await.unwrap(), Usage { pending: 1, bytes: 7 });
}
