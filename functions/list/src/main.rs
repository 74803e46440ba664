//! `GET /files` and `GET /files/{id}` behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    picasso::telemetry::init();
    let state = picasso::aws::app_state().await?;
    lambda_http::run(picasso::api::list_router(state)).await
}
