//! Per-user quotas on DynamoDB: the usage item written in the same transaction as each new
//! file and each delete, and settled from the files when read.

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
