//! `GET /usage`: what the caller holds against the deployment's per-user limits.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};

use super::state::AppState;
use super::wire::{UsageLimits, UsageView};
use crate::domain::{Owner, now};
use crate::error::responses::Unauthorized;
use crate::error::{ApiError, ErrorBody};
use crate::identity::Caller;

/// Show usage.
///
/// The caller's files not yet final and the bytes of all their files, beside the limits this
/// deployment sets on each user (null: no limit). Admins may ask for another user's with
/// `owner`.
#[utoipa::path(get, path = "/usage", tag = "files", operation_id = "getUsage",
    params(("owner" = Option<String>, Query, description = "Another user's `sub` (admins only)")),
    responses(
        (status = 200, description = "What the user holds, and the limits", body = UsageView),
        (status = 400, description = "`invalid_owner`: not a user id", body = ErrorBody),
        Unauthorized,
        (status = 403, description = "`forbidden`: `owner` is for admins only", body = ErrorBody),
    ))]
pub(super) async fn get_usage(
    caller: Caller,
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UsageView>, ApiError> {
    let owner = match q.get("owner") {
        None => caller.owner,
        Some(_) if !caller.admin => return Err(ApiError::forbidden("owner shows another user's usage: admins only")),
        Some(o) => Owner::parse(o).ok_or_else(|| ApiError::bad_request("invalid_owner", "owner must be a user id"))?,
    };
    let usage = st.catalog.usage(&owner, now()).await?;
    let limits = UsageLimits { pending: st.config.limits.pending, bytes: st.config.limits.bytes };
    Ok(Json(UsageView { pending: usage.pending, bytes: usage.bytes, limits }))
}
