//! `POST /upload` behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    picasso::telemetry::init();
    let state = picasso::aws::app_state().await?;
    lambda_http::run(picasso::api::upload_router(state)).await
}
