//! `GET /files` (the caller's files, newest or oldest first) and `GET /files/{id}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::state::{AppState, visible_record};
use super::wire::{FileDetail, FilePage, FileView};
use crate::catalog::{Cursor, DEFAULT_LIMIT, MAX_LIMIT, Order, Scope};
use crate::domain::{FileRecord, NamePrefix, Status};
use crate::error::responses::{NotFound, Unauthorized};
use crate::error::{ApiError, ErrorBody};
use crate::identity::Caller;

/// How long the links in file objects stay valid.
const LINK_TTL: Duration = Duration::from_secs(10 * 60);

/// `scope` of `GET /files`: the caller's own files, or (admins) everyone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ListScope {
    Mine,
    All,
}

impl ListScope {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "mine" => Some(Self::Mine),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// The query of `GET /files`, parsed for one caller.
#[derive(Debug, PartialEq, Eq)]
pub struct ListParams {
    pub scope: Scope,
    pub limit: usize,
    pub status: Option<Status>,
    pub order: Order,
    pub cursor: Option<Cursor>,
}

/// `order` of `GET /files`: by upload time, newest or oldest first.
// The schema only: the query parses to `catalog::Order`, which knows nothing of OpenAPI.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ListOrder {
    Newest,
    Oldest,
}

impl ListParams {
    pub fn parse(q: &HashMap<String, String>, caller: &Caller) -> Result<Self, ApiError> {
        let asked = match q.get("scope") {
            None => ListScope::Mine,
            Some(s) => ListScope::parse(s)
                .ok_or_else(|| ApiError::bad_request("invalid_scope", "scope must be mine or all"))?,
        };
        let named = match q.get("q") {
            None => None,
            Some(q) => NamePrefix::parse(q)?,
        };
        let scope = match (asked, named) {
            (ListScope::Mine, None) => Scope::Owner(caller.owner.clone()),
            (ListScope::Mine, Some(prefix)) => Scope::Named(caller.owner.clone(), prefix),
            (ListScope::All, _) if !caller.admin => {
                return Err(ApiError::forbidden("scope=all lists everyone's files: admins only"));
            }
            (ListScope::All, None) => Scope::All,
            (ListScope::All, Some(_)) => {
                return Err(ApiError::bad_request("invalid_query", "q searches your own files: leave out scope=all"));
            }
        };
        let limit = match q.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
            })?,
        };
        let status = match q.get("status").map(String::as_str) {
            None => None,
            Some(s) => Some(s.parse::<Status>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    format!("status must be one of {}", Status::ALL.map(Status::as_str).join(", ")),
                )
            })?),
        };
        let order = match q.get("order").map(String::as_str) {
            None => Order::Newest,
            Some(o) => Order::parse(o)
                .ok_or_else(|| ApiError::bad_request("invalid_order", "order must be newest or oldest"))?,
        };
        let cursor = match q.get("cursor").map(String::as_str) {
            None | Some("") => None,
            Some(c) => Some(Cursor::decode(c, &scope, status, order)?),
        };
        Ok(Self { scope, limit, status, order, cursor })
    }
}

/// List files.
///
/// The caller's files, newest first (or oldest first), a page at a time: pass `next_cursor`
/// back as `cursor` for the next page. `q` keeps those whose name starts with it, in any case. Admins may list
/// everyone's with `scope=all`.
#[utoipa::path(get, path = "/files", tag = "files", operation_id = "listFiles",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 50 by default"),
        ("status" = Option<Status>, Query, description = "Only files of this status. Such a page may hold fewer than `limit` files, even none, and still have a `next_cursor`: the listing ends when `next_cursor` is null"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before, for the same listing"),
        ("scope" = Option<ListScope>, Query, description = "`mine` (default) or `all` (admins: everyone's files)"),
        ("order" = Option<ListOrder>, Query, description = "`newest` (default) or `oldest` first, by upload time; a cursor belongs to its order"),
        ("q" = Option<String>, Query, max_length = 255, description = "Only the caller's files whose name starts with this, compared with Unicode case folding (`straße` finds `STRASSE.txt`); empty: no search. Combines with `status`, not with `scope=all`"),
    ),
    responses(
        (status = 200, description = "The caller's files, newest (or oldest) first", body = FilePage),
        (status = 400, description = "`invalid_query` (also `q` over 255 characters, or with `scope=all`), `query_too_broad` (`q` matches over 20,000 of the caller's files), `invalid_limit`, `invalid_status`, `invalid_order`, `invalid_cursor`, `invalid_scope`", body = ErrorBody),
        Unauthorized,
        (status = 403, description = "`forbidden`: `scope=all` outside the admin group", body = ErrorBody),
    ))]
pub(super) async fn list_files(
    caller: Caller,
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let p = ListParams::parse(&q, &caller)?;
    let page = st.catalog.list(&p.scope, p.status, p.order, p.cursor.as_ref(), p.limit).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for r in &page.items {
        items.push(view(&st, r).await?);
    }
    Ok(Json(FilePage { items, next_cursor: page.next.map(|c| c.encode()) }).into_response())
}

/// Get a file.
///
/// The file, with a short-lived `download_url` once it is processed. Someone else's file is
/// `404`, as one that does not exist.
#[utoipa::path(get, path = "/files/{id}", tag = "files", operation_id = "getFile",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file, with a download link once processed", body = FileDetail),
        Unauthorized,
        NotFound,
    ))]
pub(super) async fn get_file(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = visible_record(&st, &caller, &id).await?;
    let download_url = match r.status {
        Status::Processed => {
            Some(st.presigner.presign_get(&r.key().to_string(), LINK_TTL, Some(r.filename.as_str())).await?)
        }
        _ => None,
    };
    Ok(Json(FileDetail { file: view(&st, &r).await?, download_url }).into_response())
}

/// The file object, with its thumbnail's short-lived link.
async fn view<'a>(st: &AppState, r: &'a FileRecord) -> Result<FileView<'a>, ApiError> {
    let mut v = FileView::from(r);
    if let Some(thumb) = r.analysis.as_ref().and_then(|a| a.thumbnail.as_deref()) {
        v.thumbnail_url = Some(st.presigner.presign_get(thumb, LINK_TTL, None).await?);
    }
    Ok(v)
}
