//! The local stack: the Lambdas' routers and processor on one machine, with an embedded
//! S3 endpoint (s3s) and an embedded catalog (SQLite) in a data directory.

pub mod auth;
pub mod delivery;
pub mod hosts;
pub mod live;
pub mod notify;
pub mod objects;
pub mod outbox;
pub mod private_file;
pub mod server;
pub mod sqlite;
pub mod storage;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use picasso::api::AppState;
use picasso::api::page::{HostedUi, Live, Origin, Page, PageAuth, PageSettings, WebSocketUrl};
use picasso::aws::S3Store;
use picasso::budget::MemoryBudget;
use picasso::catalog::Catalog;
use picasso::config::Config;
use picasso::events::ObjectRef;
use picasso::processor::Processor;
use picasso::store::{ObjectStore, Presigner};
use picasso::sweeper::{Redeliver, Sweeper};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::{Auth, AuthMode};
use crate::sqlite::SqliteCatalog;
use crate::storage::Credentials;

pub const BUCKET: &str = "picasso-uploads";
const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct Options {
    pub host: IpAddr,
    pub port: u16,
    pub s3_port: u16,
    pub data_dir: PathBuf,
    /// Files processed at once.
    pub concurrency: usize,
    /// Memory the concurrent jobs share for decoding, in MiB.
    pub memory_budget_mb: u64,
    /// Accept uploads but leave them pending (they are processed at the next start with processing on).
    pub process: bool,
    /// Web origins allowed besides the page's own (`http://127.0.0.1:PORT`, `http://localhost:PORT`).
    pub cors_origins: Vec<String>,
    pub timeouts: server::Timeouts,
    /// Who may call the API: the built-in dev issuer's tokens, a real issuer's, or anyone.
    pub auth: AuthMode,
    /// Where committed changes are posted, signed (none by default).
    pub webhook: Option<notify::Webhook>,
    /// What the page at `GET /` is told besides this stack's own settings.
    pub page: PageOptions,
}

/// The page's settings that are not this stack's: another API (a deployed stack's), its live
/// channel, and Cognito's hosted UI.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    pub api: Option<Origin>,
    pub live: Option<WebSocketUrl>,
    /// An app client id and its hosted-UI domain.
    pub hosted_ui: Option<HostedUi>,
}

impl PageOptions {
    /// The page calls `api` (this stack unless told another), signs in as `auth` says (or the
    /// hosted UI), and hears live status from this stack's `GET /events` unless told a
    /// WebSocket API (another API: none unless told).
    fn settings(&self, auth: &AuthMode, config: &Config, storage: Origin) -> anyhow::Result<PageSettings> {
        let issuer = match auth {
            AuthMode::Issuer(ext) => Some(Origin::parse(&ext.issuer)?),
            _ => None,
        };
        let auth = match (&self.hosted_ui, auth) {
            (Some(ui), _) => ui.clone().sign_in(issuer),
            _ if self.api.is_some() => PageAuth::Token { issuer: None },
            (None, AuthMode::DevIssuer) => PageAuth::Dev,
            (None, AuthMode::Issuer(_)) => PageAuth::Token { issuer },
            (None, AuthMode::Off) => PageAuth::None,
        };
        let live = match (&self.live, &self.api) {
            (Some(url), _) => Some(Live::Websocket(url.clone())),
            (None, None) => Some(Live::Sse("/events")),
            (None, Some(_)) => None,
        };
        Ok(PageSettings { api: self.api.clone(), auth, admin_group: config.admin_group.clone(), live, storage })
    }
}

pub struct Running {
    pub api: SocketAddr,
    pub s3: SocketAddr,
    pub recovered: usize,
    /// The built-in dev issuer, when it runs (it mints the banner's token).
    pub dev_issuer: Option<Arc<auth::dev::DevIssuer>>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops accepting requests and waits for those in flight.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for s in self.servers {
            s.await??;
        }
        Ok(())
    }
}

/// The Lambdas' configuration variables for limits; resource names are the stack's own,
/// whatever the environment says (it may name AWS resources).
fn config() -> anyhow::Result<Config> {
    Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some("local".into()),
        "BUCKET_NAME" => Some(BUCKET.into()),
        // A start-up sweep looks at every pending file of the last run: more per run than on AWS.
        "SWEEP_BATCH" => std::env::var(k).ok().or(Some("1000".into())),
        _ => std::env::var(k).ok(),
    })
}

fn s3_store(endpoint: &str, creds: &Credentials, bucket: &str) -> S3Store {
    use aws_sdk_s3::config::{BehaviorVersion, Region, SharedCredentialsProvider};
    let creds = aws_sdk_s3::config::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        None,
        None,
        "picasso-local",
    );
    let conf = picasso::aws::s3_config(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(creds.clone()),
        true,
    );
    S3Store::new(aws_sdk_s3::Client::from_conf(conf), SharedCredentialsProvider::new(creds), bucket)
}

pub async fn start(opts: Options) -> anyhow::Result<Running> {
    let config = config()?;
    let objects = opts.data_dir.join("objects");
    std::fs::create_dir_all(objects.join(&config.bucket_name))
        .with_context(|| format!("creating data directory {}", opts.data_dir.display()))?;
    let catalog = Arc::new(SqliteCatalog::open(&opts.data_dir.join("catalog.sqlite3"))?);

    let (events, rx) = mpsc::channel::<ObjectRef>(4096);
    let fs = s3s_fs::FileSystem::new(&objects).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(storage::NotifyingStore::new(fs, &objects, events.clone()));
    let creds = Credentials::generate();
    storage::rebind_uploads(&objects, &creds.access_key_id)?;
    builder.set_auth(s3s::auth::SimpleAuth::from_single(creds.access_key_id.as_str(), creds.secret_access_key.clone()));
    let s3_listener = TcpListener::bind((opts.host, opts.s3_port)).await.context("binding the S3 port")?;
    let s3_addr = s3_listener.local_addr()?;
    let api_listener = TcpListener::bind((opts.host, opts.port)).await.context("binding the API port")?;
    let api_addr = api_listener.local_addr()?;
    let origins = server::origins(api_addr, &opts.cors_origins)?;
    let s3_endpoint = format!("http://{s3_addr}");
    creds.write(&opts.data_dir.join(Credentials::FILE), &s3_endpoint, &config.bucket_name, REGION)?;

    let s3 = Arc::new(s3_store(&s3_endpoint, &creds, &config.bucket_name));
    let store: Arc<dyn ObjectStore> =
        Arc::new(objects::LocalObjects::new(s3.clone(), objects.join(&config.bucket_name)));
    let budget = MemoryBudget::new(opts.memory_budget_mb << 20);
    let processor = Processor::from_config(catalog.clone(), store.clone(), &config, budget);
    let redeliver = Arc::new(ChannelRedeliver(events.clone()));
    let sweeper = Sweeper::from_config(catalog.clone(), store.clone(), redeliver, &config);
    let auth = Auth::start(&opts.auth, &opts.data_dir, &base_url(api_addr), &config).await?;
    let identity = picasso::identity::Identity {
        auth: auth.authenticator.clone(),
        admin_group: config.admin_group.as_str().into(),
    };
    let dispatched = notify::spawn(catalog.outbox(), opts.webhook.clone())?;
    let (shutdown, stopped) = watch::channel(false);
    let live = live::Live { identity, outbox: catalog.outbox(), dispatched, stopped: stopped.clone() };
    let storage = picasso::api::page::storage_origin(s3.as_ref()).await?;
    let page = Page::new(&opts.page.settings(&opts.auth, &config, storage)?)?;
    let state = AppState::new(catalog.clone(), s3.clone(), store, config, auth.authenticator);
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins.clone()))
        .allow_methods([http::Method::GET, http::Method::POST, http::Method::DELETE])
        .allow_headers([http::header::CONTENT_TYPE, http::header::AUTHORIZATION]);
    let metrics = prometheus()?;
    let api = picasso::api::router(state)
        .merge(auth.routes)
        .merge(live::routes(live))
        .route("/metrics", get(move || std::future::ready(metrics.render_response())))
        .merge(picasso::api::page::router(page))
        .layer(cors);
    // Anyone may sign in as anyone here: no name but localhost may reach it (DNS rebinding).
    let api = if matches!(opts.auth, AuthMode::DevIssuer | AuthMode::Off) {
        api.layer(axum::middleware::from_fn(hosts::only_local_names))
    } else {
        api
    };
    let t = opts.timeouts;
    let servers = vec![
        server::serve(s3_listener, storage::router(builder.build(), origins), t, stopped.clone()),
        server::serve(api_listener, api, t, stopped),
    ];

    // Recovery reads objects through the S3 endpoint, so it runs once that serves.
    let recovered = if opts.process {
        delivery::spawn(rx, Arc::new(processor), opts.concurrency);
        recover(&catalog, sweeper, s3).await?
    } else {
        0
    };
    Ok(Running { api: api_addr, s3: s3_addr, recovered, dev_issuer: auth.dev, shutdown, servers })
}

/// The process's metrics recorder (one per process, whatever the stacks it starts).
#[derive(Clone)]
struct Metrics(metrics_exporter_prometheus::PrometheusHandle);

impl Metrics {
    /// Prometheus text exposition format, what a scraper reads.
    fn render_response(&self) -> impl axum::response::IntoResponse + use<> {
        ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], self.0.render())
    }
}

fn prometheus() -> anyhow::Result<Metrics> {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(Metrics(h.clone()));
    }
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    picasso::metrics::describe();
    Ok(Metrics(HANDLE.get_or_init(|| handle).clone()))
}

/// The stack's own URL, as a client on this machine reaches it: the dev issuer's `iss`.
pub fn base_url(api: SocketAddr) -> String {
    let ip = if api.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { api.ip() };
    format!("http://{}", SocketAddr::new(ip, api.port()))
}

/// How often the sweeper runs (on AWS, the template's schedule).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The sweeper's redelivery here: straight into the in-process queue.
struct ChannelRedeliver(mpsc::Sender<ObjectRef>);

#[async_trait::async_trait]
impl Redeliver for ChannelRedeliver {
    async fn redeliver(&self, objects: &[ObjectRef]) -> anyhow::Result<()> {
        for o in objects {
            self.0.send(o.clone()).await?;
        }
        Ok(())
    }
}

/// At start-up the last run's leases are dead and every pending file with its bytes is
/// delivered again; then the sweeper runs every [`SWEEP_EVERY`], and expired pending
/// records are dropped as DynamoDB's TTL would.
async fn recover(catalog: &Arc<SqliteCatalog>, sweeper: Sweeper, s3: Arc<S3Store>) -> anyhow::Result<usize> {
    catalog.release_dead_leases()?;
    let now = picasso::domain::now();
    // Nothing is in flight yet: every pending file is looked at, whatever its age.
    let swept = sweeper.sweep_older_than(now, Duration::ZERO).await?;
    purge(catalog, s3.as_ref(), now).await?;
    let catalog = catalog.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let now = picasso::domain::now();
            let swept = match sweeper.sweep(now).await {
                Ok(_) => purge(&catalog, s3.as_ref(), now).await,
                Err(e) => Err(e),
            };
            if let Err(e) = swept {
                tracing::warn!(error = format!("{e:#}"), "sweep failed; next one in a minute");
            }
        }
    });
    Ok(swept.arrived + swept.expired_leases)
}

/// Drops expired pending records, as DynamoDB's TTL would, and aborts the multipart uploads
/// they waited for, as the bucket's lifecycle rule would: no parts are left behind.
async fn purge(
    catalog: &SqliteCatalog,
    uploads: &dyn Presigner,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    for (key, upload_id) in catalog.purge_expired(now)? {
        uploads.abort_multipart(key, &upload_id).await?;
    }
    Ok(())
}

/// Lets tests and benchmarks reach the catalog behind a running stack's data directory.
pub fn open_catalog(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Catalog>> {
    Ok(Arc::new(SqliteCatalog::open(&data_dir.join("catalog.sqlite3"))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn storage() -> Origin {
        Origin::parse("http://127.0.0.1:3001").unwrap()
    }

    fn settings(page: PageOptions, auth: &AuthMode) -> PageSettings {
        let config = Config::from_lookup(|k| (k == "TABLE_NAME" || k == "BUCKET_NAME").then(|| "x".into())).unwrap();
        page.settings(auth, &config, storage()).unwrap()
    }

    #[test]
    fn the_page_is_told_this_stack_unless_told_another() {
        // This stack: its own sign-in, live status from its GET /events.
        let own = settings(PageOptions::default(), &AuthMode::DevIssuer);
        assert_eq!((own.api, own.auth, own.live), (None, PageAuth::Dev, Some(Live::Sse("/events"))));
        assert_eq!(settings(PageOptions::default(), &AuthMode::Off).auth, PageAuth::None);
        let issuer = AuthMode::Issuer(auth::ExternalIssuer {
            issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x".into(),
            audience: "client".into(),
            refetch_after: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
        });
        let issuer_origin = Some(Origin::parse("https://cognito-idp.eu-west-1.amazonaws.com").unwrap());
        assert_eq!(settings(PageOptions::default(), &issuer).auth, PageAuth::Token { issuer: issuer_origin.clone() });

        // A deployed stack's API: a pasted token (its issuer unknown here) and no live channel,
        // unless told its WebSocket API and hosted UI.
        let api = Some(Origin::parse("https://abc.execute-api.eu-west-1.amazonaws.com/").unwrap());
        let other = settings(PageOptions { api: api.clone(), ..Default::default() }, &AuthMode::DevIssuer);
        assert_eq!((other.api.clone(), other.auth, other.live), (api.clone(), PageAuth::Token { issuer: None }, None));
        let ws = WebSocketUrl::parse("wss://ws.execute-api.eu-west-1.amazonaws.com/live").unwrap();
        let hosted = HostedUi::parse("client123", "pics.auth.eu-west-1.amazoncognito.com").unwrap();
        let told = PageOptions { api: api.clone(), live: Some(ws.clone()), hosted_ui: Some(hosted.clone()) };
        let told = settings(told, &issuer);
        assert_eq!(told.live, Some(Live::Websocket(ws)));
        assert_eq!(
            told.auth,
            PageAuth::Cognito { issuer: issuer_origin, client_id: hosted.client_id, domain: hosted.domain }
        );
    }
}
