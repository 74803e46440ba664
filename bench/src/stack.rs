//! B. The local stack (release `picasso` binary) driven over HTTP: ingest end to end,
//! listing against large catalogs, memory at rest and start-up time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::Method;
use picasso::domain::{Analysis, ContentType, Failure, FileName, FileRecord, FileSize, Status};
use picasso_local::sqlite::SqliteCatalog;
use serde_json::{Value, json};

use crate::Env;
use crate::http::Http;
use crate::report::{Table, goal, mib, ms, pct, proc_kib};

const FILES_PER_RUN: usize = 3000;
const FILE_BYTES: usize = 10 * 1024;

/// A running `picasso` process on free ports with its own data directory.
pub struct Stack {
    child: Child,
    pub api: String,
    /// Spawn → first successful `GET /files`.
    ready_in: Duration,
}

impl Stack {
    pub async fn start(env: &Env, data: &Path) -> anyhow::Result<Self> {
        Self::start_with(env, data, &[], &[]).await
    }

    /// With more flags and environment variables.
    pub async fn start_with(env: &Env, data: &Path, args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = env.bin_dir.join("picasso");
        let log = std::fs::File::create(data.with_extension("log"))?;
        let t0 = Instant::now();
        let mut child = Command::new(&bin)
            .args(["--port", "0", "--s3-port", "0", "--data-dir"])
            .arg(data)
            .args(args)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stdout after the banner so the stack never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(api) = line.strip_prefix("API: ") {
                    let _ = tx.send(api.trim().to_owned());
                }
            }
        });
        let api = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120))).await?;
        let api = api.context("no `API:` line in the stack's banner")?;
        let http = Http::new();
        // Serving: an API route answers (401 without a token is an answer).
        loop {
            if http.get(&format!("{api}/files?limit=1")).await.is_ok_and(|r| r.status == 401) {
                break;
            }
            ensure!(t0.elapsed() < Duration::from_secs(120), "the stack never served GET /files");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Self { child, api, ready_in: t0.elapsed() })
    }

    /// A client signed in as `sub` through the stack's dev issuer.
    pub async fn client_as(&self, sub: &str, groups: &[&str]) -> anyhow::Result<Http> {
        let http = Http::new();
        let body = json!({"sub": sub, "groups": groups}).to_string();
        let url = format!("{}/auth/dev-token", self.api);
        let resp = http.send(Method::POST, &url, &[("content-type", "application/json")], body.into()).await?;
        ensure!(resp.status == 201, "POST /auth/dev-token: {}", resp.status);
        let token = resp.json()?["token"].as_str().context("no token")?.to_owned();
        Ok(http.signed_in(&token))
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        proc_kib(self.child.id(), "VmRSS")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fresh_dir(env: &Env, name: &str) -> anyhow::Result<PathBuf> {
    let dir = env.work.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What one client saw of one file.
struct Sent {
    id: String,
    posted_at: SystemTime,
    post: Duration,
    put: Duration,
}

pub async fn ingest(env: &Env) -> anyhow::Result<()> {
    let mut table = Table::new(
        &format!("B4. Ingest end to end, {FILES_PER_RUN} files of 10 KiB text/plain per run"),
        &[
            "clients",
            "files/s",
            "POST /upload p50 / p99",
            "presigned PUT p50 / p99",
            "upload → processed p50 / p99",
            "old Django + Celery (reference)",
        ],
    );
    let mut mem = Table::new(
        "B8. Local stack at rest (release)",
        &["run", "spawn → serving", "RSS after start", "RSS after ingest + 2 s idle"],
    );
    let mut rates = HashMap::new();
    let mut worst_rss = 0;
    for clients in [8, 16] {
        let data = fresh_dir(env, &format!("ingest-{clients}"))?;
        let stack = Stack::start(env, &data).await?;
        let rss_start = stack.rss_kib()?;
        let http = stack.client_as("bench", &[]).await?;
        let r = run_clients(&http, &stack.api, clients, FILES_PER_RUN).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = stack.rss_kib()?;
        worst_rss = worst_rss.max(rss_start).max(rss_after);
        rates.insert(clients, r.rate);
        table.row(vec![
            clients.to_string(),
            format!("{:.0}{}", r.rate, if r.failed > 0 { format!(" ({} failed)", r.failed) } else { String::new() }),
            format!("{} / {}", ms(pct(&r.post, 50.0)), ms(pct(&r.post, 99.0))),
            format!("{} / {}", ms(pct(&r.put, 50.0)), ms(pct(&r.put, 99.0))),
            format!("{} / {}", ms(pct(&r.done, 50.0)), ms(pct(&r.done, 99.0))),
            "62–82 files/s".into(),
        ]);
        mem.row(vec![format!("{clients} clients"), ms(stack.ready_in), mib(rss_start), mib(rss_after)]);
    }
    table.print();
    println!(
        "Client and stack share the machine's 2 cores. Latency to `processed` uses the server's `processed_at` (ms).\n"
    );
    let r16 = rates[&16];
    goal("B4 ≥ 1,500 files/s with 16 clients", r16 >= 1500.0, format!("{r16:.0} files/s"));
    mem.print();
    goal("B8 local stack memory ≤ 30 MB", worst_rss * 1024 <= 30_000_000, format!("worst {}", mib(worst_rss)));
    Ok(())
}

struct IngestRun {
    rate: f64,
    failed: usize,
    post: Vec<Duration>,
    put: Vec<Duration>,
    done: Vec<Duration>,
}

async fn run_clients(http: &Http, api: &str, clients: usize, total: usize) -> anyhow::Result<IngestRun> {
    let body = Bytes::from(bytes_10k());
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, body, next, api) = (http.clone(), body.clone(), next.clone(), api.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(sent);
                }
                sent.push(upload(&http, &api, i, &body).await?);
            }
        }));
    }
    let mut sent = Vec::with_capacity(total);
    for t in tasks {
        sent.extend(t.await??);
    }
    // Every upload is in: done when nothing is pending or processing. Two one-item
    // index queries per poll keep the poller's own load negligible.
    loop {
        let mut busy = false;
        for status in ["pending", "processing"] {
            let v = http.get(&format!("{api}/files?status={status}&limit=1")).await?.json()?;
            busy |= v["items"].as_array().is_some_and(|a| !a.is_empty());
        }
        if !busy {
            break;
        }
        ensure!(t0.elapsed() < Duration::from_secs(600), "files still unprocessed after 10 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = t0.elapsed();
    let finished = all_records(http, api).await?;
    let mut done = Vec::with_capacity(total);
    let mut failed = 0;
    for s in &sent {
        let r = finished.get(&s.id).with_context(|| format!("file {} missing from the list", s.id))?;
        match r["status"].as_str() {
            Some("processed") => {}
            Some("failed") => failed += 1,
            other => bail!("file {} ended {other:?}", s.id),
        }
        let at: DateTime<Utc> = r["processed_at"].as_str().context("no processed_at")?.parse()?;
        let at = SystemTime::from(at);
        done.push(at.duration_since(s.posted_at).unwrap_or_default());
    }
    Ok(IngestRun {
        rate: total as f64 / elapsed.as_secs_f64(),
        failed,
        post: sent.iter().map(|s| s.post).collect(),
        put: sent.iter().map(|s| s.put).collect(),
        done,
    })
}

fn bytes_10k() -> Vec<u8> {
    let line = b"Picasso ingest benchmark: ten kibibytes of plain text per file.\n";
    let mut v: Vec<u8> = line.iter().copied().cycle().take(FILE_BYTES).collect();
    v[FILE_BYTES - 1] = b'\n';
    v
}

/// The two-step upload a browser does: ask for a slot, PUT the bytes where it says.
async fn upload(http: &Http, api: &str, i: usize, body: &Bytes) -> anyhow::Result<Sent> {
    let posted_at = SystemTime::now();
    let t = Instant::now();
    let req = json!({"filename": format!("bench-{i}.txt"), "content_type": "text/plain", "size": FILE_BYTES});
    let resp = http
        .send(Method::POST, &format!("{api}/upload"), &[("content-type", "application/json")], req.to_string().into())
        .await?;
    ensure!(resp.status == 201, "POST /upload: {}", resp.status);
    let slot = resp.json()?;
    let post = t.elapsed();
    let t = Instant::now();
    let url = slot["upload"]["url"].as_str().context("no upload.url")?;
    let headers: Vec<(&str, &str)> = slot["upload"]["headers"]
        .as_object()
        .context("no upload.headers")?
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
        .collect();
    let resp = http.send(Method::PUT, url, &headers, body.clone()).await?;
    ensure!(resp.status.is_success(), "presigned PUT: {}", resp.status);
    Ok(Sent { id: slot["id"].as_str().context("no id")?.to_owned(), posted_at, post, put: t.elapsed() })
}

/// Every record, by id, through the public cursor (once, after the run: not timed).
async fn all_records(http: &Http, api: &str) -> anyhow::Result<HashMap<String, Value>> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{api}/files?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencoding::encode(c)));
        }
        let mut page = http.get(&url).await?.json()?;
        for item in page["items"].as_array_mut().context("no items")?.drain(..) {
            out.insert(item["id"].as_str().unwrap_or_default().to_owned(), item);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// Files of the user whose listing is measured: the same at every catalog size.
const OWN: usize = 1_000;
/// Owners besides them: at 1M records, 1,000 owners of about 1,000 files each.
const OTHERS: usize = 999;

/// The measured user owns the first OWN records (older than the rest: their pages are the
/// same at every size); the others own the rest in turn.
fn owner_of(i: usize) -> String {
    if i < OWN { "owner-0000".to_owned() } else { format!("owner-{:04}", 1 + i % OTHERS) }
}
const REQUESTS: usize = 500;
const DEEP_PAGE: usize = 200;

pub async fn listing(env: &Env) -> anyhow::Result<()> {
    let mut table = Table::new(
        &format!(
            "B5. One user's listing vs catalog size ({REQUESTS} sequential requests each, limit=50; \
             the user has {OWN} files, the other {OTHERS} owners share the rest)"
        ),
        &[
            "records",
            "first page p50 / p99",
            "status=processed p50 / p99",
            "page N via cursor (N)",
            "status=processed page N",
            "admin scope=all p50 / p99",
            "search q=photo-1 p50 / p99",
            "old service, all rows (reference)",
        ],
    );
    let mut p50s = HashMap::new();
    let mut search_p50s = HashMap::new();
    for n in SIZES {
        let data = fresh_dir(env, &format!("listing-{n}"))?;
        let t = Instant::now();
        seed(&data, n)?;
        eprintln!("seeded {n} records in {}", ms(t.elapsed()));
        let stack = Stack::start(env, &data).await?;
        let http = stack.client_as(&owner_of(0), &[]).await?;
        let admin = stack.client_as("bench-admin", &["admins"]).await?;
        let first = timed(&http, &format!("{}/files?limit=50", stack.api), REQUESTS).await?;
        let all = timed(&admin, &format!("{}/files?limit=50&scope=all", stack.api), REQUESTS).await?;
        let processed = timed(&http, &format!("{}/files?limit=50&status=processed", stack.api), REQUESTS).await?;
        let (deep_n, deep) = deep_page(&http, &stack.api, None).await?;
        let (deep_pn, deep_p) = deep_page(&http, &stack.api, Some("processed")).await?;
        // The user's files whose name starts with photo-1, in any case (`name_key` index).
        let search = timed(&http, &format!("{}/files?limit=50&q=PHOTO-1", stack.api), REQUESTS).await?;
        p50s.insert(n, pct(&first, 50.0));
        search_p50s.insert(n, pct(&search, 50.0));
        let reference = match n {
            10_000 => "0.99 s",
            100_000 => "8.4 s",
            _ => "—",
        };
        table.row(vec![
            format!("{n}"),
            format!("{} / {}", ms(pct(&first, 50.0)), ms(pct(&first, 99.0))),
            format!("{} / {}", ms(pct(&processed, 50.0)), ms(pct(&processed, 99.0))),
            format!("{} ({deep_n})", ms(deep)),
            format!("{} ({deep_pn})", ms(deep_p)),
            format!("{} / {}", ms(pct(&all, 50.0)), ms(pct(&all, 99.0))),
            format!("{} / {}", ms(pct(&search, 50.0)), ms(pct(&search, 99.0))),
            reference.into(),
        ]);
    }
    table.print();
    println!(
        "Seeded records: 90% processed, 10% failed; every 5th an image with a thumbnail (a presigned GET per item).\n"
    );
    let (small, big) = (p50s[&1_000], p50s[&1_000_000]);
    let ratio = big.as_secs_f64() / small.as_secs_f64();
    goal("B5 p50 at 1M within 1.2× of p50 at 1k", ratio <= 1.2, format!("{} vs {}: {ratio:.2}×", ms(big), ms(small)));
    let (small, big) = (search_p50s[&1_000], search_p50s[&1_000_000]);
    let ratio = big.as_secs_f64() / small.as_secs_f64();
    goal("B5 search p50 at 1M within 1.2× of 1k", ratio <= 1.2, format!("{} vs {}: {ratio:.2}×", ms(big), ms(small)));
    Ok(())
}

/// Straight into SQLite, in batches: seeding through the API would take far longer than the benchmark.
fn seed(data: &Path, n: usize) -> anyhow::Result<()> {
    let catalog = SqliteCatalog::open(&data.join("catalog.sqlite3"))?;
    let expires = Utc::now() + chrono::Duration::days(1);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        batch.push(seeded(i)?);
        if batch.len() == 10_000 || i + 1 == n {
            catalog.insert_many(&batch, expires)?;
            batch.clear();
        }
    }
    Ok(())
}

fn seeded(i: usize) -> anyhow::Result<FileRecord> {
    let image = i.is_multiple_of(5);
    let (name, ct) =
        if image { (format!("photo-{i}.jpg"), "image/jpeg") } else { (format!("notes-{i}.txt"), "text/plain") };
    let mut r = FileRecord::pending(
        picasso::domain::Owner::parse(&owner_of(i)).context("owner")?,
        FileName::parse(&name).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        ContentType::from_stored(ct.into()),
        FileSize::from_stored(10_240 + (i % 4096) as u64),
    );
    let mut metadata = serde_json::Map::new();
    if image {
        metadata.insert("width".into(), json!(4000));
        metadata.insert("height".into(), json!(3000));
        metadata.insert("format".into(), json!("jpg"));
    } else {
        metadata.insert("utf8".into(), json!(true));
        metadata.insert("lines".into(), json!(160));
        metadata.insert("words".into(), json!(1400));
        metadata.insert("chars".into(), json!(10_240));
    }
    r.analysis = Some(Analysis {
        sha256: format!("{:064x}", i),
        detected_type: ct.into(),
        metadata,
        thumbnail: image.then(|| format!("thumbnails/{}.jpg", r.id)),
    });
    r.processed_at = Some(r.uploaded_at);
    if i % 10 == 9 {
        r.status = Status::Failed;
        r.error = Some(Failure::new("type_mismatch", "declared text/plain but the content is an executable"));
        if let Some(a) = r.analysis.as_mut() {
            a.thumbnail = None;
        }
    } else {
        r.status = Status::Processed;
    }
    Ok(r)
}

async fn timed(http: &Http, url: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let resp = http.get(url).await?;
        ensure!(resp.status.is_success(), "GET {url}: {}", resp.status);
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Follows `next_cursor` to page DEEP_PAGE (or the last page); returns which page and its latency.
async fn deep_page(http: &Http, api: &str, status: Option<&str>) -> anyhow::Result<(usize, Duration)> {
    let mut cursor: Option<String> = None;
    let mut page = 0;
    let mut last = Duration::ZERO;
    while page < DEEP_PAGE {
        let mut url = format!("{api}/files?limit=50");
        if let Some(s) = status {
            url.push_str(&format!("&status={s}"));
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencoding::encode(c)));
        }
        let t = Instant::now();
        let v = http.get(&url).await?.json()?;
        last = t.elapsed();
        page += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok((page, last))
}

/// B9. One large file in parts through the local stack, beside `cp` of the same file on
/// the same disk: what the embedded S3 endpoint costs, and the processor's read rate.
pub async fn multipart(env: &Env) -> anyhow::Result<()> {
    use sha2_sigv4::Digest;
    const SIZE: usize = 1 << 30;
    const IN_FLIGHT: usize = 6;
    let src = env.work.join("large-1g.bin");
    if std::fs::metadata(&src).map(|m| m.len() as usize).ok() != Some(SIZE) {
        let mut rng = crate::report::Rng::new(42);
        let mut buf = vec![0u8; SIZE];
        rng.fill(&mut buf);
        std::fs::write(&src, &buf)?;
    }
    let data = Bytes::from(std::fs::read(&src)?);
    let sha: String = sha2_sigv4::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();

    // Reference: the same bytes copied on the same disk, flushed like the stack's writes are not.
    let copy = env.work.join("large-1g.copy");
    let t = Instant::now();
    ensure!(Command::new("cp").arg(&src).arg(&copy).status()?.success(), "cp failed");
    let cp = t.elapsed();
    std::fs::remove_file(&copy)?;

    let dir = fresh_dir(env, "multipart")?;
    let stack = Stack::start(env, &dir).await?;
    let http = stack.client_as("bench", &[]).await?;
    let plain = Http::new();
    let t0 = Instant::now();
    let body =
        json!({"filename": "large.bin", "content_type": "application/octet-stream", "size": SIZE, "sha256": sha});
    let file = http
        .send(
            Method::POST,
            &format!("{}/upload", stack.api),
            &[("content-type", "application/json")],
            body.to_string().into(),
        )
        .await?
        .json()?;
    let id = file["id"].as_str().context("no id")?.to_owned();
    let (part_size, count) = (
        file["upload"]["part_size"].as_u64().context("not multipart")? as usize,
        file["upload"]["part_count"].as_u64().context("not multipart")? as usize,
    );
    let mut urls: Vec<Value> = Vec::new();
    for batch in (1..=count).collect::<Vec<_>>().chunks(100) {
        let b = json!({"part_numbers": batch}).to_string();
        let signed = http
            .send(
                Method::POST,
                &format!("{}/files/{id}/parts", stack.api),
                &[("content-type", "application/json")],
                b.into(),
            )
            .await?
            .json()?;
        urls.extend(signed["parts"].as_array().context("no parts")?.iter().cloned());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let urls = Arc::new(urls);
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (plain, next, urls, data) = (plain.clone(), next.clone(), urls.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(part) = urls.get(i) else { return anyhow::Ok(()) };
                let slice = data.slice(i * part_size..((i + 1) * part_size).min(data.len()));
                let resp = plain.send(Method::PUT, part["url"].as_str().context("url")?, &[], slice).await?;
                ensure!(resp.status == 200, "part {}: {}", i + 1, resp.status);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let uploaded = t0.elapsed();
    // The listing gives the ETags (what a client resuming would do too).
    let listed = http.get(&format!("{}/files/{id}/parts", stack.api)).await?.json()?;
    let parts: Vec<Value> = listed["parts"]
        .as_array()
        .context("no parts")?
        .iter()
        .map(|p| json!({"part_number": p["part_number"], "etag": p["etag"]}))
        .collect();
    ensure!(parts.len() == count, "{} of {count} parts listed", parts.len());
    let t1 = Instant::now();
    let b = json!({"parts": parts}).to_string();
    let done = http
        .send(
            Method::POST,
            &format!("{}/files/{id}/complete", stack.api),
            &[("content-type", "application/json")],
            b.into(),
        )
        .await?;
    ensure!(done.status == 200, "complete: {} {:?}", done.status, done.body);
    let completed = t1.elapsed();
    let t2 = Instant::now();
    let last = loop {
        let f = http.get(&format!("{}/files/{id}", stack.api)).await?.json()?;
        if f["status"] == "processed" || f["status"] == "failed" {
            break f;
        }
        ensure!(t2.elapsed() < Duration::from_secs(600), "not processed in 10 min");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let processed = t2.elapsed();
    ensure!(last["status"] == "processed" && last["sha256"] == sha.as_str(), "{last}");
    let peak = proc_kib(stack.child.id(), "VmHWM")?;
    let rate = |d: Duration| format!("{:.0} MB/s", SIZE as f64 / d.as_secs_f64() / 1e6);
    let mut table = Table::new(
        &format!(
            "B9. A 1 GiB file in {count} parts of {} MiB, {IN_FLIGHT} in flight, through the local stack",
            part_size >> 20
        ),
        &["step", "time", "rate", "reference: `cp` of the file, same disk"],
    );
    table.row(vec![
        "parts PUT (s3s verifies each SigV4, s3s-fs writes)".into(),
        ms(uploaded),
        rate(uploaded),
        format!("{} ({})", ms(cp), rate(cp)),
    ]);
    table.row(vec!["complete (ListParts check, assembly)".into(), ms(completed), rate(completed), String::new()]);
    table.row(vec!["processing (read, SHA-256, type sniffing)".into(), ms(processed), rate(processed), String::new()]);
    table.row(vec!["whole upload → processed".into(), ms(t0.elapsed()), rate(t0.elapsed()), String::new()]);
    table.print();
    println!("Peak RSS of the stack over the run: {} (the file is never held whole).\n", mib(peak));
    goal("B9 stack memory stays flat for a 1 GiB upload (peak ≤ 100 MiB)", peak <= 100 * 1024, mib(peak));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
