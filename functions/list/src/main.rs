//! `GET /files`, `GET /files/{id}`, `GET /usage`, `GET /openapi.json` and the web page
//! (`GET /`) behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    picasso::telemetry::init();
    let metrics = picasso::metrics::emf()?;
    let state = picasso::lambda::app_state().await?;
    let page = picasso::api::page::router(picasso::lambda::page(&state).await?);
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, picasso::api::list_router(state).merge(page)).await
}
