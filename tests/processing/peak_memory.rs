//! Memory stays bounded whatever an image's pixel count: each case runs in a child process
//! (this test binary again) that reports its peak RSS above what it used before inspecting.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

use picasso::budget::MemoryBudget;
use picasso::catalog::Outcome;
use picasso::domain::{ContentType, FileName, FileRecord, FileSize};
use picasso::inspect::Inspector;
use picasso::store::ObjectReader;

const MIB: u64 = 1 << 20;
/// The goal for any single PNG or JPEG.
const GOAL: u64 = 64 * MIB;

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, exif: bool, pattern: bool) {
    std::fs::write(path, common::png_rows(w, h, color, depth, exif, pattern)).unwrap();
}

fn vm(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Run by the tests below in a child process; not on its own.
#[test]
#[ignore = "the child process of the peak-memory tests"]
fn inspect_one_file_and_report_peak_memory() {
    let path = PathBuf::from(std::env::var("PEAK_FILE").expect("PEAK_FILE"));
    let ctype = std::env::var("PEAK_TYPE").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let record = FileRecord::pending(
        picasso::domain::Owner::parse("alice").unwrap(),
        FileName::parse("peak").unwrap(),
        ContentType::from_stored(ctype),
        FileSize::from_stored(size),
    );
    // The budget a 512 MB processor Lambda gets.
    let inspector = Inspector::new(MemoryBudget::for_lambda(Some("512")).unwrap());
    let before = vm("VmRSS:");
    let inspection = rt.block_on(async {
        let reader: ObjectReader = Box::pin(tokio::fs::File::open(&path).await.unwrap());
        inspector.inspect(&record, reader).await.unwrap()
    });
    let peak = vm("VmHWM:");
    let outcome = match &inspection.outcome {
        Outcome::Processed(a) => format!("processed {}", serde_json::Value::Object(a.metadata.clone())),
        Outcome::Failed(f, _) => format!("failed {}", f.code),
    };
    let thumb = inspection.thumbnail.map_or(0, |t| t.bytes.len());
    println!("PEAK {} {} thumbnail={thumb} {outcome}", before, peak.saturating_sub(before));
}

/// Inspects `path` in a child process: (peak RSS above the start, outcome line).
fn peak_of(path: &Path, ctype: &str) -> (u64, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "peak_memory::inspect_one_file_and_report_peak_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PEAK_FILE", path)
        .env("PEAK_TYPE", ctype)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The harness prints the test's name on the same line first.
    let line = stdout.lines().find_map(|l| l.find("PEAK ").map(|at| &l[at..])).unwrap_or_else(|| {
        panic!("child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    });
    let mut parts = line.splitn(4, ' ');
    let (_, _, delta, rest) = (parts.next(), parts.next(), parts.next().unwrap(), parts.next().unwrap());
    (delta.parse().unwrap(), rest.to_owned())
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("picasso-peak-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn huge_pngs_of_zeros_are_thumbnailed_in_bounded_memory() {
    let d = dir();
    for (name, bytes) in common::hostile_pngs() {
        let path = d.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (delta, outcome) = peak_of(&path, "image/png");
        println!(
            "{name}: {} KiB compressed, peak +{:.1} MiB, {outcome}",
            bytes.len() / 1024,
            delta as f64 / MIB as f64
        );
        assert!(delta <= GOAL, "{name}: peak RSS +{} MiB is over the 64 MiB goal", delta / MIB);
        assert!(outcome.contains(" processed ") && !outcome.contains("thumbnail=0 "), "{name}: {outcome}");
        assert!(outcome.contains("\"format\":\"png\""), "{outcome}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_64_megapixel_png_gets_its_thumbnail() {
    let d = dir();
    let path = d.join("photo-64mp.png");
    write_png(&path, 9248, 6936, png::ColorType::Rgb, png::BitDepth::Eight, true, true);
    let (delta, outcome) = peak_of(&path, "image/png");
    assert!(delta <= GOAL, "peak RSS +{} MiB is over the 64 MiB goal", delta / MIB);
    // Stored 9248×6936 with orientation 6: shown 6936 wide.
    assert!(outcome.contains("\"height\":9248") && outcome.contains("\"width\":6936"), "{outcome}");
    assert!(outcome.contains(" processed ") && !outcome.contains("thumbnail=0 "), "{outcome}");
    std::fs::remove_dir_all(d).unwrap();
}
