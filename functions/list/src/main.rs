//! `GET /files`, `GET /files/{id}` and `GET /openapi.json` behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    picasso::telemetry::init();
    let metrics = picasso::metrics::emf()?;
    let state = picasso::lambda::app_state().await?;
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, picasso::api::list_router(state)).await
}
