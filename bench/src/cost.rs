//! C1. Cost per million uploads, measured: N uploads of 10 KiB text driven through the three
//! release binaries, each a long-lived process behind a Lambda Runtime API stub on loopback
//! (as a warm sandbox), against moto. Per function: invocations, duration, CPU time, peak
//! RSS, log bytes; per upload: the DynamoDB item sizes actually written. Then the bill at
//! list prices, beside the S3 PUT floor ($5 per million).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use picasso::aws::capacity::stream::changes;
use picasso::aws::capacity::{TableShape, WriteUnits, item_size, write_units};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::Env;
use crate::http::Http;
use crate::report::{Table, goal, median, mib, ms, proc_kib};

/// List prices, us-east-1, as of 2026-11 (arm64 Lambda; on-demand DynamoDB after the
/// November 2024 cut; HTTP API's first 300 M requests; S3 Standard; SQS standard queues).
mod price {
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    pub const S3_PUT: f64 = 0.005 / 1e3;
    pub const S3_GET: f64 = 0.0004 / 1e3;
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    pub const LOGS_GB: f64 = 0.50;
    /// EventBridge custom events, per 64 KB entry of PutEvents.
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
}

/// One invocation handed to a function process, and where its answer goes.
struct Invocation {
    event: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

struct Answer {
    body: Bytes,
    ok: bool,
    took: Duration,
}

/// Invocations handed out and not answered yet, by request id.
type Pending = HashMap<String, (oneshot::Sender<Answer>, Instant)>;

#[derive(Clone)]
struct Stub {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    pending: Arc<Mutex<Pending>>,
}

async fn next(State(s): State<Stub>) -> Response {
    let Some(inv) = s.queue.lock().await.recv().await else { return std::future::pending().await };
    let id = uuid::Uuid::new_v4().to_string();
    s.pending.lock().unwrap().insert(id.clone(), (inv.reply, Instant::now()));
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(300);
    (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned()),
        ],
        inv.event,
    )
        .into_response()
}

fn answer(s: &Stub, id: &str, body: Bytes, ok: bool) -> StatusCode {
    if let Some((reply, at)) = s.pending.lock().unwrap().remove(id) {
        let _ = reply.send(Answer { body, ok, took: at.elapsed() });
    }
    StatusCode::ACCEPTED
}

async fn response(State(s): State<Stub>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, body, true)
}

async fn error(State(s): State<Stub>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, body, false)
}

/// One function: its process, its stub, and what each invocation took.
struct Function {
    name: &'static str,
    memory_mb: u64,
    child: Child,
    invoke: mpsc::Sender<Invocation>,
    log: std::path::PathBuf,
    durations: Vec<Duration>,
}

impl Function {
    async fn start(env: &Env, name: &'static str, memory_mb: u64) -> anyhow::Result<Self> {
        Self::start_with(env, name, memory_mb, &[]).await
    }

    async fn start_with(
        env: &Env,
        name: &'static str,
        memory_mb: u64,
        vars: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(1);
        let stub = Stub { queue: Arc::new(tokio::sync::Mutex::new(rx)), pending: Arc::default() };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .with_state(stub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set: run through bench/run.sh"));
        let log = env.work.join(format!("cost-{name}.log"));
        let mut cmd = Command::new(env.bin_dir.join(name));
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", var("AWS_ENDPOINT_URL")?)
            .env("TABLE_NAME", var("TABLE_NAME")?)
            .env("BUCKET_NAME", var("BUCKET_NAME")?)
            .env("QUEUE_URL", var("QUEUE_URL")?)
            .env("RUST_LOG", "info")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null());
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self { name, memory_mb, child, invoke: tx, log, durations: Vec::new() })
    }

    async fn call(&mut self, event: &Value) -> anyhow::Result<Value> {
        let (reply, answer) = oneshot::channel();
        self.invoke.send(Invocation { event: serde_json::to_vec(event)?, reply }).await?;
        let a = tokio::time::timeout(Duration::from_secs(60), answer).await.context("no answer in 60 s")??;
        ensure!(a.ok, "{} failed: {}", self.name, String::from_utf8_lossy(&a.body));
        self.durations.push(a.took);
        Ok(serde_json::from_slice(&a.body)?)
    }

    /// User + system CPU time of the process so far.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let fields: Vec<&str> = stat.rsplit_once(')').context("stat")?.1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(name: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(Path::new("events").join(name))?)?)
}

fn body(resp: &Value) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(resp["body"].as_str().context("no body")?)?)
}

pub async fn run(env: &Env) -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_COST_UPLOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut upload = Function::start(env, "upload", 256).await?;
    let mut list = Function::start(env, "list", 256).await?;
    let mut processor = Function::start(env, "processor", 512).await?;
    // The events function as the template sets it: the default event types.
    let bus = std::env::var("EVENT_BUS_NAME").context("EVENT_BUS_NAME is not set: run through bench/run.sh")?;
    let mut events =
        Function::start_with(env, "events", 256, &[("EVENTS_ROLE", "publish".into()), ("EVENT_BUS_NAME", bus)]).await?;
    let sdk = picasso::aws::sdk_config().await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let queue = std::env::var("QUEUE_URL")?;
    let table = std::env::var("TABLE_NAME")?;
    let http = Http::new();
    let data: Bytes = Bytes::from(b"0123456789abcdef".repeat(640));
    // Leftovers of other parts would be processed too and skew the per-upload figures.
    sqs.purge_queue().queue_url(&queue).send().await.ok();

    let t0 = Instant::now();
    let upload_event = event("upload-valid.json")?;
    let owner =
        upload_event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"].as_str().context("sub")?.to_owned();
    let batch_template = event("sqs-s3-batch.json")?["Records"][0].clone();
    let mut ids = Vec::with_capacity(n);
    let (mut batches, mut delivered) = (0usize, 0usize);
    // Rounds of 10 uploads, each round's notifications delivered before the next, as a user
    // whose uploads finish while they send more (never near the 100-slot quota).
    for round in (0..n).collect::<Vec<_>>().chunks(10) {
        for &i in round {
            let mut e = upload_event.clone();
            e["body"] = json!(
                json!({"filename": format!("cost-{i}.txt"), "content_type": "text/plain", "size": data.len()})
                    .to_string()
            );
            let resp = upload.call(&e).await?;
            ensure!(resp["statusCode"] == 201, "upload: {resp}");
            let file = body(&resp)?;
            let headers: Vec<(String, String)> = file["upload"]["headers"]
                .as_object()
                .context("headers")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let url = file["upload"]["url"].as_str().context("url")?;
            let put = http.send(hyper::Method::PUT, url, &h, data.clone()).await?;
            ensure!(put.status == 200, "PUT: {}", put.status);
            ids.push(file["id"].as_str().context("id")?.to_owned());
        }
        // The queue's notifications, in batches as Lambda's poller takes them.
        while delivered < ids.len() {
            ensure!(t0.elapsed() < Duration::from_secs(600), "only {delivered} of {n} notifications in 10 min");
            let out =
                sqs.receive_message().queue_url(&queue).max_number_of_messages(10).wait_time_seconds(1).send().await?;
            let msgs = out.messages();
            if msgs.is_empty() {
                continue;
            }
            let records: Vec<Value> = msgs
                .iter()
                .map(|m| {
                    let mut r = batch_template.clone();
                    r["messageId"] = json!(m.message_id());
                    r["receiptHandle"] = json!(m.receipt_handle());
                    r["body"] = json!(m.body());
                    r
                })
                .collect();
            let resp = processor.call(&json!({"Records": records})).await?;
            ensure!(resp["batchItemFailures"] == json!([]), "processor: {resp}");
            for m in msgs {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await?;
            }
            batches += 1;
            delivered += msgs.iter().filter(|m| m.body().is_some_and(|b| b.contains("ObjectCreated"))).count();
        }
    }
    // Each user looks at their file once.
    let template = event("get.json")?;
    let mut item_bytes = Vec::with_capacity(n);
    for id in &ids {
        let mut e = template.clone();
        e["rawPath"] = json!(format!("/files/{id}"));
        e["requestContext"]["http"]["path"] = json!(format!("/files/{id}"));
        e["pathParameters"] = json!({"id": id});
        let resp = list.call(&e).await?;
        let file = body(&resp)?;
        ensure!(file["status"] == "processed", "{file}");
        let item = dynamo
            .get_item()
            .table_name(&table)
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
            .send()
            .await?;
        item_bytes.push(item_size(item.item().context("no item")?));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Write units from the table's stream: every committed write of these files, priced by
    // DynamoDB's rules for the table and each index (the emulator's own figures ignore indexes).
    let described = dynamo.describe_table().table_name(&table).send().await?;
    let shape = TableShape::of(described.table().context("no table")?);
    // The files' writes and their owner's usage item's; those made in transactions count twice.
    let usage_id = format!("usage#{owner}");
    let mut mine: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    mine.insert(&usage_id);
    let mut writes = WriteUnits::default();
    let logged = changes(&sdk, &table).await?;
    let mine: Vec<_> = logged.iter().filter(|c| c.id().is_some_and(|id| mine.contains(id))).collect();
    for c in &mine {
        let units = write_units(&shape, c.old.as_ref(), c.new.as_ref());
        writes += &if c.transactional() { units.transactional() } else { units };
    }
    // The stream to the events function, one record per invocation: a quiet table's shape, the
    // dearest (a busy one fills batches of up to 100). Only the records the template's filters
    // let through reach it: claims and usage items are filtered out, at no cost.
    let (mut published, types) = (0, picasso::change::EventTypes::default_published());
    let filters = stream_filters()?;
    let records: Vec<Value> = mine.iter().enumerate().map(|(i, c)| stream_record(i, c)).collect::<Result<_, _>>()?;
    let delivered: Vec<Value> = records.into_iter().filter(|r| passes(r, &filters)).collect();
    for record in &delivered {
        let change = picasso::aws::change_of(&serde_json::from_value(record.clone())?)?;
        published += usize::from(change.is_some_and(|c| types.contains(c.kind)));
        let resp = events.call(&json!({"Records": [record]})).await?;
        ensure!(resp["batchItemFailures"] == json!([]), "events: {resp}");
    }
    let batch: Vec<&Value> = delivered.iter().take(100).collect();
    let full = Instant::now();
    ensure!(events.call(&json!({"Records": batch})).await?["batchItemFailures"] == json!([]));
    let full = full.elapsed();
    let events_line = EventsLine { records: mine.len(), delivered: delivered.len(), published, full_batch: full };
    report(n, batches, &[&upload, &list, &processor, &events], &item_bytes, &writes, &events_line)
}

/// What the events part of the bill rests on.
struct EventsLine {
    /// Stream records of the uploads (the files' and their owner's usage item's).
    records: usize,
    /// Those the stream filters hand to the events function.
    delivered: usize,
    /// PutEvents entries with the default types (each verdict).
    published: usize,
    full_batch: Duration,
}

/// The events function's stream filters, as template.yaml gives them to Lambda (each pattern
/// JSON on one line): the bench hands the function what a deployment's would get.
fn stream_filters() -> anyhow::Result<Vec<Value>> {
    let patterns = include_str!("../../template.yaml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- Pattern: '")?.strip_suffix('\''))
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()
        .context("a stream filter in template.yaml")?;
    ensure!(!patterns.is_empty(), "template.yaml has no stream filters");
    Ok(patterns)
}

/// Whether Lambda hands the stream `record` on: it matches one of the patterns (per key a
/// list of values any of which matches, or `{"exists": bool}`: the rules the template uses).
fn passes(record: &Value, filters: &[Value]) -> bool {
    fn matches(pattern: &Value, node: Option<&Value>) -> bool {
        pattern.as_object().is_some_and(|p| {
            p.iter().all(|(key, want)| {
                let got = node.and_then(|n| n.get(key));
                match want {
                    Value::Object(_) => matches(want, got),
                    Value::Array(rules) => rules.iter().any(|r| match r.get("exists").and_then(Value::as_bool) {
                        Some(exists) => got.is_some() == exists,
                        None => got == Some(r),
                    }),
                    _ => false,
                }
            })
        })
    }
    filters.iter().any(|f| matches(f, Some(record)))
}

/// A stream record as Lambda's DynamoDB event source hands it to a function.
fn stream_record(i: usize, c: &picasso::aws::capacity::stream::Change) -> anyhow::Result<Value> {
    let image = |item: &Option<picasso::aws::capacity::Item>| -> anyhow::Result<Value> {
        Ok(match item {
            Some(item) => serde_json::to_value(serde_dynamo::Item::from(item.clone()))?,
            None => json!({}),
        })
    };
    let id = c.id().context("no id")?;
    let name = match (&c.old, &c.new) {
        (None, _) => "INSERT",
        (_, None) => "REMOVE",
        _ => "MODIFY",
    };
    Ok(json!({
        "eventID": format!("{i}"), "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": Utc::now().timestamp(),
            "Keys": {"id": {"S": id}},
            "NewImage": image(&c.new)?, "OldImage": image(&c.old)?,
            "SequenceNumber": format!("{:021}", i + 1), "SizeBytes": 512, "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/bench/stream/2026-11-30T00:00:00.000"
    }))
}

fn report(
    n: usize,
    batches: usize,
    fns: &[&Function],
    item_bytes: &[usize],
    writes: &WriteUnits,
    events: &EventsLine,
) -> anyhow::Result<()> {
    let per = |x: f64| x / n as f64 * 1e6; // per million uploads
    let mut measured = Table::new(
        &format!("C1a. {n} uploads of 10 KiB text through the release functions (warm, Runtime API stub, moto)"),
        &[
            "function",
            "memory",
            "invocations",
            "duration p50 / mean",
            "CPU per invocation",
            "peak RSS",
            "log bytes per invocation",
        ],
    );
    let mut lambda_cost = 0.0;
    let mut logs_cost = 0.0;
    let mut best = Vec::new();
    for f in fns {
        let count = f.durations.len();
        ensure!(count > 0, "{} never ran", f.name);
        let total: Duration = f.durations.iter().sum();
        let mean = total / count as u32;
        let cpu = f.cpu()? / count as u32;
        let log_bytes = std::fs::metadata(&f.log)?.len() as f64 / count as f64;
        let hwm = proc_kib(f.child.id(), "VmHWM")?;
        measured.row(vec![
            format!("`{}`", f.name),
            format!("{} MB", f.memory_mb),
            count.to_string(),
            format!("{} / {}", ms(median(&f.durations)), ms(mean)),
            ms(cpu),
            mib(hwm),
            format!("{log_bytes:.0}"),
        ]);
        let gb_s = |mb: u64, d: Duration| mb as f64 / 1024.0 * (d.as_millis() as f64 + 1.0).ceil() / 1000.0;
        let invocations = count as f64;
        lambda_cost += invocations * (price::LAMBDA_REQUEST + price::LAMBDA_GB_SECOND * gb_s(f.memory_mb, mean));
        // + Lambda's START/END/REPORT lines, but where the template sets SystemLogLevel WARN.
        let platform = if f.name == "events" { 0.0 } else { 120.0 };
        logs_cost += invocations * (log_bytes + platform) / 1e9 * price::LOGS_GB;
        // At memory M a function gets M/1769 of a vCPU: its CPU work stretches, its waiting does not.
        let wait = mean.saturating_sub(cpu);
        // The processor decodes images within its memory less 128 MB: 512 MB is its floor.
        let floor = if f.name == "processor" { 512 } else { 128 };
        let mut options: Vec<(u64, f64)> = [128u64, 256, 512, 1024, 1769]
            .into_iter()
            .filter(|&mb| mb >= floor && mb as f64 * 1024.0 >= hwm as f64 * 1.25)
            .map(|mb| {
                let d = wait + cpu.mul_f64((1769.0 / mb as f64).max(1.0));
                (mb, per(invocations * price::LAMBDA_GB_SECOND * gb_s(mb, d)))
            })
            .collect();
        options.sort_by(|a, b| a.1.total_cmp(&b.1));
        best.push(format!("`{}` {} MB (${:.3} per million in GB-s)", f.name, options[0].0, options[0].1));
    }
    measured.print();
    let mean_item = item_bytes.iter().sum::<usize>() as f64 / item_bytes.len() as f64;
    let wru = writes.total() as f64 / n as f64;
    let split = std::iter::once(format!("table {:.1}", writes.table as f64 / n as f64))
        .chain(writes.indexes.iter().map(|(name, u)| format!("`{name}` {:.1}", *u as f64 / n as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    // Strongly consistent reads: the processor's and the list function's GetItem, the upload
    // function's read of the owner's usage, and its settling of the slots (8 files read each
    // 8 uploads).
    let rru = 2.0 * (mean_item / 4096.0).ceil() + 2.0;
    let sqs_requests = 1.0 + 2.0 * batches as f64 / n as f64; // S3's send, then receive + delete per batch
    let rows: Vec<(&str, String, f64)> = vec![
        (
            "Lambda (requests + GB-s at the template's memory)",
            format!("{:.2} invocations", fns.iter().map(|f| f.durations.len()).sum::<usize>() as f64 / n as f64),
            per(lambda_cost),
        ),
        ("HTTP API (POST /upload, GET /files/{id})", "2 requests".into(), 2e6 * price::HTTP_API_REQUEST),
        ("S3 PUT (the upload) and GET (processing)", "1 PUT, 1 GET".into(), 1e6 * (price::S3_PUT + price::S3_GET)),
        (
            "DynamoDB on demand",
            format!("{wru:.1} WRU ({split}), {rru:.0} RRU (items {mean_item:.0} B)"),
            1e6 * (wru * price::DYNAMODB_WRU + rru * price::DYNAMODB_RRU),
        ),
        (
            "SQS",
            format!("{sqs_requests:.2} requests ({:.1} per batch)", n as f64 / batches as f64),
            1e6 * sqs_requests * price::SQS_REQUEST,
        ),
        ("CloudWatch Logs ingestion (JSON logs + EMF)", "see C1a".into(), per(logs_cost)),
        (
            "EventBridge PutEvents (default types: the verdict; a deletion adds one)",
            format!(
                "{:.2} entries; stream read by Lambda: free ({:.1} records, {:.1} through its filters: the events function's invocations are in Lambda above; {} ms for a batch of 100)",
                events.published as f64 / n as f64,
                events.records as f64 / n as f64,
                events.delivered as f64 / n as f64,
                events.full_batch.as_millis()
            ),
            per(events.published as f64 * price::EVENTBRIDGE_EVENT),
        ),
    ];
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut bill = Table::new(
        "C1b. Cost per million 10 KiB uploads, list prices (us-east-1, arm64)",
        &["item", "per upload", "$ per million", "share"],
    );
    for (what, detail, usd) in &rows {
        bill.row(vec![what.to_string(), detail.clone(), format!("{usd:.2}"), format!("{:.0}%", usd / total * 100.0)]);
    }
    bill.row(vec!["**total**".into(), String::new(), format!("**{total:.2}**"), "100%".into()]);
    bill.row(vec![
        "S3 PUT floor (reference)".into(),
        "1 PUT".into(),
        format!("{:.2}", 1e6 * price::S3_PUT),
        String::new(),
    ]);
    bill.print();
    println!(
        "Cheapest memory for the measured CPU and wait (CPU scales with memory, waiting does not): {}.\n",
        best.join("; ")
    );
    goal("C1 ≤ $12 per million uploads", total <= 12.0, format!("${total:.2}"));
    if total.is_nan() {
        bail!("no cost computed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;
    use picasso::aws::capacity::stream::Change;

    use super::*;

    fn image(status: Option<&str>) -> Option<picasso::aws::capacity::Item> {
        let mut item = HashMap::from([("id".to_owned(), AttributeValue::S("f1".into()))]);
        if let Some(s) = status {
            item.insert("status".into(), AttributeValue::S(s.into()));
        }
        Some(item)
    }

    #[test]
    fn the_templates_filters_pass_what_becomes_an_event_and_nothing_else() {
        let filters = stream_filters().unwrap();
        let pass = |old, new| passes(&stream_record(0, &Change { old, new }).unwrap(), &filters);
        assert!(pass(None, image(Some("pending"))), "a file made");
        assert!(pass(image(Some("processing")), image(Some("processed"))), "a verdict");
        assert!(pass(image(Some("processing")), image(Some("failed"))), "a verdict");
        assert!(pass(image(Some("processed")), None), "a file removed");
        assert!(!pass(image(Some("pending")), image(Some("processing"))), "a claim");
        assert!(!pass(image(Some("processing")), image(Some("pending"))), "a release");
        assert!(!pass(None, image(None)), "a usage item made");
        assert!(!pass(image(None), image(None)), "a usage item written");
    }
}
