//! Tables, goals and the small measuring helpers every part shares.

use std::sync::Mutex;
use std::time::Duration;

/// Markdown, so the latest run pastes into README.md unchanged.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self { title: title.into(), header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        println!("\n### {}\n", self.title);
        println!("| {} |", self.header.join(" | "));
        println!("|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        println!();
    }
}

/// Goals are collected so the end of the run lists every verdict together.
static GOALS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn goal(what: &str, met: bool, detail: String) {
    let line = format!("- {what}: **{}** ({detail})", if met { "met" } else { "missed" });
    println!("{line}");
    GOALS.lock().unwrap().push(line);
}

pub fn summary() {
    let goals = GOALS.lock().unwrap();
    if !goals.is_empty() {
        println!("\n### Goals\n");
        for g in goals.iter() {
            println!("{g}");
        }
    }
}

pub fn machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let sha_ni = cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "sha_ni"));
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# Picasso benchmarks, {} UTC\n\nMachine: {cores} cores, {} (sha_ni: {}), {:.0} GiB RAM",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        model.unwrap_or("unknown CPU"),
        if sha_ni { "yes" } else { "no" },
        mem_kib as f64 / (1 << 20) as f64
    );
}

/// Nearest-rank percentile of an unsorted sample.
pub fn pct(sample: &[Duration], p: f64) -> Duration {
    if sample.is_empty() {
        return Duration::ZERO;
    }
    let mut s = sample.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

pub fn median(sample: &[Duration]) -> Duration {
    pct(sample, 50.0)
}

pub fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m >= 100.0 {
        format!("{m:.0} ms")
    } else if m >= 1.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.2} ms")
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A `Vm*` line of /proc/<pid>/status, in KiB (VmHWM: peak resident set; VmRSS: now).
pub fn proc_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc/{pid}/status"))
}

/// xorshift64*: generated data must be incompressible-ish and reproducible, and fast
/// enough that making a GiB costs well under a second.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}
