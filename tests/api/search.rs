//! `GET /files?q=`: the caller's files whose name starts with q, in any case, newest first,
//! paged and combinable with `status`; refused when too long or with `scope=all`.

use std::time::Duration;

use picasso::catalog::Catalog;
use picasso::domain::{ContentType, FileName, FileRecord, FileSize, now};

use crate::common::{ADMIN, ALICE, BOB, MemoryApp, User, error_code};

async fn seed(app: &MemoryApp, user: &User, name: &str) -> String {
    let r = FileRecord::pending(
        user.owner(),
        FileName::parse(name).unwrap(),
        ContentType::from_stored("text/plain".into()),
        FileSize::from_stored(3),
    );
    app.catalog.insert(&r, now() + Duration::from_secs(600)).await.unwrap();
    r.id.to_string()
}

fn names(body: &serde_json::Value) -> Vec<&str> {
    body["items"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_search_finds_the_callers_files_by_the_start_of_their_name_in_any_case() {
    let app = MemoryApp::new();
    for name in ["Photo-1.jpg", "photo-2.jpg", "PHOTOGRAPHY.pdf", "a photo.jpg", "Ørsted.txt"] {
        seed(&app, &ALICE, name).await;
    }
    seed(&app, &BOB, "photo-bob.jpg").await;
    let (s, b) = app.call_as(Some(&ALICE), "GET", "/files?q=photo", None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(names(&b), ["PHOTOGRAPHY.pdf", "photo-2.jpg", "Photo-1.jpg"], "prefix only, newest first, not bob's");
    let (_, b) = app.call_as(Some(&ALICE), "GET", "/files?q=%C3%B8RS", None).await;
    assert_eq!(names(&b), ["Ørsted.txt"]);
    let (_, b) = app.call_as(Some(&ALICE), "GET", "/files?q=", None).await;
    assert_eq!(names(&b).len(), 5, "an empty q is no search");

    // Pages of one: each cursor continues the same search, and only it.
    let (_, first) = app.call_as(Some(&ALICE), "GET", "/files?q=photo&limit=1", None).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app.call_as(Some(&ALICE), "GET", &format!("/files?q=photo&limit=1&cursor={cursor}"), None).await;
    assert_eq!(names(&second), ["photo-2.jpg"]);
    let (s, b) = app.call_as(Some(&ALICE), "GET", &format!("/files?q=phot&limit=1&cursor={cursor}"), None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_cursor"), "a cursor of another search");
    let (s, b) = app.call_as(Some(&ALICE), "GET", &format!("/files?limit=1&cursor={cursor}"), None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_cursor"), "a search's cursor is not the listing's");
    let (s, b) = app.call_as(Some(&BOB), "GET", &format!("/files?q=photo&limit=1&cursor={cursor}"), None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_cursor"), "nor another user's");

    let (_, b) = app.call_as(Some(&ALICE), "GET", "/files?q=photo&status=processed", None).await;
    assert_eq!(names(&b), Vec::<&str>::new());
    let (_, b) = app.call_as(Some(&ALICE), "GET", "/files?q=photo&status=pending", None).await;
    assert_eq!(names(&b).len(), 3);
}

#[tokio::test]
async fn a_search_too_long_or_over_everyone_is_refused() {
    let app = MemoryApp::new();
    let long = "a".repeat(256);
    let (s, b) = app.call_as(Some(&ALICE), "GET", &format!("/files?q={long}"), None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_query"));
    let (s, _) = app.call_as(Some(&ALICE), "GET", &format!("/files?q={}", "a".repeat(255)), None).await;
    assert_eq!(s, 200, "255 characters is the longest name");
    let (s, b) = app.call_as(Some(&ADMIN), "GET", "/files?q=a&scope=all", None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (400, "invalid_query"));
    let (s, b) = app.call_as(Some(&ALICE), "GET", "/files?q=a&scope=all", None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (403, "forbidden"), "scope=all is refused first to a non-admin");
}
