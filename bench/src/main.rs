//! Picasso's benchmarks, run by hand through `bench/run.sh` (`make bench`), never in CI.
//!
//! Every figure is printed beside a reference measured in the same run on the same
//! machine (or, where the reference is the old service, its published figure), one
//! Markdown table per part so the output pastes straight into the README.
//!
//! `picasso-bench [processing|ingest|listing|coldstart|presign|multipart|events|cost]…` (all by default), with
//! `BENCH_WORK` (scratch directory for generated data), `BENCH_BIN_DIR` (release binaries)
//! and `BENCH_PYTHON` (a Python with Pillow). `inspect-child` is internal: the RSS probe.

mod coldstart;
mod cost;
mod events;
mod http;
mod presign;
mod processing;
mod report;
mod stack;

use std::path::PathBuf;

use anyhow::Context;

pub struct Env {
    pub work: PathBuf,
    pub bin_dir: PathBuf,
    pub python: PathBuf,
}

const PARTS: [&str; 8] = ["processing", "ingest", "listing", "coldstart", "presign", "multipart", "events", "cost"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new()?;
    if args.first().map(String::as_str) == Some("inspect-child") {
        return rt.block_on(processing::child(&args[1..]));
    }
    let var = |k: &str, default: &str| PathBuf::from(std::env::var(k).unwrap_or_else(|_| default.into()));
    let env = Env {
        work: var("BENCH_WORK", "target/bench"),
        bin_dir: var("BENCH_BIN_DIR", "target/release"),
        python: var("BENCH_PYTHON", ".venv/bin/python"),
    };
    std::fs::create_dir_all(&env.work).with_context(|| format!("creating {}", env.work.display()))?;
    let parts: Vec<&str> = if args.is_empty() { PARTS.to_vec() } else { args.iter().map(String::as_str).collect() };
    if let Some(bad) = parts.iter().find(|p| !PARTS.contains(p)) {
        anyhow::bail!("unknown part {bad:?}; parts: {}", PARTS.join(", "));
    }
    report::machine();
    for part in parts {
        match part {
            "processing" => rt.block_on(processing::run(&env))?,
            "ingest" => rt.block_on(stack::ingest(&env))?,
            "listing" => rt.block_on(stack::listing(&env))?,
            "coldstart" => rt.block_on(coldstart::run(&env))?,
            "presign" => rt.block_on(presign::run())?,
            "multipart" => rt.block_on(stack::multipart(&env))?,
            "events" => rt.block_on(events::run(&env))?,
            "cost" => rt.block_on(cost::run(&env))?,
            _ => unreachable!(),
        }
    }
    report::summary();
    Ok(())
}
