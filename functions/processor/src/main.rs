//! Processes uploaded files, fed by SQS (S3 notifications) or directly by S3.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    picasso::telemetry::init();
    let metrics = picasso::metrics::emf()?;
    let function = Arc::new(picasso::lambda::ProcessorFunction::from_env().await?);
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        let deadline = picasso::processor::work_deadline(event.context.deadline());
        async move { function.handle_event_by(event.payload, deadline).await.map_err(lambda_runtime::Error::from) }
    });
    metrics_cloudwatch_embedded::lambda::service::run(metrics, handler).await
}
