//! `GET /events`: Server-Sent Events of the caller's files (admins: `?scope=all`), each with
//! `id:` = event id, `event:` = type, `data:` = the event's JSON. `Last-Event-ID` resumes from
//! the outbox (kept a day); a comment every 15 s keeps proxies from closing the stream.
//! `EventSource` cannot set headers, so the token may come as `?access_token=` (never logged).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Query, Request, State};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use http::HeaderMap;
use picasso::domain::Owner;
use picasso::error::ApiError;
use picasso::identity::{Caller, Identity};
use tokio::sync::watch;

use crate::outbox::{Outbox, StoredEvent};

pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read from the log per step of a stream.
const PAGE: usize = 200;

#[derive(Clone)]
pub struct Live {
    pub identity: Identity,
    pub outbox: Arc<Outbox>,
    pub dispatched: watch::Receiver<i64>,
    /// Turns true when the stack stops: streams end, so the graceful stop need not wait on them.
    pub stopped: watch::Receiver<bool>,
}

impl FromRef<Live> for Identity {
    fn from_ref(live: &Live) -> Identity {
        live.identity.clone()
    }
}

pub fn routes(live: Live) -> Router {
    Router::new()
        .route("/events", get(events))
        .route_layer(axum::middleware::from_fn(token_from_query))
        .with_state(live)
}

/// `?access_token=T` stands for `Authorization: Bearer T`, and leaves the URI before
/// anything else sees it.
async fn token_from_query(mut req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let (tokens, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "access_token");
    if let Some((_, token)) = tokens.into_iter().next() {
        if !req.headers().contains_key(http::header::AUTHORIZATION)
            && let Ok(v) = http::HeaderValue::try_from(format!("Bearer {token}"))
        {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
        let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
        let path = req.uri().path().to_owned();
        let pq = if rest.is_empty() { path } else { format!("{path}?{rest}") };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    next.run(req).await
}

async fn events(
    State(live): State<Live>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let whose = match q.get("scope").map(String::as_str) {
        None | Some("mine") => Some(caller.owner.clone()),
        Some("all") if caller.admin => None,
        Some("all") => return Err(ApiError::forbidden("scope=all streams everyone's events: admins only")),
        Some(_) => return Err(ApiError::bad_request("invalid_scope", "scope must be mine or all")),
    };
    let mut dispatched = live.dispatched.clone();
    let start = match headers.get("last-event-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        // An id no longer kept (or never issued): everything kept, rather than a gap.
        Some(id) => live.outbox.seq_of(id).map_err(ApiError::internal)?.unwrap_or(0),
        None => *dispatched.borrow_and_update(),
    };
    let stream = follow(live.outbox, dispatched, whose, start);
    let mut stopped = live.stopped.clone();
    let stream = stream.take_until(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// Every dispatched event of `whose` (everyone's: `None`) after `seq`, as it comes: the log is
/// the source, the watch only says when to read it again, so a slow client misses nothing.
fn follow(
    outbox: Arc<Outbox>,
    dispatched: watch::Receiver<i64>,
    whose: Option<Owner>,
    seq: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (outbox, dispatched, whose, seq, std::collections::VecDeque::<StoredEvent>::new());
    stream::unfold(state, |(outbox, mut dispatched, whose, mut seq, mut ready)| async move {
        loop {
            if let Some(e) = ready.pop_front() {
                let event = Event::default().id(&e.id).event(e.kind.as_str()).data(&e.body);
                return Some((Ok(event), (outbox, dispatched, whose, seq, ready)));
            }
            match outbox.events_after(seq, whose.as_ref(), PAGE) {
                Ok(page) if !page.is_empty() => {
                    seq = page.last().map_or(seq, |e| e.seq);
                    ready.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "reading events for a stream"),
            }
            if dispatched.changed().await.is_err() {
                return None;
            }
        }
    })
}
