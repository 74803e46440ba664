//! The local stack: the Lambdas' routers and processor on one machine, with an embedded
//! S3 endpoint (s3s) and an embedded catalog (SQLite) in a data directory.

pub mod delivery;
pub mod sqlite;
pub mod storage;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use axum::serve::ListenerExt;
use picasso::api::AppState;
use picasso::aws::S3Store;
use picasso::catalog::Catalog;
use picasso::config::Config;
use picasso::processor::Processor;
use picasso::store::ObjectStore;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::sqlite::SqliteCatalog;
use crate::storage::Created;

pub const BUCKET: &str = "picasso-uploads";
/// Credentials of the embedded endpoint; it listens on loopback only by default.
const ACCESS_KEY: &str = "picasso-local";
const SECRET_KEY: &str = "picasso-local-secret-key";

#[derive(Debug, Clone)]
pub struct Options {
    pub host: IpAddr,
    pub port: u16,
    pub s3_port: u16,
    pub data_dir: PathBuf,
    /// Files processed at once.
    pub concurrency: usize,
    /// Accept uploads but leave them pending (they are processed at the next start with processing on).
    pub process: bool,
}

pub struct Running {
    pub api: SocketAddr,
    pub s3: SocketAddr,
    pub recovered: usize,
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
        _ => std::env::var(k).ok(),
    })
}

fn s3_client(endpoint: SocketAddr) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "picasso-local"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn start(opts: Options) -> anyhow::Result<Running> {
    let config = Arc::new(config()?);
    let objects = opts.data_dir.join("objects");
    std::fs::create_dir_all(objects.join(&config.bucket_name))
        .with_context(|| format!("creating data directory {}", opts.data_dir.display()))?;
    let catalog = Arc::new(SqliteCatalog::open(&opts.data_dir.join("catalog.sqlite3"))?);

    let (events, rx) = mpsc::channel::<Created>(4096);
    let fs = s3s_fs::FileSystem::new(&objects).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(storage::NotifyingStore::new(fs, events.clone()));
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let s3_listener = TcpListener::bind((opts.host, opts.s3_port)).await.context("binding the S3 port")?;
    let s3_addr = s3_listener.local_addr()?;
    let api_listener = TcpListener::bind((opts.host, opts.port)).await.context("binding the API port")?;
    let api_addr = api_listener.local_addr()?;

    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(s3_client(s3_addr), &config.bucket_name));
    let processor = Arc::new(Processor::new(catalog.clone(), store.clone(), config.bucket_name.clone()));
    let bucket = config.bucket_name.clone();
    let state = AppState { catalog: catalog.clone(), store: store.clone(), config };
    let api = picasso::api::router(state)
        .route("/", get(|| async { Html(include_str!("web/index.html")) }))
        .layer(tower_http::cors::CorsLayer::permissive());
    let (shutdown, stopped) = watch::channel(false);
    let servers =
        vec![serve(s3_listener, storage::router(builder.build()), stopped.clone()), serve(api_listener, api, stopped)];

    // Recovery reads objects through the S3 endpoint, so it runs once that serves.
    let recovered = if opts.process {
        delivery::spawn(rx, processor, opts.concurrency);
        recover(&catalog, store.as_ref(), &bucket, &events).await?
    } else {
        0
    };
    Ok(Running { api: api_addr, s3: s3_addr, recovered, shutdown, servers })
}

fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) -> JoinHandle<std::io::Result<()>> {
    // Without TCP_NODELAY a response written in two parts (headers, then a streamed body:
    // every GET of an object) waits for the peer's delayed ACK, ~40 ms on Linux.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    })
}

/// Files accepted before a stop whose bytes arrived but were not processed are
/// delivered again; pending records whose upload never came expire as DynamoDB's TTL would.
async fn recover(
    catalog: &SqliteCatalog,
    store: &dyn ObjectStore,
    bucket: &str,
    events: &mpsc::Sender<Created>,
) -> anyhow::Result<usize> {
    let mut n = 0;
    let now = picasso::domain::now();
    for record in catalog.unfinished()? {
        match store.head(record.key()).await? {
            Some(obj) => {
                let created = Created {
                    bucket: bucket.into(),
                    key: record.key().to_string(),
                    size: obj.size,
                    etag: String::new(),
                };
                events.send(created).await?;
                n += 1;
            }
            None => {
                catalog.expire(record.id, now)?;
            }
        }
    }
    Ok(n)
}

/// Lets tests and benchmarks reach the catalog behind a running stack's data directory.
pub fn open_catalog(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Catalog>> {
    Ok(Arc::new(SqliteCatalog::open(&data_dir.join("catalog.sqlite3"))?))
}
