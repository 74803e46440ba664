//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! response types they serialize: served at `GET /openapi.json`, committed as `openapi.json`
//! (a test fails when that file is stale).

use axum::Json;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::responses::Unauthorized;
use crate::identity::Caller;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Picasso",
        description = "Serverless file ingest: upload slots with presigned S3 URLs (one PUT, or resumable parts), files processed asynchronously, each user's own files listed. Errors are always `{\"error\": {\"code\", \"message\"}}`; every operation needs a bearer JWT.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        super::uploads::create_upload,
        super::files::list_files,
        super::files::get_file,
        super::uploads::delete_file,
        super::multipart::sign_parts,
        super::multipart::list_parts,
        super::multipart::complete,
        super::usage::get_usage,
        serve,
    ),
    components(schemas(super::files::ListScope, super::files::ListOrder, crate::error::ErrorBody)),
    modifiers(&Bearer),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Every operation takes `Authorization: Bearer <JWT>` (API Gateway's JWT authorizer on AWS).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        doc.components.get_or_insert_default().add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    camel_case_links(&mut doc);
    doc
}

/// utoipa 5.5 writes a Link Object's fields in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef`, `requestBody`, and tools ignore the others.
fn camel_case_links(doc: &mut Value) {
    let operations = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
        .flat_map(|item| item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()));
    for op in operations {
        let responses = op.get_mut("responses").and_then(Value::as_object_mut).into_iter().flat_map(|r| r.values_mut());
        for link in responses.filter_map(|r| r.get_mut("links")?.as_object_mut()).flat_map(|l| l.values_mut()) {
            let Some(link) = link.as_object_mut() else { continue };
            for (snake, camel) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(v) = link.remove(snake) {
                    link.insert(camel.to_owned(), v);
                }
            }
        }
    }
}

/// The document as committed in `openapi.json`: pretty, with a final newline.
pub fn to_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// This document.
///
/// The API's OpenAPI 3.1 description, as served by this deployment.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "getOpenApi",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object),
        Unauthorized,
    ))]
pub(super) async fn serve(_caller: Caller) -> impl IntoResponse {
    Json(document())
}
