//! E. Events in the local stack (release `picasso`): how long a committed change takes to reach
//! a Server-Sent Events client and a webhook receiver, beside the API call that made it; and how
//! many events per second the outbox dispatcher moves, beside the commits that wrote them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::extract::State;
use chrono::Utc;
use http_body_util::BodyExt;
use hyper::Method;
use picasso::catalog::Catalog;
use picasso::change::EventTypes;
use picasso::domain::{ContentType, FileName, FileRecord, FileSize, Owner};
use picasso::notify::webhook::{Backoff, Sender, WebhookSecret, WebhookUrl};
use picasso_local::notify::Webhook;
use picasso_local::sqlite::SqliteCatalog;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Env;
use crate::report::{Table, goal, ms, pct};
use crate::stack::{Stack, fresh_dir};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CHANGES: usize = 300;
const DISPATCHED: usize = 20_000;

/// When each webhook id arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(got): State<Arrivals>, headers: hyper::HeaderMap) -> hyper::StatusCode {
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        got.lock().unwrap().entry(id.to_owned()).or_insert_with(Instant::now);
    }
    hyper::StatusCode::NO_CONTENT
}

async fn receiver() -> anyhow::Result<(String, Arrivals)> {
    let got = Arrivals::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, got))
}

/// The ids of a Server-Sent Events stream, each with when it arrived.
fn follow(mut body: hyper::body::Incoming) -> mpsc::UnboundedReceiver<(String, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else { continue };
            let at = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id:")) {
                    let _ = tx.send((id.trim().to_owned(), at));
                }
            }
        }
    });
    rx
}

pub async fn run(env: &Env) -> anyhow::Result<()> {
    latency(env).await?;
    dispatch(env).await
}

/// One upload slot at a time: `POST /upload` commits the record and its `file.created`.
async fn latency(env: &Env) -> anyhow::Result<()> {
    let (url, webhooks) = receiver().await?;
    let data = fresh_dir(env, "events-latency")?;
    let args = ["--webhook-url", &url, "--webhook-secret", SECRET, "--event-types", "all"];
    let stack = Stack::start_with(env, &data, &args, &[("MAX_PENDING_PER_USER", "unlimited")]).await?;
    let http = stack.client_as("bench", &[]).await?;
    let mut sse = follow(http.open(&format!("{}/events", stack.api)).await?);
    let (mut post, mut to_sse, mut to_hook) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..CHANGES {
        let body = json!({"filename": format!("e{i}.txt"), "content_type": "text/plain", "size": 10}).to_string();
        let t0 = Instant::now();
        let resp = http
            .send(Method::POST, &format!("{}/upload", stack.api), &[("content-type", "application/json")], body.into())
            .await?;
        post.push(t0.elapsed());
        ensure!(resp.status == 201, "POST /upload: {}", resp.status);
        let id = format!("{}.1", resp.json()?["id"].as_str().context("id")?);
        loop {
            let (got, at) = tokio::time::timeout(Duration::from_secs(10), sse.recv()).await?.context("stream ended")?;
            if got == id {
                to_sse.push(at - t0);
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let at = loop {
            if let Some(at) = webhooks.lock().unwrap().get(&id).copied() {
                break at;
            }
            ensure!(Instant::now() < deadline, "no webhook for {id} in 10 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        to_hook.push(at - t0);
    }
    let mut t = Table::new(
        &format!("E1. A committed change to its consumers, local stack, {CHANGES} uploads one at a time"),
        &["from POST /upload sent to", "p50", "p99"],
    );
    for (what, sample) in [
        ("its 201 answer (reference)", &post),
        ("`file.created` at an SSE client", &to_sse),
        ("`file.created` at a webhook receiver (signed POST)", &to_hook),
    ] {
        t.row(vec![what.into(), ms(pct(sample, 50.0)), ms(pct(sample, 99.0))]);
    }
    t.print();
    let worst = pct(&to_sse, 99.0).max(pct(&to_hook, 99.0));
    goal("E1 change → SSE and webhook p99 ≤ 100 ms", worst <= Duration::from_millis(100), ms(worst));
    drop(stack);
    Ok(())
}

/// `n` pending files named `{tag}{i}.txt`, each committed with its outbox row.
async fn seed(catalog: &SqliteCatalog, n: usize, tag: &str) -> anyhow::Result<()> {
    let owner = Owner::parse("bench").context("owner")?;
    let expires = Utc::now() + chrono::Duration::hours(1);
    for i in 0..n {
        let r = FileRecord::pending(
            owner.clone(),
            FileName::parse(&format!("{tag}{i}.txt")).map_err(|e| anyhow::anyhow!(e.message))?,
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(10),
        );
        catalog.insert(&r, expires).await?;
    }
    Ok(())
}

/// Commits first (each its own transaction with its outbox row), then the dispatcher alone.
async fn dispatch(env: &Env) -> anyhow::Result<()> {
    let dir = fresh_dir(env, "events-dispatch")?;
    let catalog = Arc::new(SqliteCatalog::open(&dir.join("catalog.sqlite3"))?);
    let t0 = Instant::now();
    seed(&catalog, DISPATCHED, "d").await?;
    let commits = t0.elapsed();
    let outbox = catalog.outbox();
    let last = outbox.undispatched(usize::MAX)?.last().map(|e| e.seq).context("no event")?;

    let t0 = Instant::now();
    let mut dispatched = picasso_local::notify::spawn(outbox.clone(), None)?;
    dispatched.wait_for(|&seq| seq >= last).await?;
    let alone = t0.elapsed();

    // Again with a webhook: every event owed, then delivered to a receiver on this machine.
    let dir = fresh_dir(env, "events-webhook")?;
    let catalog = Arc::new(SqliteCatalog::open(&dir.join("catalog.sqlite3"))?);
    seed(&catalog, DISPATCHED / 4, "w").await?;
    let (url, got) = receiver().await?;
    let webhook = Webhook {
        sender: Sender::new(
            WebhookUrl::parse(&url).map_err(anyhow::Error::msg)?,
            WebhookSecret::parse(SECRET).map_err(anyhow::Error::msg)?,
        ),
        backoff: Backoff::STANDARD,
        types: EventTypes::all(),
    };
    let t0 = Instant::now();
    let _dispatched = picasso_local::notify::spawn(catalog.outbox(), Some(webhook))?;
    while got.lock().unwrap().len() < DISPATCHED / 4 {
        ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "webhooks: {} of {}",
            got.lock().unwrap().len(),
            DISPATCHED / 4
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = t0.elapsed();

    let rate = |n: usize, d: Duration| format!("{:.0}/s", n as f64 / d.as_secs_f64());
    let mut t = Table::new("E2. The local outbox dispatcher", &["what", "events", "time", "rate"]);
    t.row(vec![
        "commits writing them (reference)".into(),
        DISPATCHED.to_string(),
        ms(commits),
        rate(DISPATCHED, commits),
    ]);
    t.row(vec!["dispatched to the live channel".into(), DISPATCHED.to_string(), ms(alone), rate(DISPATCHED, alone)]);
    t.row(vec![
        "dispatched and delivered as signed webhooks".into(),
        (DISPATCHED / 4).to_string(),
        ms(delivered),
        rate(DISPATCHED / 4, delivered),
    ]);
    t.print();
    Ok(())
}
