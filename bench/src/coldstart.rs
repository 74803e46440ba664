//! B6. Cold-start proxy: each function binary against a Lambda Runtime API stub on
//! loopback, beside an empty `lambda_runtime` function built the same way.
//!
//! Without `AWS_ENDPOINT_URL` in the environment (run.sh starts moto and exports it) the
//! SDK calls go to a dead port: start-up is still measured, invocations then fail fast.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::Env;
use crate::report::{Table, goal, median, mib, ms, proc_kib};

const STARTS: usize = 7;
const FUNCTIONS: [(&str, &str); 4] = [
    ("hello-lambda", "sqs-s3-test-event.json"),
    ("upload", "upload-valid.json"),
    ("list", "list.json"),
    ("processor", "sqs-s3-test-event.json"),
];

/// One start of one function: what the stub saw, when.
#[derive(Default)]
struct Round {
    event: Vec<u8>,
    served: bool,
    next_at: Option<Instant>,
    served_at: Option<Instant>,
    done_at: Option<Instant>,
    /// `response`, `error` or `init error`, and the start of the body.
    outcome: String,
}

#[derive(Clone)]
struct Stub {
    round: Arc<Mutex<Round>>,
    done: Arc<Notify>,
}

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

async fn next(State(s): State<Stub>) -> Response {
    let arrived = Instant::now();
    let event = {
        let mut r = s.round.lock().unwrap();
        if r.served {
            None
        } else {
            r.served = true;
            r.next_at = Some(arrived);
            Some(r.event.clone())
        }
    };
    // The second `/next` of a round is never answered: the process is killed first.
    let Some(event) = event else { return std::future::pending().await };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(30);
    let resp = (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
            ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned()),
            (
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_owned(),
            ),
        ],
        event,
    )
        .into_response();
    s.round.lock().unwrap().served_at = Some(Instant::now());
    resp
}

fn finished(s: &Stub, kind: &str, body: &[u8]) -> StatusCode {
    let mut r = s.round.lock().unwrap();
    if r.done_at.is_none() {
        r.done_at = Some(Instant::now());
        let text = String::from_utf8_lossy(body);
        r.outcome = format!("{kind}: {}", text.chars().take(160).collect::<String>());
    }
    s.done.notify_one();
    StatusCode::ACCEPTED
}

async fn response(State(s): State<Stub>, body: Bytes) -> StatusCode {
    finished(&s, "response", &body)
}

async fn error(State(s): State<Stub>, body: Bytes) -> StatusCode {
    finished(&s, "error", &body)
}

async fn init_error(State(s): State<Stub>, body: Bytes) -> StatusCode {
    finished(&s, "init error", &body)
}

struct Start {
    to_next: Duration,
    /// Spawn → the first invocation's response posted.
    to_response: Duration,
    invoke: Duration,
    hwm_kib: u64,
    outcome: String,
}

pub async fn run(env: &Env) -> anyhow::Result<()> {
    let stub = Stub { round: Arc::default(), done: Arc::default() };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let moto = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty());
    let mut table = Table::new(
        &format!("B6. Lambda cold-start proxy (Runtime API stub on loopback, median of {STARTS} starts)"),
        &[
            "binary",
            "stripped size",
            "zipped",
            "spawn → first /next",
            "vs hello",
            "spawn → first response",
            "vs hello",
            "first invocation",
            "peak RSS",
            "outcome",
        ],
    );
    let (mut hello, mut hello_response) = (Duration::ZERO, Duration::ZERO);
    let mut verdicts = Vec::new();
    for (name, event) in FUNCTIONS {
        let bin = env.bin_dir.join(name);
        let event =
            std::fs::read(Path::new("events").join(event)).with_context(|| format!("reading events/{event}"))?;
        // One unmeasured start first: the binary's pages come from disk only once.
        start_once(&stub, &bin, name, &event, port, moto.as_deref()).await?;
        let mut starts = Vec::new();
        for _ in 0..STARTS {
            starts.push(start_once(&stub, &bin, name, &event, port, moto.as_deref()).await?);
        }
        let to_next = median(&starts.iter().map(|s| s.to_next).collect::<Vec<_>>());
        let invoke = median(&starts.iter().map(|s| s.invoke).collect::<Vec<_>>());
        let to_response = median(&starts.iter().map(|s| s.to_response).collect::<Vec<_>>());
        let hwm = starts.iter().map(|s| s.hwm_kib).max().unwrap_or(0);
        if name == "hello-lambda" {
            (hello, hello_response) = (to_next, to_response);
        } else {
            verdicts.push((name, to_next, to_response));
        }
        let outcome = starts.last().map(|s| s.outcome.clone()).unwrap_or_default();
        let short: String = outcome.chars().take(60).collect();
        table.row(vec![
            format!("`{name}`"),
            mib(std::fs::metadata(&bin)?.len() >> 10),
            mib(zipped_bytes(&bin)? >> 10),
            ms(to_next),
            format!("{:.2}×", to_next.as_secs_f64() / hello.as_secs_f64()),
            ms(to_response),
            format!("{:.2}×", to_response.as_secs_f64() / hello_response.as_secs_f64()),
            ms(invoke),
            mib(hwm),
            format!("`{}`", short.replace('|', "\\|")),
        ]);
    }
    table.print();
    println!(
        "AWS calls go to {}.\n",
        moto.as_deref().map_or("a dead loopback port (no emulator)".to_owned(), |m| format!("moto at {m}"))
    );
    for (name, t, r) in verdicts {
        let ratio = t.as_secs_f64() / hello.as_secs_f64();
        goal(
            &format!("B6 `{name}` start ≤ 2× hello-world"),
            ratio <= 2.0,
            format!("{} vs {}: {ratio:.2}×", ms(t), ms(hello)),
        );
        let ratio = r.as_secs_f64() / hello_response.as_secs_f64();
        goal(
            &format!("B6 `{name}` first response ≤ 2× hello-world"),
            ratio <= 2.0,
            format!("{} vs {}: {ratio:.2}×", ms(r), ms(hello_response)),
        );
    }
    Ok(())
}

/// The binary's size as Lambda's deployment zip stores it (deflate at level 9, as `gzip -9`).
fn zipped_bytes(bin: &Path) -> anyhow::Result<u64> {
    let out = Command::new("gzip").args(["-9", "-c"]).arg(bin).output().context("running gzip")?;
    ensure!(out.status.success(), "gzip failed on {}", bin.display());
    Ok(out.stdout.len() as u64)
}

async fn start_once(
    stub: &Stub,
    bin: &Path,
    name: &str,
    event: &[u8],
    port: u16,
    endpoint: Option<&str>,
) -> anyhow::Result<Start> {
    *stub.round.lock().unwrap() = Round { event: event.to_vec(), ..Round::default() };
    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    // Only what Lambda itself sets (plus the template's variables): nothing leaks in from the shell.
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[1]bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("TABLE_NAME", var("TABLE_NAME", "picasso-bench"))
        .env("BUCKET_NAME", var("BUCKET_NAME", "picasso-bench"))
        .env("AWS_ENDPOINT_URL", endpoint.unwrap_or("http://127.0.0.1:9"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let waited = tokio::time::timeout(Duration::from_secs(30), stub.done.notified()).await;
    let hwm = proc_kib(child.id(), "VmHWM");
    let _ = child.kill();
    child.wait()?;
    ensure!(waited.is_ok(), "{name}: no response within 30 s");
    let r = stub.round.lock().unwrap();
    let (Some(next_at), Some(served_at), Some(done_at)) = (r.next_at, r.served_at, r.done_at) else {
        anyhow::bail!("{name}: {}", r.outcome);
    };
    Ok(Start {
        to_next: next_at - t0,
        to_response: done_at - t0,
        invoke: done_at - served_at,
        hwm_kib: hwm?,
        outcome: r.outcome.clone(),
    })
}
