//! `cargo run --release`: the whole of Picasso on one machine.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

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
    /// Accept uploads but leave them pending; a later start with processing on takes them.
    #[arg(long, env = "PICASSO_NO_PROCESSING")]
    no_processing: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let t0 = Instant::now();
    picasso::telemetry::init();
    let args = Args::parse();
    let opts = picasso_local::Options {
        host: args.host,
        port: args.port,
        s3_port: args.s3_port,
        data_dir: args.data_dir.clone(),
        concurrency: args.concurrency,
        process: !args.no_processing,
    };
    let stack = picasso_local::start(opts).await?;
    println!("Picasso local stack");
    println!("Web page: http://{}/", stack.api);
    println!("API: http://{}", stack.api);
    println!("S3: http://{} (bucket {})", stack.s3, picasso_local::BUCKET);
    println!("Data: {}", args.data_dir.display());
    if args.no_processing {
        println!("Processing: off (uploads stay pending until a start with processing on)");
    }
    if stack.recovered > 0 {
        println!("Recovered {} uploaded file(s) left pending by the last run", stack.recovered);
    }
    println!("Ready in {} ms. Press Ctrl-C to stop.", t0.elapsed().as_millis());
    tokio::signal::ctrl_c().await?;
    println!("Stopping…");
    stack.stop().await
}
