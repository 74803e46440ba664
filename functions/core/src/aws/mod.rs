//! AWS adapters: the DynamoDB catalog and its stream, the S3 store and presigner, SQS
//! redelivery, EventBridge, the API Gateway authorizer's claims, and the SDK's configuration.

mod apigw;
pub mod capacity;
mod connections;
mod dynamo;
mod eventbridge;
mod presign;
mod s3;
mod secrets;
mod sqs;
mod stream;
mod tls;
mod usage;

use anyhow::Context;

pub use apigw::ApiGatewayJwt;
pub use connections::{Audience, Connections};
pub use dynamo::DynamoCatalog;
pub use eventbridge::EventBridgeBus;
pub use s3::S3Store;
pub use secrets::webhook_secret;
pub use sqs::SqsRedeliver;
pub use stream::change_of;
pub use tls::{https_client, https_client_from_env};

/// Loads the SDK configuration once. The standard variables apply, `AWS_ENDPOINT_URL*`
/// included, so the same binaries run against an emulator; HTTPS trusts the bundled roots.
pub async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client_from_env()?).load().await)
}

/// Virtual-hosted buckets need DNS an emulator does not have: use path style when the endpoint is overridden.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let overridden =
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    aws_sdk_s3::Client::from_conf(s3_config(aws_sdk_s3::config::Builder::from(sdk), overridden))
}

/// How every S3 client of ours is set up, on AWS and in the local stack.
pub fn s3_config(builder: aws_sdk_s3::config::Builder, path_style: bool) -> aws_sdk_s3::Config {
    builder
        .force_path_style(path_style)
        // Presigned URLs carry only the checksum the client declared, never one the SDK
        // computes over an empty body.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build()
}

/// The S3 adapter for `bucket`, signing with the configuration's credentials.
pub fn s3_store(sdk: &aws_config::SdkConfig, bucket: &str) -> anyhow::Result<S3Store> {
    let credentials = sdk.credentials_provider().context("no AWS credentials provider configured")?;
    Ok(S3Store::new(s3_client(sdk), credentials, bucket))
}
