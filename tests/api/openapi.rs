//! The OpenAPI document: generated from the code, committed as `openapi.json`, served at
//! `GET /openapi.json`, and complete against the API guide's tables (docs/api.md).
//! `UPDATE_OPENAPI=1 cargo test --test api openapi` rewrites the committed file.

use crate::common;

use common::{MemoryApp, repo_path};
use serde_json::Value;

fn committed() -> String {
    std::fs::read_to_string(repo_path("openapi.json")).unwrap_or_default()
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = picasso::api::openapi::to_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(repo_path("openapi.json"), &generated).unwrap();
    }
    assert!(
        committed() == generated,
        "openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
}

#[tokio::test]
async fn it_is_served_to_callers_with_a_token() {
    let app = MemoryApp::new();
    let (s, served) = app.call("GET", "/openapi.json", None).await;
    assert_eq!(s, 200);
    assert_eq!(served, serde_json::from_str::<Value>(&picasso::api::openapi::to_json()).unwrap());
    let (s, _) = app.call_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(s, 401);
}

#[test]
fn every_route_status_and_error_code_of_the_api_guide_is_in_it() {
    let doc: Value = serde_json::from_str(&picasso::api::openapi::to_json()).unwrap();
    let text = doc.to_string();
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]), "every operation needs the bearer token");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (method, path) in [
        ("post", "/upload"),
        ("get", "/files"),
        ("get", "/files/{id}"),
        ("delete", "/files/{id}"),
        ("post", "/files/{id}/parts"),
        ("get", "/files/{id}/parts"),
        ("post", "/files/{id}/complete"),
        ("get", "/openapi.json"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
    }
    // Every `code` of the API guide's tables (a row's last cell), and its status.
    let api = std::fs::read_to_string(repo_path("docs/api.md")).unwrap();
    let mut seen = 0;
    for row in api.lines().filter(|l| l.starts_with('|') && l.matches('`').count() >= 2) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let Some(last) = cells.last().filter(|c| !c.contains("error.code")) else { continue };
        for code in last.split('`').skip(1).step_by(2) {
            assert!(text.contains(&format!("`{code}`")), "error code {code} of docs/api.md is not in openapi.json");
            seen += 1;
        }
        for status in cells[cells.len() - 2].split(|c: char| !c.is_ascii_digit()).filter(|s| s.len() == 3) {
            assert!(text.contains(&format!("\"{status}\"")), "status {status} of docs/api.md is not in openapi.json");
        }
    }
    assert!(seen >= 25, "read {seen} codes from docs/api.md's tables");
    // Stateful testing follows the link from a new upload to the file.
    let link = &doc["paths"]["/upload"]["post"]["responses"]["201"]["links"]["GetFile"];
    assert_eq!(
        (link["operationId"].as_str(), link["parameters"]["id"].as_str()),
        (Some("getFile"), Some("$response.body#/id"))
    );
    // The file object's fields, as docs/api.md lists them.
    let file = &doc["components"]["schemas"]["FileObject"]["properties"];
    for field in [
        "id",
        "owner",
        "filename",
        "content_type",
        "size",
        "status",
        "processed",
        "uploaded_at",
        "processed_at",
        "error",
        "sha256",
        "detected_type",
        "metadata",
        "thumbnail_url",
    ] {
        assert!(file[field].is_object(), "File.{field}");
    }
}

/// What client generators need: named variants told apart by a discriminator, names that are
/// no language's own type, an SPDX license, an `operationId` that reads as a method name, and
/// descriptions written for API users.
#[test]
fn generators_get_named_variants_clear_names_and_method_names() {
    let doc: Value = serde_json::from_str(&picasso::api::openapi::to_json()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let target = &schemas["UploadTarget"];
    assert_eq!(target["discriminator"]["propertyName"], "method", "{target}");
    let variants: Vec<&str> = target["oneOf"].as_array().unwrap().iter().map(|v| v["$ref"].as_str().unwrap()).collect();
    assert_eq!(variants, ["#/components/schemas/PutUpload", "#/components/schemas/MultipartUpload"]);
    for (name, method) in [("PutUpload", "PUT"), ("MultipartUpload", "MULTIPART")] {
        assert_eq!(schemas[name]["properties"]["method"]["enum"], serde_json::json!([method]), "{name}");
        assert_eq!(target["discriminator"]["mapping"][method], format!("#/components/schemas/{name}"));
    }
    for clash in ["File", "Error", "Object", "Date", "Response", "Request"] {
        assert!(!schemas.contains_key(clash), "a schema named {clash} clashes with a language's own type");
    }
    assert_eq!(doc["info"]["license"]["identifier"], "MIT");
    let text = doc.to_string();
    for rust in ["README", "[`", "::", "`Value`", "ALLOWED_CONTENT_TYPES", "MAX_UPLOAD_BYTES", "MULTIPART_THRESHOLD"] {
        assert!(!text.contains(rust), "the document speaks of {rust:?}: descriptions are for API users");
    }
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId {id:?} is not lowerCamelCase"
            );
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            ids.push(id.to_owned());
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "completeUpload",
            "createUpload",
            "deleteFile",
            "getFile",
            "getOpenApi",
            "getUsage",
            "listFiles",
            "listParts",
            "signParts"
        ]
    );
    for body in ["UploadBody", "PartNumbersBody", "CompleteBody"] {
        assert!(schemas[body]["example"].is_object() || schemas[body]["examples"].is_array(), "{body} has no example");
    }
}
