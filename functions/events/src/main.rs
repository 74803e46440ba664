//! Events: one binary in four roles, which the template sets in `EVENTS_ROLE`: `publish` (the
//! files table's stream → EventBridge and live connections), `webhook` (the bus's queue →
//! signed POSTs), `authorizer` (the WebSocket API's `$connect`) and `connections`
//! (`$connect`, `$disconnect`). One build serves the four functions.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use metrics_cloudwatch_embedded::lambda::service::run;
use picasso::lambda::{Authorizer, ConnectionsFunction, EventsFunction, WebhookFunction};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    picasso::telemetry::init();
    let metrics = picasso::metrics::emf()?;
    match std::env::var("EVENTS_ROLE").unwrap_or_default().as_str() {
        "publish" => {
            let f = Arc::new(EventsFunction::from_env().await?);
            run(
                metrics,
                service_fn(move |e: LambdaEvent<StreamEvent>| {
                    let f = f.clone();
                    async move { Ok::<_, Error>(f.handle(e.payload).await) }
                }),
            )
            .await
        }
        "webhook" => {
            let f = Arc::new(WebhookFunction::from_env().await?);
            run(
                metrics,
                service_fn(move |e: LambdaEvent<SqsEvent>| {
                    let f = f.clone();
                    async move { Ok::<_, Error>(f.handle(e.payload).await) }
                }),
            )
            .await
        }
        "authorizer" => {
            let f = Arc::new(Authorizer::from_env().await?);
            run(
                metrics,
                service_fn(move |e: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
                    let f = f.clone();
                    async move { f.authorize(e.payload).await.map_err(Error::from) }
                }),
            )
            .await
        }
        "connections" => {
            let f = Arc::new(ConnectionsFunction::from_env().await?);
            run(
                metrics,
                service_fn(move |e: LambdaEvent<Value>| {
                    let f = f.clone();
                    async move { f.handle(e.payload).await.map_err(Error::from) }
                }),
            )
            .await
        }
        other => Err(format!("EVENTS_ROLE={other:?}: expected publish, webhook, authorizer or connections").into()),
    }
}
