//! Events: one binary in four roles, which the template sets in `EVENTS_ROLE`: `publish` (the
//! files table's stream → EventBridge and live connections), `webhook` (the bus's queue →
//! signed POSTs), `authorizer` (the WebSocket API's `$connect`) and `connections`
//! (`$connect`, `$disconnect`). One build serves the four functions.

use std::future::Future;
use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use picasso::lambda::{Authorizer, ConnectionsFunction, EventsFunction, WebhookFunction};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[tokio::main]
async fn main() -> Result<(), Error> {
    picasso::telemetry::init();
    match std::env::var("EVENTS_ROLE").unwrap_or_default().as_str() {
        "publish" => serve(EventsFunction::from_env().await?, |f, e| async move { Ok(f.handle(e).await) }).await,
        "webhook" => serve(WebhookFunction::from_env().await?, |f, e| async move { Ok(f.handle(e).await) }).await,
        "authorizer" => serve(Authorizer::from_env().await?, |f, e| async move { Ok(f.authorize(e).await?) }).await,
        "connections" => {
            serve(ConnectionsFunction::from_env().await?, |f, e| async move { Ok(f.handle(e).await?) }).await
        }
        other => Err(format!("EVENTS_ROLE={other:?}: expected publish, webhook, authorizer or connections").into()),
    }
}

/// Runs one role: `role` built once, each event's payload handed to `handle` with it.
async fn serve<T, A, R, Fut>(role: T, handle: fn(Arc<T>, A) -> Fut) -> Result<(), Error>
where
    T: Send + Sync + 'static,
    A: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
{
    let role = Arc::new(role);
    let metrics = picasso::metrics::emf()?;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |e: LambdaEvent<A>| handle(role.clone(), e.payload)),
    )
    .await
}
