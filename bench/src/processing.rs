//! A. Processing: the processor's read path (`picasso::inspect::inspect`) on local files,
//! so only our code is measured, not S3.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use image::{ImageEncoder, Rgb, RgbImage};
use picasso::budget::MemoryBudget;
use picasso::catalog::Outcome;
use picasso::domain::{ContentType, FileName, FileRecord, FileSize};
use picasso::inspect::{Inspection, Inspector};
use picasso::processor::DEFAULT_BUDGET;
use picasso::store::ObjectReader;

use crate::Env;
use crate::report::{Rng, Table, goal, median, mib, ms, proc_kib};

const GIB: u64 = 1 << 30;
const RUNS: usize = 3;
const IMAGE_RUNS: usize = 7;

pub async fn run(env: &Env) -> anyhow::Result<()> {
    let binary = generate(&env.work.join("random-1g.bin"), GIB, random_block)?;
    let text = generate(&env.work.join("text-1g.txt"), GIB, text_block)?;
    throughput(&binary).await?;
    let (jpeg, png) = images(&env.work)?;
    peak_rss(&[(&binary, "application/octet-stream"), (&text, "text/plain"), (&jpeg, "image/jpeg")])?;
    thumbnails(env, &jpeg, &png).await
}

/// Writes `size` bytes made of repeated blocks, unless a previous run left the same file.
fn generate(path: &Path, size: u64, block: fn() -> Vec<u8>) -> anyhow::Result<PathBuf> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(path.to_owned());
    }
    let b = block();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(b.len() as u64) as usize;
        f.write_all(&b[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(path.to_owned())
}

/// 64 MiB of noise: large enough that repetition cannot help any cache.
fn random_block() -> Vec<u8> {
    let mut b = vec![0u8; 64 << 20];
    Rng::new(42).fill(&mut b);
    b
}

/// 1 MiB of prose-like lines with some multi-byte UTF-8, so the text statistics see
/// realistic input (ASCII fast paths alone would flatter them).
fn text_block() -> Vec<u8> {
    const WORDS: [&str; 12] =
        ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "naïve", "über", "日本語"];
    let mut rng = Rng::new(7);
    let mut s = String::with_capacity(1 << 20);
    while s.len() < (1 << 20) - 64 {
        let n = 4 + rng.next() % 12;
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
        }
        s.push('\n');
    }
    let mut b = s.into_bytes();
    b.resize(1 << 20, b'\n');
    b
}

/// Reads the file once so both contenders start from the page cache.
fn warm(path: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// One `inspect` as the processor runs it: a boxed async reader over the object.
async fn inspect_file(path: &Path, content_type: &str) -> anyhow::Result<(Duration, Inspection)> {
    let size = std::fs::metadata(path)?.len();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let record = FileRecord::pending(
        FileName::parse(name).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        ContentType::from_stored(content_type.into()),
        FileSize::from_stored(size),
    );
    let t = Instant::now();
    let reader: ObjectReader = Box::pin(tokio::fs::File::open(path).await?);
    let inspection = Inspector::new(MemoryBudget::new(DEFAULT_BUDGET)).inspect(&record, reader).await?;
    let elapsed = t.elapsed();
    if let Outcome::Failed(f, _) = &inspection.outcome {
        bail!("{} was not processed: {} ({})", path.display(), f.message, f.code);
    }
    Ok((elapsed, inspection))
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

async fn throughput(file: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)?.len();
    warm(file)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Interleaved, so drift in the machine's state affects both alike.
    for _ in 0..RUNS {
        ours.push(inspect_file(file, "application/octet-stream").await?.0);
        let t = Instant::now();
        let out = Command::new("sha256sum").arg(file).output().context("running sha256sum")?;
        theirs.push(t.elapsed());
        ensure!(out.status.success(), "sha256sum failed");
    }
    let (o, t) = (mb_s(size, median(&ours)), mb_s(size, median(&theirs)));
    let mut table = Table::new(
        "A1. SHA-256 read path, 1 GiB in page cache (median of 3)",
        &["what", "time", "MB/s", "vs sha256sum"],
    );
    table.row(vec![
        "`inspect` (octet-stream: hash + sniff)".into(),
        ms(median(&ours)),
        format!("{o:.0}"),
        format!("{:.2}×", o / t),
    ]);
    table.row(vec!["`sha256sum` (reference)".into(), ms(median(&theirs)), format!("{t:.0}"), "1.00×".into()]);
    table.print();
    goal("A1 hashing within 10% of sha256sum", o >= 0.9 * t, format!("{o:.0} vs {t:.0} MB/s"));
    Ok(())
}

/// 4000×3000 with texture (blocks, gradients, noise), so neither codec gets an easy ride.
fn images(work: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (jpeg, png) = (work.join("photo-12mp.jpg"), work.join("photo-12mp.png"));
    if jpeg.exists() && png.exists() {
        return Ok((jpeg, png));
    }
    let mut rng = Rng::new(3);
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        let n = rng.next();
        let noise = |shift: u32| ((n >> shift) & 0x1f) as u8;
        let base = (((x / 40) ^ (y / 40)) & 0x3f) as u8;
        Rgb([
            base.wrapping_add((x / 16) as u8).wrapping_add(noise(0)),
            base.wrapping_add((y / 12) as u8).wrapping_add(noise(8)),
            ((x + y) / 28) as u8 ^ noise(16),
        ])
    });
    let f = std::io::BufWriter::new(std::fs::File::create(&jpeg)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(f, 90).encode_image(&img)?;
    let f = std::io::BufWriter::new(std::fs::File::create(&png)?);
    image::codecs::png::PngEncoder::new(f).write_image(img.as_raw(), 4000, 3000, image::ExtendedColorType::Rgb8)?;
    Ok((jpeg, png))
}

/// Pillow's idiomatic thumbnail, timed inside Python around open + thumbnail + save.
const PILLOW: &str = r#"
import json, statistics, sys, time
from PIL import Image
runs, out, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
res = {}
for f in files:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        im = Image.open(f)
        im.thumbnail((256, 256))
        im.convert("RGB").save(out, "JPEG", quality=85)
        ts.append(time.perf_counter() - t)
    res[f] = statistics.median(ts)
print(json.dumps(res))
"#;

async fn thumbnails(env: &Env, jpeg: &Path, png: &Path) -> anyhow::Result<()> {
    let out = env.work.join("pillow-thumb.jpg");
    let py = Command::new(&env.python)
        .arg("-c")
        .arg(PILLOW)
        .arg(IMAGE_RUNS.to_string())
        .arg(&out)
        .args([jpeg, png])
        .output()
        .with_context(|| format!("running {}", env.python.display()))?;
    ensure!(py.status.success(), "Pillow failed: {}", String::from_utf8_lossy(&py.stderr));
    let pillow: serde_json::Value = serde_json::from_slice(&py.stdout)?;
    let mut table = Table::new(
        &format!("A3. Thumbnail of a 12 MP image to 256 px (median of {IMAGE_RUNS})"),
        &["file", "size", "ours (`inspect`)", "Pillow (reference)", "ours / Pillow"],
    );
    let mut verdicts = Vec::new();
    for (file, ct) in [(jpeg, "image/jpeg"), (png, "image/png")] {
        warm(file)?;
        let mut times = Vec::new();
        for _ in 0..IMAGE_RUNS {
            let (t, insp) = inspect_file(file, ct).await?;
            ensure!(insp.thumbnail.is_some(), "no thumbnail for {}", file.display());
            times.push(t);
        }
        let ours = median(&times);
        let theirs = Duration::from_secs_f64(pillow[file.to_str().unwrap_or_default()].as_f64().unwrap_or(f64::NAN));
        let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        table.row(vec![
            format!("{name} (4000×3000)"),
            mib(std::fs::metadata(file)?.len() >> 10),
            ms(ours),
            ms(theirs),
            format!("{ratio:.2}×"),
        ]);
        verdicts.push((name, ratio));
    }
    table.print();
    println!(
        "Ours includes reading and hashing the file; Pillow's includes neither. Pillow decodes JPEG in draft \
         mode (DCT scaling to 1/8), we decode every pixel.\n"
    );
    for (name, ratio) in verdicts {
        goal(&format!("A3 thumbnail of {name} faster than Pillow"), ratio < 1.0, format!("{ratio:.2}× Pillow's time"));
    }
    Ok(())
}

/// Peak RSS of a child that inspects one file: a fresh process, so nothing but that
/// one object has ever been in its heap.
fn peak_rss(cases: &[(&Path, &str)]) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let mut table = Table::new(
        "A2. Peak RSS (VmHWM) of a process inspecting one object",
        &["object", "declared type", "time", "MB/s", "peak RSS"],
    );
    let mut verdicts = Vec::new();
    for (file, ct) in cases {
        warm(file)?;
        let size = std::fs::metadata(file)?.len();
        let mut child = Command::new(&me)
            .args(["inspect-child", file.to_str().unwrap_or_default(), ct])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
        // Read while the child waits on stdin: after it exits /proc forgets it.
        let hwm = proc_kib(child.id(), "VmHWM");
        drop(child.stdin.take());
        child.wait()?;
        let elapsed: f64 = line.trim().strip_prefix("done ").context("the child failed")?.parse()?;
        let hwm = hwm?;
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        table.row(vec![
            format!("{name} ({})", mib(size >> 10)),
            format!("`{ct}`"),
            ms(Duration::from_secs_f64(elapsed)),
            format!("{:.0}", mb_s(size, Duration::from_secs_f64(elapsed))),
            mib(hwm),
        ]);
        if size >= GIB {
            verdicts.push((format!("A2 peak RSS < 64 MiB, 1 GiB {ct}"), hwm, hwm < 64 << 10));
        }
    }
    table.print();
    for (what, hwm, met) in verdicts {
        goal(&what, met, mib(hwm));
    }
    Ok(())
}

/// `inspect-child <file> <content type>`: inspects, reports, then waits for the parent
/// to read its /proc status before exiting.
pub async fn child(args: &[String]) -> anyhow::Result<()> {
    let [file, ct] = args else { bail!("usage: inspect-child <file> <content type>") };
    let (elapsed, _) = inspect_file(Path::new(file), ct).await?;
    println!("done {}", elapsed.as_secs_f64());
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}
