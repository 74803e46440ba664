//! The Lambda composition root: each function's adapters built from the environment, and
//! the processor function's dispatch of what invokes it (SQS, S3, the sweeper's schedule).
//! The events and webhook functions are in `events.rs`, the WebSocket API's in `live.rs`.

mod events;
mod live;

pub use events::{EventsFunction, WebhookFunction};
pub use live::{Authorizer, ConnectionsFunction};

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::AppState;
use crate::aws::{ApiGatewayJwt, DynamoCatalog, SqsRedeliver, s3_store, sdk_config};
use crate::budget::MemoryBudget;
use crate::config::Config;
use crate::domain::now;
use crate::events::Incoming;
use crate::processor::Processor;
use crate::sweeper::Sweeper;

/// The API's state on AWS: configuration from the environment, AWS adapters, and the
/// callers API Gateway's authorizer verified.
pub async fn app_state() -> anyhow::Result<AppState> {
    let config = Config::from_env()?;
    let sdk = sdk_config().await?;
    let catalog = Arc::new(DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name));
    let s3 = Arc::new(s3_store(&sdk, &config.bucket_name)?);
    let auth = Arc::new(ApiGatewayJwt { groups_claim: config.groups_claim.clone() });
    Ok(AppState::new(catalog, s3.clone(), s3, config, auth))
}

/// The page the list function serves at `GET /`: its settings from the environment (the
/// stack's parameters), storage's origin from a presigned URL.
pub async fn page(state: &AppState) -> anyhow::Result<crate::api::page::Page> {
    use crate::api::page::{Page, PageSettings, storage_origin};
    let storage = storage_origin(state.presigner.as_ref()).await?;
    Page::new(&PageSettings::from_lookup(|k| std::env::var(k).ok(), storage)?)
}

/// The processor function: the processor, and the sweeper when the queue is known.
pub struct ProcessorFunction {
    pub processor: Processor,
    pub sweeper: Option<Sweeper>,
}

impl ProcessorFunction {
    /// Budget from the function's memory (or `PROCESSING_MEMORY_MB`).
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env()?;
        let sdk = sdk_config().await?;
        let catalog = Arc::new(DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name));
        let store = Arc::new(s3_store(&sdk, &config.bucket_name)?);
        let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok();
        let budget = config
            .processing_memory_mb
            .map(|mb| MemoryBudget::new(mb << 20))
            .or_else(|| MemoryBudget::for_lambda(memory.as_deref()))
            .unwrap_or_else(|| MemoryBudget::new(crate::budget::DEFAULT_BUDGET));
        let sweeper = config.queue_url.clone().map(|queue_url| {
            let redeliver = Arc::new(SqsRedeliver::new(aws_sdk_sqs::Client::new(&sdk), queue_url));
            Sweeper::from_config(catalog.clone(), store.clone(), redeliver, &config)
        });
        Ok(Self { processor: Processor::from_config(catalog, store, &config, budget), sweeper })
    }

    /// Any supported event in, the response Lambda expects out.
    pub async fn handle_event(&self, event: Value) -> anyhow::Result<Value> {
        self.handle_event_by(event, None).await
    }

    /// The same, stopping work by `deadline` (the invocation's, less
    /// [`crate::processor::DEADLINE_MARGIN`]).
    pub async fn handle_event_by(&self, event: Value, deadline: Option<Instant>) -> anyhow::Result<Value> {
        match Incoming::from_value(event)? {
            Incoming::Sqs(e) => Ok(serde_json::to_value(self.processor.handle_sqs(&e, deadline).await)?),
            Incoming::S3(e) => self.processor.handle_s3(&e, deadline).await.map(|()| Value::Null),
            Incoming::Schedule => {
                let sweeper =
                    self.sweeper.as_ref().context("scheduled event, but no sweeper is configured (QUEUE_URL)")?;
                let swept = sweeper.sweep(now()).await?;
                Ok(json!({"expired_leases": swept.expired_leases, "arrived": swept.arrived, "waiting": swept.waiting}))
            }
        }
    }
}
