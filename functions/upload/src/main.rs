//! Every write behind API Gateway: `POST /upload`, the multipart routes, `DELETE /files/{id}`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    picasso::telemetry::init();
    let metrics = picasso::metrics::emf()?;
    let state = picasso::lambda::app_state().await?;
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, picasso::api::upload_router(state)).await
}
