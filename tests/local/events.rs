//! Events from the local stack: Server-Sent Events of one's own files (resumable with
//! `Last-Event-ID`), and webhooks signed per Standard Webhooks that survive failures, restarts
//! and a SIGKILL.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::harness::{Stack, User, client, request_upload, temp_dir, until_final, upload};

/// One SSE message as the stream carried it.
#[derive(Debug, Clone)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// A `GET /events` response read message by message.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(user: &User, last_event_id: Option<&str>) -> Self {
        let mut req = user.get("/events");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self { resp, buf: String::new() }
    }

    /// The next message within `wait`, comments skipped.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field =
                    |name: &str| block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_owned()));
                if let (Some(id), Some(event), Some(data)) = (field("id:"), field("event:"), field("data:")) {
                    return Some(Sse { id, event, data: serde_json::from_str(&data).unwrap() });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await.ok()?.unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Messages until `file`'s verdict.
    async fn until_final(&mut self, file: &str) -> Vec<Sse> {
        let mut seen = Vec::new();
        loop {
            let m = self.next(Duration::from_secs(30)).await.expect("an event within 30 s");
            let done = m.data["data"]["id"] == file && matches!(m.event.as_str(), "file.processed" | "file.failed");
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn a_user_streams_their_own_files_events_and_resumes_without_gaps_or_repeats() {
    let data = temp_dir("sse");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let (alice, bob) = (stack.sign_in(&http, "alice").await, stack.sign_in(&http, "bob").await);
    let mut alices = Stream::open(&alice, None).await;
    let mut bobs = Stream::open(&bob, None).await;

    let file = upload(&alice, "notes.txt", "text/plain", b"hello events".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let seen = alices.until_final(id).await;
    let kinds: Vec<(&str, &str)> = seen.iter().map(|m| (m.event.as_str(), m.id.as_str())).collect();
    let (created, processed) = (format!("{id}.1"), format!("{id}.3"));
    assert_eq!(kinds, [("file.created", created.as_str()), ("file.processed", processed.as_str())]);
    let done = &seen[1].data;
    assert_eq!((done["type"].as_str(), done["id"].as_str()), (Some("file.processed"), Some(processed.as_str())));
    assert_eq!(done["data"]["status"], "processed");
    assert_eq!(done["data"]["owner"], "alice");
    assert_eq!(done["data"]["version"], 3);
    assert_eq!(done["data"]["metadata"]["words"], 2);
    assert!(done["data"].get("thumbnail_url").is_none(), "no expiring links in events: {done}");
    assert!(chrono::DateTime::parse_from_rfc3339(done["timestamp"].as_str().unwrap()).is_ok());

    // Bob's stream carries his own upload first: nothing of Alice's came before it.
    let his = upload(&bob, "his.txt", "text/plain", b"bob".to_vec()).await;
    let first = bobs.next(Duration::from_secs(30)).await.unwrap();
    assert_eq!(first.data["data"]["id"], his["id"], "{first:?}");

    // Alice, reconnecting after the first event, gets what she missed and nothing twice.
    let gone = alice.http.delete(format!("{}/files/{id}", alice.api)).bearer_auth(&alice.token).send().await;
    assert_eq!(gone.unwrap().status(), 204);
    let mut resumed = Stream::open(&alice, Some(&created)).await;
    let replay: Vec<String> =
        [resumed.next(Duration::from_secs(10)).await, resumed.next(Duration::from_secs(10)).await]
            .into_iter()
            .map(|m| m.expect("replayed").id)
            .collect();
    assert_eq!(replay, [processed, format!("{id}.4")]);
    assert!(resumed.next(Duration::from_millis(500)).await.is_none(), "nothing twice, nothing of Bob's");
    stack.stop();
}

#[tokio::test]
async fn the_stream_needs_a_token_which_may_come_in_the_query_and_all_is_for_admins() {
    let data = temp_dir("sse-auth");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let anonymous = http.get(format!("{}/events", stack.api)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = http.get(format!("{}/events?access_token=not.a.jwt", stack.api)).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(alice.get("/events?scope=all").send().await.unwrap().status(), 403);
    assert_eq!(alice.get("/events?scope=everyone").send().await.unwrap().status(), 400);
    let admin = stack.sign_in_to(&http, "root", &["admins"]).await;
    drop(Stream::open(&admin, None).await);
    let query = http.get(format!("{}/events?scope=all&access_token={}", stack.api, admin.token)).send().await;
    let mut everyone = Stream { resp: query.unwrap(), buf: String::new() };
    assert_eq!(everyone.resp.status(), 200);
    let file = request_upload(&alice, "a.txt", "text/plain", 3).await;
    let m = everyone.next(Duration::from_secs(10)).await.expect("an admin sees alice's file");
    assert_eq!((m.event.as_str(), &m.data["data"]["id"]), ("file.created", &file["id"]));
    stack.stop();
}

/// A webhook receiver on loopback: answers 500 to the first `failures` requests, then 200.
#[derive(Clone, Default)]
struct Receiver {
    failures: Arc<Mutex<usize>>,
    got: Arc<Mutex<Vec<(HeaderMap, String, StatusCode)>>>,
}

impl Receiver {
    async fn start(failures: usize) -> (Self, String) {
        let r = Receiver { failures: Arc::new(Mutex::new(failures)), ..Default::default() };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    fn delivered(&self) -> Vec<(HeaderMap, String)> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|(_, _, s)| s.is_success()).map(|(h, b, _)| (h.clone(), b.clone())).collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(Instant::now() < deadline, "{what}: not within 60 s; got {}", self.got.lock().unwrap().len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = {
        let mut left = r.failures.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    };
    r.got.lock().unwrap().push((headers, String::from_utf8(body.to_vec()).unwrap(), status));
    status
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Checks a delivery's signature by the specification's recipe, independently of the stack's signer.
fn verify(headers: &HeaderMap, body: &str) -> Value {
    let h = |n: &str| headers[n].to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let signed = format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body);
    let expected = base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::hmac::sign(&key, signed.as_bytes()));
    assert!(h("webhook-signature").split(' ').any(|s| s == format!("v1,{expected}")), "bad signature");
    let ts: i64 = h("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300, "timestamp within five minutes");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["id"].as_str().unwrap(), h("webhook-id"));
    event
}

fn webhook_args(url: &str) -> Vec<String> {
    ["--webhook-url", url, "--webhook-secret", SECRET, "--webhook-backoff-ms", "50"].map(String::from).to_vec()
}

#[tokio::test]
async fn a_webhook_that_fails_three_times_gets_the_event_on_the_fourth_signed_with_the_same_id() {
    let (receiver, url) = Receiver::start(3).await;
    let data = temp_dir("webhook");
    let args = webhook_args(&url);
    let stack = Stack::start(&data, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let file = upload(&alice, "w.txt", "text/plain", b"webhook".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    receiver.until("the processed event", |r| !r.delivered().is_empty()).await;
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "three failures, then the delivery");
    let ids: BTreeSet<&str> = got.iter().map(|(h, _, _)| h["webhook-id"].to_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([format!("{id}.3").as_str()]), "one id across attempts");
    let event = verify(&got[3].0, &got[3].1);
    assert_eq!(event["type"], "file.processed", "created is not published by default");
    assert_eq!(event["data"]["owner"], "alice");
    stack.stop();
}

#[tokio::test]
async fn an_owed_delivery_survives_a_restart() {
    let (receiver, url) = Receiver::start(usize::MAX).await;
    let data = temp_dir("webhook-restart");
    let args = webhook_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stack = Stack::start(&data, &args, &[]);
    let alice = stack.sign_in(&client(), "alice").await;
    let file = upload(&alice, "r.txt", "text/plain", b"restart".to_vec()).await;
    receiver.until("a first failed attempt", |r| !r.got.lock().unwrap().is_empty()).await;
    stack.stop();
    *receiver.failures.lock().unwrap() = 0;
    let stack = Stack::start(&data, &args, &[]);
    receiver.until("the delivery after the restart", |r| !r.delivered().is_empty()).await;
    let (headers, body) = &receiver.delivered()[0];
    assert_eq!(verify(headers, body)["id"], format!("{}.3", file["id"].as_str().unwrap()));
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_ingest_loses_no_committed_change() {
    // The receiver refuses everything until the kill: every creation is committed and owed,
    // none delivered, and (no processing yet) no verdict made when the stack dies.
    let (receiver, url) = Receiver::start(usize::MAX).await;
    let data = temp_dir("webhook-kill");
    let mut args = webhook_args(&url);
    args.extend(["--event-types".into(), "all".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first: Vec<&str> = args.iter().copied().chain(["--no-processing"]).collect();
    let mut stack = Stack::start(&data, &first, &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let uploads = (0..40).map(|i| {
        let alice = alice.clone();
        tokio::spawn(async move { upload(&alice, &format!("k{i}.txt"), "text/plain", vec![b'k'; 4096 + i]).await })
    });
    let files: Vec<Value> = futures_util::future::join_all(uploads).await.into_iter().map(Result::unwrap).collect();
    receiver.until("deliveries being attempted", |r| !r.got.lock().unwrap().is_empty()).await;
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();
    assert!(receiver.delivered().is_empty(), "nothing delivered before the kill");
    *receiver.failures.lock().unwrap() = 0;
    let stack = Stack::start(&data, &args, &[]);
    let alice = stack.sign_in(&http, "alice").await;
    for f in &files {
        until_final(&alice, f["id"].as_str().unwrap()).await;
    }
    let wanted: BTreeSet<String> = files
        .iter()
        .flat_map(|f| ["created", "processed"].map(|t| format!("{}:file.{t}", f["id"].as_str().unwrap())))
        .collect();
    let seen = |r: &Receiver| -> BTreeSet<String> {
        r.delivered()
            .iter()
            .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
            .map(|e| format!("{}:{}", e["data"]["id"].as_str().unwrap(), e["type"].as_str().unwrap()))
            .collect()
    };
    receiver.until("every file's creation and verdict", |r| seen(r).is_superset(&wanted)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for (h, b) in receiver.delivered() {
        verify(&h, &b);
        *per_id.entry(h["webhook-id"].to_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(per_id.len() >= wanted.len());
    stack.stop();
}

#[test]
fn webhook_and_event_settings_that_cannot_work_stop_the_stack_at_start() {
    let data = temp_dir("events-flags");
    for (args, says) in [
        (vec!["--webhook-url", "http://hooks.example.com/x", "--webhook-secret", SECRET], "https"),
        (vec!["--webhook-url", "https://hooks.example.com/x", "--webhook-secret", "not-a-secret"], "whsec_"),
        (vec!["--webhook-url", "https://hooks.example.com/x"], "--webhook-secret"),
        (vec!["--event-types", "processed,exploded"], "exploded"),
    ] {
        let out = crate::harness::command(&data, &args, &[]).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
