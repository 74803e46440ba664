//! Processes uploaded files, fed by SQS (S3 notifications) or directly by S3.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    picasso::telemetry::init();
    let processor = Arc::new(picasso::aws::processor().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let processor = processor.clone();
        // Work stops a little before the invocation's deadline, so a file is handed back, not stranded.
        let deadline = std::time::Instant::now()
            + event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let deadline = tokio::time::Instant::from_std(deadline).checked_sub(picasso::processor::DEADLINE_MARGIN);
        async move { processor.handle_event_by(event.payload, deadline).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
