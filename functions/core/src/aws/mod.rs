//! AWS adapters (DynamoDB catalog, S3 object store, SQS redelivery) and how the Lambda
//! functions build them from the environment.

mod dynamo;
mod presign;
mod s3;
mod sqs;
mod tls;

use std::sync::Arc;

use anyhow::Context;

pub use dynamo::DynamoCatalog;
pub use s3::S3Store;
pub use sqs::SqsRedeliver;
pub use tls::{https_client, https_client_from_env};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::store::ObjectStore;

/// Loads the SDK configuration once. The standard variables apply, `AWS_ENDPOINT_URL*`
/// included, so the same binaries run against an emulator; HTTPS trusts the bundled roots.
pub async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client_from_env()?).load().await)
}

/// Virtual-hosted buckets need DNS an emulator does not have: use path style when the endpoint is overridden.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let overridden =
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(overridden)
        // Presigned URLs carry only the checksum the client declared, never one the SDK
        // computes over an empty body.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The S3 adapter for `bucket`, signing with the configuration's credentials.
pub fn s3_store(sdk: &aws_config::SdkConfig, bucket: &str) -> anyhow::Result<S3Store> {
    let credentials = sdk.credentials_provider().context("no AWS credentials provider configured")?;
    Ok(S3Store::new(s3_client(sdk), credentials, bucket))
}

/// Both AWS adapters, built from one SDK configuration.
pub async fn adapters(config: &Config) -> anyhow::Result<(DynamoCatalog, S3Store)> {
    let sdk = sdk_config().await?;
    Ok((
        DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name),
        s3_store(&sdk, &config.bucket_name)?,
    ))
}

/// The API's state on AWS: configuration from the environment, AWS adapters.
pub async fn app_state() -> anyhow::Result<crate::api::AppState> {
    let config = Config::from_env()?;
    let (catalog, store) = adapters(&config).await?;
    let auth = crate::identity::api_gateway(&config);
    Ok(crate::api::AppState { catalog: Arc::new(catalog), store: Arc::new(store), config: Arc::new(config), auth })
}

/// The processor on AWS: budget from the function's memory, the sweeper when the queue is known.
pub async fn processor() -> anyhow::Result<crate::processor::Processor> {
    use crate::budget::MemoryBudget;
    let config = Config::from_env()?;
    let sdk = sdk_config().await?;
    let catalog: Arc<dyn Catalog> =
        Arc::new(DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name));
    let store: Arc<dyn ObjectStore> = Arc::new(s3_store(&sdk, &config.bucket_name)?);
    let mut p = crate::processor::Processor::new(catalog.clone(), store.clone(), &config.bucket_name);
    let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok();
    if let Some(b) = config
        .processing_memory_mb
        .map(|mb| MemoryBudget::new(mb << 20))
        .or_else(|| MemoryBudget::for_lambda(memory.as_deref()))
    {
        p.inspector.budget = b;
    }
    p.max_receive_count = config.max_receive_count;
    p.pending_ttl = config.pending_ttl;
    p.sweeper = config.queue_url.clone().map(|queue_url| crate::sweeper::Sweeper {
        catalog,
        store,
        redeliver: Arc::new(SqsRedeliver::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
        bucket: config.bucket_name.clone(),
        pending_grace: config.upload_url_ttl + std::time::Duration::from_secs(60),
        batch: 500,
    });
    Ok(p)
}
