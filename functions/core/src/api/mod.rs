//! The HTTP API as axum routers, served by `lambda_http` in Lambda and by a TCP listener
//! locally. This module only assembles them; each resource has its own.

mod files;
mod multipart;
pub mod openapi;
pub mod page;
mod state;
mod uploads;
mod usage;
pub mod wire;

use axum::Router;
use axum::routing::{delete, get, post};
use http::StatusCode;

pub use files::ListParams;
pub use state::AppState;
pub use wire::UploadRequest;

use crate::error::ApiError;

/// Every write: `POST /upload`, the multipart routes and `DELETE /files/{id}`.
pub fn upload_router(state: AppState) -> Router {
    finish(upload_routes(), state)
}

/// `GET /files`, `GET /files/{id}`, `GET /usage` and `GET /openapi.json`.
pub fn list_router(state: AppState) -> Router {
    finish(list_routes(), state)
}

/// Every route of both functions, as the local stack serves them.
pub fn router(state: AppState) -> Router {
    finish(upload_routes().merge(list_routes()), state)
}

fn upload_routes() -> Router<AppState> {
    Router::new()
        .route("/upload", post(uploads::create_upload))
        .route("/files/{id}", delete(uploads::delete_file))
        .route("/files/{id}/parts", post(multipart::sign_parts).get(multipart::list_parts))
        .route("/files/{id}/complete", post(multipart::complete))
}

fn list_routes() -> Router<AppState> {
    Router::new()
        .route("/files", get(files::list_files))
        .route("/files/{id}", get(files::get_file))
        .route("/usage", get(usage::get_usage))
        .route("/openapi.json", get(openapi::serve))
}

/// Unknown paths and methods get the API's JSON error too.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this path")
        })
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}
