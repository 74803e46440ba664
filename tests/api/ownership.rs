//! Identity and ownership through the Lambda routers: the caller comes from API Gateway's
//! JWT-authorizer claims; each user sees only their own files; admins may see everyone's.

use crate::common;

use common::{ADMIN, ALICE, BOB, MemoryApp, User, error_code};
use picasso::catalog::{Catalog, Scope};
use picasso::domain::{FileId, Owner};
use picasso::events::ObjectRef;
use picasso::processor::Delivery;
use serde_json::{Value, json};

async fn upload_as(app: &MemoryApp, user: &User, name: &str, ctype: &str, body: &[u8]) -> String {
    let req = json!({"filename": name, "content_type": ctype, "size": body.len()});
    let (s, f) = app.call_as(Some(user), "POST", "/upload", Some(req)).await;
    assert_eq!(s, 201, "{f}");
    let id = f["id"].as_str().unwrap().to_owned();
    app.store.put_bytes(&common::key_of(&id), body.to_vec());
    id
}

async fn process(app: &MemoryApp, id: &str) {
    let obj = ObjectRef { bucket: "picasso-uploads".into(), key: common::key_of(id) };
    app.processor().handle_object(&obj, Delivery::default()).await.unwrap();
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn two_users_never_see_each_others_files() {
    let app = MemoryApp::new();
    let a1 = upload_as(&app, &ALICE, "a1.png", "image/png", &common::png(300, 200)).await;
    let b1 = upload_as(&app, &BOB, "b1.txt", "text/plain", b"bob's").await;
    let a2 = upload_as(&app, &ALICE, "a2.txt", "text/plain", b"alice's").await;
    process(&app, &a1).await;
    process(&app, &b1).await;

    let (_, mine) = app.call_as(Some(&ALICE), "GET", "/files", None).await;
    assert_eq!(ids(&mine), [a2.as_str(), a1.as_str()]);
    let (_, his) = app.call_as(Some(&BOB), "GET", "/files", None).await;
    assert_eq!(ids(&his), [b1.as_str()]);
    // The status filter is per user too.
    let (_, processed) = app.call_as(Some(&BOB), "GET", "/files?status=processed", None).await;
    assert_eq!(ids(&processed), [b1.as_str()]);
    // Another's file — and so its thumbnail and download links — is not found, not forbidden.
    let (s, b) = app.call_as(Some(&BOB), "GET", &format!("/files/{a1}"), None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (404, "not_found"));
    assert!(b.get("thumbnail_url").is_none() && b.get("download_url").is_none());
    let (s, own) = app.call_as(Some(&ALICE), "GET", &format!("/files/{a1}"), None).await;
    assert_eq!(s, 200);
    assert!(own["thumbnail_url"].is_string() && own["download_url"].is_string(), "{own}");
    assert_eq!(own["owner"], ALICE.sub);
    // The record keeps whose it is.
    let r = app.catalog.get(FileId::parse(&a1).unwrap()).await.unwrap().unwrap();
    assert_eq!(r.owner, Some(ALICE.owner()));
}

#[tokio::test]
async fn a_cursor_works_only_for_the_listing_it_came_from() {
    let app = MemoryApp::new();
    for i in 0..3 {
        upload_as(&app, &ALICE, &format!("{i}.txt"), "text/plain", b"x").await;
    }
    let (_, page) = app.call_as(Some(&ALICE), "GET", "/files?limit=2", None).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (s, next) = app.call_as(Some(&ALICE), "GET", &format!("/files?limit=2&cursor={cursor}"), None).await;
    assert_eq!((s.as_u16(), ids(&next).len()), (200, 1));
    for (user, query) in [(&BOB, ""), (&ADMIN, "&scope=all"), (&ALICE, "&status=pending")] {
        let (s, b) = app.call_as(Some(user), "GET", &format!("/files?limit=2&cursor={cursor}{query}"), None).await;
        assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_cursor"), "{} {query}", user.sub);
    }
}

#[tokio::test]
async fn admins_list_everyones_files_and_no_one_else_may() {
    let app = MemoryApp::new();
    let a = upload_as(&app, &ALICE, "a.txt", "text/plain", b"a").await;
    let b = upload_as(&app, &BOB, "b.txt", "text/plain", b"b").await;
    // A record from before files had owners: only an admin reaches it.
    let mut legacy = picasso::domain::FileRecord::pending(
        ALICE.owner(),
        picasso::domain::FileName::parse("old.txt").unwrap(),
        picasso::domain::ContentType::from_stored("text/plain".into()),
        picasso::domain::FileSize::from_stored(1),
    );
    legacy.owner = None;
    app.catalog.insert(&legacy, picasso::domain::now()).await.unwrap();
    let old = legacy.id.to_string();

    let (s, all) = app.call_as(Some(&ADMIN), "GET", "/files?scope=all&limit=2", None).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&all), [old.as_str(), b.as_str()]);
    let cursor = all["next_cursor"].as_str().unwrap();
    let (_, rest) = app.call_as(Some(&ADMIN), "GET", &format!("/files?scope=all&limit=2&cursor={cursor}"), None).await;
    assert_eq!(ids(&rest), [a.as_str()]);
    let (_, own) = app.call_as(Some(&ADMIN), "GET", "/files", None).await;
    assert!(ids(&own).is_empty(), "without scope=all an admin lists their own");
    for id in [&a, &old] {
        let (s, _) = app.call_as(Some(&ADMIN), "GET", &format!("/files/{id}"), None).await;
        assert_eq!(s, 200);
    }
    let (s, _) = app.call_as(Some(&ALICE), "GET", &format!("/files/{old}"), None).await;
    assert_eq!(s, 404, "an ownerless record is nobody's but an admin's");

    let (s, body) = app.call_as(Some(&ALICE), "GET", "/files?scope=all", None).await;
    assert_eq!((s.as_u16(), error_code(&body)), (403, "forbidden"));
    let (s, body) = app.call_as(Some(&ALICE), "GET", "/files?scope=everything", None).await;
    assert_eq!((s.as_u16(), error_code(&body)), (400, "invalid_scope"));
    // The admin group is configurable.
    let other = MemoryApp::with_config(common::test_config_with(&[("ADMIN_GROUP", "ops")]));
    let (s, _) = other.call_as(Some(&ADMIN), "GET", "/files?scope=all", None).await;
    assert_eq!(s, 403, "in the admins group, but the deployment's admin group is ops");
}

#[tokio::test]
async fn without_verified_claims_every_route_is_401_and_nothing_is_written() {
    let app = MemoryApp::new();
    let upload = json!({"filename": "a.txt", "content_type": "text/plain", "size": 1});
    for (method, uri, body) in [
        ("POST", "/upload", Some(upload)),
        ("GET", "/files", None),
        ("GET", &format!("/files/{}", FileId::new()), None),
        ("POST", "/upload", Some(json!({"not": "valid"}))),
    ] {
        let (s, b) = app.call_as(None, method, uri, body).await;
        assert_eq!((s.as_u16(), error_code(&b)), (401, "unauthorized"), "{method} {uri}");
    }
    assert!(app.catalog.newest(&Scope::All, None, None, 10).await.unwrap().is_empty());
    // And the header that says how to authenticate.
    let req = http::Request::builder().uri("/files").body(axum::body::Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(app.router(), req).await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    // A subject the authorizer passed but no one could own (empty) is refused the same way.
    let nobody = User { sub: "", groups: &[] };
    let (s, _) = app.call_as(Some(&nobody), "GET", "/files", None).await;
    assert_eq!(s, 401);
    assert!(Owner::parse("").is_none());
}

/// A request whose context carries what a Lambda authorizer returned (simple responses).
async fn call_with_lambda_context(app: &MemoryApp, context: Value, uri: &str) -> (http::StatusCode, Value) {
    use lambda_http::aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequestContext};
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.fields = serde_json::from_value(context).unwrap();
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.authorizer = Some(authorizer);
    let mut req = http::Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
    req.extensions_mut().insert(lambda_http::request::RequestContext::ApiGatewayV2(ctx));
    common::send(app.router(), req).await
}

#[tokio::test]
async fn a_lambda_authorizers_context_names_the_caller_too() {
    let app = MemoryApp::new();
    let alices = upload_as(&app, &ALICE, "a.txt", "text/plain", b"a").await;
    let (s, b) = call_with_lambda_context(&app, json!({"sub": ALICE.sub}), "/files").await;
    assert_eq!((s.as_u16(), ids(&b)), (200, vec![alices.as_str()]));
    let (s, _) = call_with_lambda_context(&app, json!({"sub": BOB.sub}), &format!("/files/{alices}")).await;
    assert_eq!(s, 404, "bob, named by the authorizer, does not see alice's file");
    let (s, _) = call_with_lambda_context(&app, json!({"sub": "root", "groups": ["admins"]}), "/files?scope=all").await;
    assert_eq!(s, 200, "groups from the context");
    let (s, _) = call_with_lambda_context(&app, json!({"sub": "root", "groups": "users"}), "/files?scope=all").await;
    assert_eq!(s, 403);
    for nobody in [json!({}), json!({"sub": ""}), json!({"sub": 7}), json!({"user": "alice"})] {
        let (s, b) = call_with_lambda_context(&app, nobody.clone(), "/files").await;
        assert_eq!((s.as_u16(), error_code(&b)), (401, "unauthorized"), "{nobody}");
    }
}

#[tokio::test]
async fn admins_read_others_files_but_never_change_them() {
    let app = MemoryApp::with_config(common::test_config_with(&[
        ("MAX_UPLOAD_BYTES", "104857600"),
        ("MULTIPART_THRESHOLD", "6291456"),
        ("MULTIPART_PART_BYTES", "5242880"),
    ]));
    let a = upload_as(&app, &ALICE, "a.txt", "text/plain", b"a").await;
    process(&app, &a).await;
    let (s, _) = app.call_as(Some(&ADMIN), "GET", &format!("/files/{a}"), None).await;
    assert_eq!(s, 200, "admins read everyone's files");
    let (s, body) = app.call_as(Some(&ADMIN), "DELETE", &format!("/files/{a}"), None).await;
    assert_eq!((s.as_u16(), error_code(&body)), (404, "not_found"), "as if it did not exist");
    let (s, file) = app.call_as(Some(&ALICE), "GET", &format!("/files/{a}"), None).await;
    assert_eq!((s.as_u16(), file["status"].as_str()), (200, Some("processed")), "the file is intact");
    assert!(app.store.get_bytes(&common::key_of(&a)).is_some(), "its bytes too");

    // Nor may they sign, list or complete the parts of someone else's upload.
    let slot = json!({"filename": "big.bin", "content_type": "application/octet-stream", "size": 7 << 20});
    let (s, big) = app.call_as(Some(&ALICE), "POST", "/upload", Some(slot)).await;
    assert_eq!(s, 201, "{big}");
    let id = big["id"].as_str().unwrap();
    for (method, uri, body) in [
        ("POST", format!("/files/{id}/parts"), Some(json!({"part_numbers": [1]}))),
        ("GET", format!("/files/{id}/parts"), None),
        ("POST", format!("/files/{id}/complete"), Some(json!({"parts": [{"part_number": 1, "etag": "x"}]}))),
        ("DELETE", format!("/files/{id}"), None),
    ] {
        let (s, b) = app.call_as(Some(&ADMIN), method, &uri, body).await;
        assert_eq!((s.as_u16(), error_code(&b)), (404, "not_found"), "{method} {uri}");
    }
    let (s, _) =
        app.call_as(Some(&ALICE), "POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [1]}))).await;
    assert_eq!(s, 200, "the owner still may");
    // An admin's own file is theirs to delete.
    let own = upload_as(&app, &ADMIN, "mine.txt", "text/plain", b"m").await;
    let (s, _) = app.call_as(Some(&ADMIN), "DELETE", &format!("/files/{own}"), None).await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn a_group_name_cannot_pass_for_the_admin_group() {
    // Another issuer's group "Former admins", flattened by API Gateway: not the admins group.
    let app = MemoryApp::with_config(common::test_config_with(&[("GROUPS_CLAIM", "groups")]));
    let former = User { sub: "44444444-4444-4444-8444-444444444444", groups: &["Former admins"] };
    let (s, body) = app.call_as_claim(&former, "groups", "GET", "/files?scope=all").await;
    assert_eq!((s.as_u16(), error_code(&body)), (403, "forbidden"));
    // The same issuer's single group, flattened or as JSON, is read.
    let admin = User { sub: "55555555-5555-4555-8555-555555555555", groups: &["admins"] };
    let (s, _) = app.call_as_claim(&admin, "groups", "GET", "/files?scope=all").await;
    assert_eq!(s, 200);
    // Cognito's group names hold no spaces: its flattened list of several is split.
    let cognito = MemoryApp::new();
    let both = User { sub: "66666666-6666-4666-8666-666666666666", groups: &["users", "admins"] };
    let (s, _) = cognito.call_as_claim(&both, "cognito:groups", "GET", "/files?scope=all").await;
    assert_eq!(s, 200);
    // A claim the deployment does not read makes no admin.
    let (s, _) = app.call_as_claim(&admin, "cognito:groups", "GET", "/files?scope=all").await;
    assert_eq!(s, 403);
    let (s, _) =
        call_with_lambda_context(&app, json!({"sub": "root", "groups": "Former admins"}), "/files?scope=all").await;
    assert_eq!(s, 403, "a Lambda authorizer's string is one group");
}
