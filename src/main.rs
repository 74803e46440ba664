//! `cargo run --release`: the whole of Picasso on one machine.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use picasso::api::page::{HostedUi, Origin, WebSocketUrl};
use picasso::domain::Owner;
use picasso::notify::webhook::{Backoff, Sender, WebhookSecret, WebhookUrl};
use picasso_local::auth::{AuthMode, ExternalIssuer};
use tokio::signal::unix::{SignalKind, signal};

/// Whose token the banner's curl line carries.
const BANNER_USER: &str = "dev";

/// Picasso's local stack: the API, direct browser uploads to an embedded S3 endpoint,
/// asynchronous processing and the file list, with nothing else to install.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PICASSO_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port of the API and the web page (0 picks a free one).
    #[arg(long, env = "PICASSO_PORT", default_value_t = 3000)]
    port: u16,
    /// Port of the embedded S3 endpoint (0 picks a free one).
    #[arg(long, env = "PICASSO_S3_PORT", default_value_t = 3001)]
    s3_port: u16,
    /// Where objects and the catalog are kept.
    #[arg(long, env = "PICASSO_DATA_DIR", default_value = "./picasso-data")]
    data_dir: PathBuf,
    /// Files processed at once.
    #[arg(long, env = "PICASSO_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Memory the concurrent jobs share for decoding images, in MiB: a job that cannot fit
    /// waits, one that never can fails `image_too_large`.
    #[arg(long, env = "PICASSO_MEMORY_BUDGET_MB", default_value_t = 192)]
    memory_budget_mb: u64,
    /// Accept uploads but leave them pending; a later start with processing on takes them.
    #[arg(long, env = "PICASSO_NO_PROCESSING")]
    no_processing: bool,
    /// Another web origin (scheme://host[:port]) that may call the API and upload to the S3
    /// endpoint from a browser, besides the page's own; repeatable.
    #[arg(long = "cors-origin", env = "PICASSO_CORS_ORIGINS", value_delimiter = ',', value_name = "URL")]
    cors_origins: Vec<String>,
    /// Verify the tokens of this OpenID Connect issuer (its exact `iss`, e.g.
    /// https://cognito-idp.REGION.amazonaws.com/POOL_ID) instead of the built-in dev issuer,
    /// which is then off. Its discovery document names its keys.
    #[arg(long, env = "PICASSO_JWT_ISSUER", value_name = "URL", requires = "jwt_audience", conflicts_with = "no_auth")]
    jwt_issuer: Option<String>,
    /// The audience tokens must carry in `aud` (or `client_id`): with Cognito, the app client id.
    #[arg(long, env = "PICASSO_JWT_AUDIENCE", value_name = "AUD", requires = "jwt_issuer")]
    jwt_audience: Option<String>,
    /// No sign-in: every request is the user `anonymous` (for scripts that seed data).
    #[arg(long, env = "PICASSO_NO_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    no_auth: bool,
    /// Serve the dev issuer or --no-auth on a --host other than loopback: anyone who reaches
    /// the address may then sign in as anyone, admins included.
    #[arg(long, env = "PICASSO_ALLOW_REMOTE_DEV", value_parser = clap::builder::BoolishValueParser::new())]
    allow_remote_dev: bool,
    /// Post every published event to this URL, signed per Standard Webhooks (https, or http
    /// to this machine); needs --webhook-secret.
    #[arg(long, env = "PICASSO_WEBHOOK_URL", value_name = "URL", requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// The webhooks' signing secret, `whsec_` and base64 (as Standard Webhooks libraries take it).
    #[arg(
        long,
        env = "PICASSO_WEBHOOK_SECRET",
        value_name = "whsec_…",
        requires = "webhook_url",
        hide_env_values = true
    )]
    webhook_secret: Option<String>,
    /// Milliseconds before a failed webhook is tried again, doubling after each failure (up to
    /// six hours), for at least a day.
    #[arg(long, env = "PICASSO_WEBHOOK_BACKOFF_MS", default_value_t = 60_000)]
    webhook_backoff_ms: u64,
    /// Which events webhooks carry: a comma-separated list of created, processed, failed,
    /// deleted (or all). `GET /events` carries all four.
    #[arg(long, env = "PICASSO_EVENT_TYPES", default_value = picasso::change::EventTypes::DEFAULT)]
    event_types: String,
    /// The API the web page calls when it is not this stack (a deployed stack's ApiUrl, whose
    /// AllowedOrigins must then name this page's origin). The page takes it from here, never
    /// from its own URL.
    #[arg(long, env = "PICASSO_API", value_name = "URL")]
    api: Option<String>,
    /// The web page's live status from this WebSocket API (a deployed stack's WebSocketUrl)
    /// instead of this stack's `GET /events`.
    #[arg(long, env = "PICASSO_LIVE_URL", value_name = "URL")]
    live_url: Option<String>,
    /// The web page signs users in through this Cognito hosted-UI domain
    /// (PREFIX.auth.REGION.amazoncognito.com), as the app client --client-id.
    #[arg(long, env = "PICASSO_HOSTED_UI", value_name = "DOMAIN", requires = "client_id")]
    hosted_ui: Option<String>,
    /// The Cognito app client the hosted UI signs users in to.
    #[arg(long, env = "PICASSO_CLIENT_ID", value_name = "ID", requires = "hosted_ui")]
    client_id: Option<String>,
    /// Milliseconds --jwt-issuer's keys are used before they are fetched again (keys the
    /// issuer no longer publishes then stop verifying).
    #[arg(long, env = "PICASSO_JWKS_MAX_AGE_MS", default_value_t = 3_600_000, hide = true)]
    jwks_max_age_ms: u64,
    /// Milliseconds between two fetches of --jwt-issuer's keys for an unknown `kid`.
    #[arg(long, env = "PICASSO_JWKS_REFETCH_MS", default_value_t = 60_000, hide = true)]
    jwks_refetch_ms: u64,
    /// Milliseconds a client may take to send a request's headers.
    #[arg(long, env = "PICASSO_HEADER_TIMEOUT_MS", default_value_t = 10_000, hide = true)]
    header_timeout_ms: u64,
    /// Milliseconds a connection may stay without moving a byte.
    #[arg(long, env = "PICASSO_IDLE_TIMEOUT_MS", default_value_t = 60_000, hide = true)]
    idle_timeout_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // File I/O (s3s-fs, the processor's reads) goes through tokio's blocking pool, which grows
    // to hundreds of threads under load by default: stacks, malloc arenas and wake-ups, not
    // throughput (bench B4, B8). Each job being processed holds one thread for its whole file
    // (`--concurrency` of them at most), so the short file operations keep a share of their own.
    let threads = args.concurrency.max(1) + SHORT_BLOCKING_THREADS;
    tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(threads).build()?.block_on(run(args))
}

/// A block that stands out in the banner, for settings that leave the stack open.
fn warning(lines: &[&str]) {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = "!".repeat(width + 6);
    println!("{rule}");
    for l in lines {
        println!("!! {l:<width$} !!");
    }
    println!("{rule}");
}

/// Whether a URL's host is this machine (a loopback address or `localhost`).
fn on_this_machine(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Blocking threads for file operations beside the processing jobs.
const SHORT_BLOCKING_THREADS: usize = 16;

async fn run(args: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    picasso::telemetry::init();
    let auth = match (&args.jwt_issuer, &args.jwt_audience) {
        _ if args.no_auth => AuthMode::Off,
        (Some(issuer), Some(audience)) => {
            let url = issuer.parse::<http::Uri>().ok().filter(|u| u.host().is_some());
            let (scheme, host) = url.as_ref().map_or((None, ""), |u| (u.scheme_str(), u.host().unwrap_or_default()));
            anyhow::ensure!(matches!(scheme, Some("http" | "https")), "--jwt-issuer {issuer:?} must be an http(s) URL");
            // Keys fetched in the clear from another machine could be anyone's.
            anyhow::ensure!(
                scheme == Some("https") || on_this_machine(host),
                "--jwt-issuer {issuer:?} must be https: only an issuer on this machine (loopback) may be plain http"
            );
            AuthMode::Issuer(ExternalIssuer {
                issuer: issuer.clone(),
                audience: audience.clone(),
                refetch_after: Duration::from_millis(args.jwks_refetch_ms),
                max_age: Duration::from_millis(args.jwks_max_age_ms),
            })
        }
        _ => AuthMode::DevIssuer,
    };
    let anyone_signs_in = matches!(auth, AuthMode::DevIssuer | AuthMode::Off);
    if anyone_signs_in && !args.host.is_loopback() && !args.allow_remote_dev {
        anyhow::bail!(
            "--host {} would let anyone on the network sign in as anyone, admins included ({}). \
             Listen on 127.0.0.1 (the default), sign in with a real issuer (--jwt-issuer), \
             or say --allow-remote-dev",
            args.host,
            if auth == AuthMode::Off { "--no-auth" } else { "the built-in dev issuer" }
        );
    }
    let types = picasso::change::EventTypes::parse(&args.event_types)
        .map_err(|e| anyhow::anyhow!("--event-types {:?}: {e}", args.event_types))?;
    let webhook = match (&args.webhook_url, &args.webhook_secret) {
        (Some(url), Some(secret)) => Some(picasso_local::notify::Webhook {
            sender: Sender::new(
                WebhookUrl::parse(url).map_err(|e| anyhow::anyhow!("--webhook-url: {e}"))?,
                WebhookSecret::parse(secret).map_err(|e| anyhow::anyhow!("--webhook-secret: {e}"))?,
            ),
            backoff: Backoff::from_first(Duration::from_millis(args.webhook_backoff_ms)),
            types,
        }),
        _ => None,
    };
    let page = picasso_local::PageOptions {
        api: args.api.as_deref().map(Origin::parse).transpose().map_err(|e| anyhow::anyhow!("--api: {e}"))?,
        live: args
            .live_url
            .as_deref()
            .map(WebSocketUrl::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--live-url: {e}"))?,
        hosted_ui: match (&args.client_id, &args.hosted_ui) {
            (Some(id), Some(domain)) => {
                Some(HostedUi::parse(id, domain).map_err(|e| anyhow::anyhow!("--client-id, --hosted-ui: {e:#}"))?)
            }
            _ => None,
        },
    };
    let opts = picasso_local::Options {
        host: args.host,
        port: args.port,
        s3_port: args.s3_port,
        data_dir: args.data_dir.clone(),
        concurrency: args.concurrency,
        memory_budget_mb: args.memory_budget_mb,
        process: !args.no_processing,
        cors_origins: args.cors_origins,
        timeouts: picasso_local::server::Timeouts {
            header_read: Duration::from_millis(args.header_timeout_ms),
            idle: Duration::from_millis(args.idle_timeout_ms),
        },
        auth: auth.clone(),
        webhook: webhook.clone(),
        page,
    };
    // Listening for Ctrl-C (and SIGTERM) before saying "Ready": a signal sent as soon as the
    // banner is read must stop the stack cleanly, not kill it.
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let stack = picasso_local::start(opts).await?;
    println!("Picasso local stack");
    println!("Web page: http://{}/", stack.api);
    println!("API: http://{}", stack.api);
    println!("S3: http://{} (bucket {})", stack.s3, picasso_local::BUCKET);
    let creds = args.data_dir.join(picasso_local::storage::Credentials::FILE);
    println!("S3 credentials (new each run): {}", creds.display());
    println!("Data: {}", args.data_dir.display());
    match (&auth, &stack.dev_issuer) {
        (AuthMode::DevIssuer, Some(dev)) => {
            println!(
                "Auth: built-in dev issuer {} (POST /auth/dev-token {{\"sub\": \"alice\"}} for a token)",
                dev.issuer()
            );
            let (token, _) = dev.mint(&Owner::parse(BANNER_USER).expect("a valid name"), &[])?;
            println!(
                "Try (as {BANNER_USER}, for an hour): curl -H \"Authorization: Bearer {token}\" {}/files",
                dev.issuer()
            );
        }
        (AuthMode::Issuer(ext), _) => println!("Auth: tokens of {} for audience {}", ext.issuer, ext.audience),
        _ => {
            println!("Auth: off (--no-auth): no token needed, every file belongs to anonymous");
            warning(&[
                "--no-auth: NO SIGN-IN.",
                "Anyone who reaches this address lists, reads and deletes every file",
                "stored under anonymous. For seeding data on this machine only.",
            ]);
        }
    }
    if anyone_signs_in && !args.host.is_loopback() {
        warning(&[
            &format!("--allow-remote-dev: listening on {} with sign-in open to anyone.", args.host),
            "Anyone on the network may sign in as anyone, admins included.",
        ]);
    }
    if let Some(w) = &webhook {
        println!("Webhooks: {} (signed, Standard Webhooks)", w.sender.url());
    }
    println!("Live events: GET /events (Server-Sent Events)");
    if args.no_processing {
        println!("Processing: off (uploads stay pending until a start with processing on)");
    }
    if stack.recovered > 0 {
        println!("Recovered {} uploaded file(s) left pending by the last run", stack.recovered);
    }
    println!("Ready in {} ms. Press Ctrl-C to stop.", t0.elapsed().as_millis());
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    println!("Stopping…");
    stack.stop().await
}
