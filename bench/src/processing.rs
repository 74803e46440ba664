//! A. Processing: the processor's read path (`picasso::inspect::inspect`) on local files,
//! so only our code is measured, not S3.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use image::{ImageEncoder, Rgb, RgbImage};
use picasso::budget::DEFAULT_BUDGET;
use picasso::budget::MemoryBudget;
use picasso::catalog::Outcome;
use picasso::domain::{ContentType, FileName, FileRecord, FileSize};
use picasso::inspect::{Inspection, Inspector};
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
    text_statistics(&text).await?;
    let (jpeg, png) = images(&env.work)?;
    peak_rss(&[(&binary, "application/octet-stream"), (&text, "text/plain"), (&jpeg, "image/jpeg")])?;
    thumbnails(env, &jpeg, &png).await?;
    any_pixel_count(env)
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

/// One `inspect` as the processor runs it, which must end `processed`.
async fn inspect_file(path: &Path, content_type: &str) -> anyhow::Result<(Duration, Inspection)> {
    let (elapsed, inspection) = inspect_any(path, content_type).await?;
    if let Outcome::Failed(f, _) = &inspection.outcome {
        bail!("{} was not processed: {} ({})", path.display(), f.message, f.code);
    }
    Ok((elapsed, inspection))
}

/// One `inspect` as the processor runs it: a boxed async reader over the object.
async fn inspect_any(path: &Path, content_type: &str) -> anyhow::Result<(Duration, Inspection)> {
    let size = std::fs::metadata(path)?.len();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let record = FileRecord::pending(
        picasso::domain::Owner::parse("alice").unwrap(),
        FileName::parse(name).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        ContentType::from_stored(content_type.into()),
        FileSize::from_stored(size),
    );
    let t = Instant::now();
    let reader: ObjectReader = Box::pin(tokio::fs::File::open(path).await?);
    let inspection = Inspector::new(MemoryBudget::new(DEFAULT_BUDGET)).inspect(&record, reader).await?;
    Ok((t.elapsed(), inspection))
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

/// Text statistics alone (the file read in the inspector's 64 KiB chunks), beside hashing the same
/// text and the whole `inspect` of it as `text/plain` (hash + sniff + statistics, one thread).
async fn text_statistics(file: &Path) -> anyhow::Result<()> {
    use sha2::Digest;
    let size = std::fs::metadata(file)?.len();
    warm(file)?;
    let each_chunk = |f: &mut dyn FnMut(&[u8])| -> anyhow::Result<Duration> {
        let mut r = std::fs::File::open(file)?;
        let mut buf = vec![0u8; 64 << 10];
        let t = Instant::now();
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(t.elapsed());
            }
            f(&buf[..n]);
        }
    };
    let (mut stats, mut hash, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut t = picasso::inspect::TextStats::default();
        stats.push(each_chunk(&mut |c| t.feed(c))?);
        ensure!(t.finish()["utf8"] == true, "the text corpus is valid UTF-8");
        let mut h = sha2::Sha256::new();
        hash.push(each_chunk(&mut |c| h.update(c))?);
        std::hint::black_box(h.finalize());
        whole.push(inspect_file(file, "text/plain").await?.0);
    }
    let (s, h, w) = (mb_s(size, median(&stats)), mb_s(size, median(&hash)), mb_s(size, median(&whole)));
    let mut table = Table::new(
        "A1b. Text statistics, 1 GiB of mixed-script text in page cache (median of 3)",
        &["what", "time", "MB/s"],
    );
    table.row(vec![
        "`TextStats` alone (lines, words, characters, UTF-8)".into(),
        ms(median(&stats)),
        format!("{s:.0}"),
    ]);
    table.row(vec!["SHA-256 of the same bytes (reference)".into(), ms(median(&hash)), format!("{h:.0}")]);
    table.row(vec![
        "`inspect` as `text/plain` (hash + sniff + statistics)".into(),
        ms(median(&whole)),
        format!("{w:.0}"),
    ]);
    table.print();
    goal("A1b text statistics ≥ 800 MB/s", s >= 800.0, format!("{s:.0} MB/s, hashing {h:.0}"));
    goal("A1b text/plain inspect ≥ 800 MB/s", w >= 800.0, format!("{w:.0} MB/s"));
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
        "Ours includes reading and hashing the file; Pillow's includes neither. Both decode JPEGs scaled in the \
         DCT (Pillow's draft mode; libjpeg-turbo's `scale_num/scale_denom` through `mozjpeg` for us), 1/8 here.\n"
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
        let Probe { elapsed, hwm, outcome, .. } = probe(&me, file, ct)?;
        ensure!(outcome.starts_with("processed"), "{}: {outcome}", file.display());
        let elapsed = elapsed.as_secs_f64();
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

/// What a child inspecting one file reports, and its peak read from /proc.
struct Probe {
    elapsed: Duration,
    /// VmHWM: the peak resident set, in KiB.
    hwm: u64,
    /// VmRSS just before inspecting (runtime started, nothing read yet), in KiB.
    rest: u64,
    /// `processed 8000×8000 thumbnail 1234 B` or `failed <code>`.
    outcome: String,
}

/// Inspects `file` in a fresh process, so nothing but that one object has been in its heap.
fn probe(me: &Path, file: &Path, ct: &str) -> anyhow::Result<Probe> {
    let mut child = Command::new(me)
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
    let mut parts = line.trim().strip_prefix("done ").context("the child failed")?.splitn(3, ' ');
    let mut next = || parts.next().context("short report from the child");
    let elapsed = Duration::from_secs_f64(next()?.parse()?);
    let rest = next()?.parse()?;
    let outcome = next()?.to_owned();
    Ok(Probe { elapsed, hwm: hwm?, rest, outcome })
}

/// `inspect-child <file> <content type>`: inspects, reports `done <seconds> <rest KiB>
/// <outcome>`, then waits for the parent to read its /proc status before exiting.
pub async fn child(args: &[String]) -> anyhow::Result<()> {
    let [file, ct] = args else { bail!("usage: inspect-child <file> <content type>") };
    let rest = proc_kib(std::process::id(), "VmRSS")?;
    let (elapsed, inspection) = inspect_any(Path::new(file), ct).await?;
    let outcome = match &inspection.outcome {
        Outcome::Processed(a) => {
            let dim = |k: &str| a.metadata.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            let thumb = inspection.thumbnail.as_ref().map_or(0, |t| t.bytes.len());
            format!("processed {}×{} thumbnail {thumb} B", dim("width"), dim("height"))
        }
        Outcome::Failed(f, _) => format!("failed {}", f.code),
    };
    println!("done {} {rest} {outcome}", elapsed.as_secs_f64());
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}

/// EXIF with orientation 6 (rotate 90°), big-endian TIFF.
const EXIF_ROTATE_90: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

/// The issue's goal for any single PNG or JPEG, whatever its pixel count.
const PEAK_GOAL_KIB: u64 = 64 << 10;

/// 64 Mpx, 4:3, as a phone's high-resolution mode takes them.
const PHOTO_64MP: (u32, u32) = (9248, 6936);

/// A photo-like pixel at (x, y), computed on its own so neither file is ever whole in
/// memory: smooth gradients (sky, shading), edges (blocks), and sensor-like noise.
fn photo_pixel(x: u32, y: u32) -> [u8; 3] {
    let mut h = u64::from(x).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(y).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    let noise = |shift: u32| ((h >> shift) & 0x0f) as u8;
    let block = (((x / 97) ^ (y / 61)) & 0x3f) as u8;
    [
        block.wrapping_add((x / 48) as u8).wrapping_add(noise(0)),
        block.wrapping_add((y / 36) as u8).wrapping_add(noise(8)),
        (((x + y) / 64) as u8 ^ (block >> 1)).wrapping_add(noise(16)),
    ]
}

/// The photo as an image view the JPEG encoder pulls 8×8 blocks from: streamed, never whole.
struct PhotoView(u32, u32);

impl image::GenericImageView for PhotoView {
    type Pixel = Rgb<u8>;

    fn dimensions(&self) -> (u32, u32) {
        (self.0, self.1)
    }

    fn get_pixel(&self, x: u32, y: u32) -> Rgb<u8> {
        Rgb(photo_pixel(x, y))
    }
}

/// What a generated PNG's rows hold.
#[derive(Clone, Copy)]
enum Rows {
    Zeros,
    Photo,
}

/// A PNG written row by row with the png crate's stream writer (never whole in memory).
fn write_png(
    path: &Path,
    (w, h): (u32, u32),
    color: png::ColorType,
    depth: png::BitDepth,
    exif: bool,
    rows: Rows,
) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("part");
    let mut info = png::Info::with_size(w, h);
    info.color_type = color;
    info.bit_depth = depth;
    if exif {
        info.exif_metadata = Some(EXIF_ROTATE_90.into());
    }
    let file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut enc = png::Encoder::with_info(file, info)?;
    // Zeros as tight as deflate gets them (about 1:1000, what an attacker would send); the
    // photo fast, as a camera or an editor writes it.
    enc.set_compression(match rows {
        Rows::Zeros => png::Compression::High,
        Rows::Photo => png::Compression::Fast,
    });
    let mut writer = enc.write_header()?;
    let mut stream = writer.stream_writer()?;
    let mut row = vec![0u8; w as usize * color.samples() * (depth as usize).div_ceil(8)];
    for y in 0..h {
        if let Rows::Photo = rows {
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&photo_pixel(x as u32, y));
            }
        }
        stream.write_all(&row)?;
    }
    stream.finish()?;
    std::fs::rename(tmp, path)?;
    Ok(())
}

/// A baseline JPEG (quality 90) encoded from the streamed view.
fn write_jpeg(path: &Path, (w, h): (u32, u32)) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("part");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 90);
    image::ImageEncoder::set_exif_metadata(&mut enc, EXIF_ROTATE_90.to_vec())?;
    enc.encode_image(&PhotoView(w, h))?;
    f.flush()?;
    drop(f);
    std::fs::rename(tmp, path)?;
    Ok(())
}

/// A4: the issue's three PNGs of zeros (tiny compressed, 256–512 MB decoded) and a 64 Mpx
/// photo, each inspected in a fresh process: peak RSS above the process at rest.
fn any_pixel_count(env: &Env) -> anyhow::Result<()> {
    use png::{BitDepth, ColorType};
    type Write = Box<dyn Fn(&Path) -> anyhow::Result<()>>;
    let cases: [(&str, &str, (u32, u32), Write); 5] = [
        (
            "zeros-rgba16-8000.png",
            "8000×8000 RGBA 16-bit, zeros",
            (8000, 8000),
            Box::new(|p| write_png(p, (8000, 8000), ColorType::Rgba, BitDepth::Sixteen, false, Rows::Zeros)),
        ),
        (
            "zeros-rgba16-8000-exif6.png",
            "the same, EXIF orientation 6",
            (8000, 8000),
            Box::new(|p| write_png(p, (8000, 8000), ColorType::Rgba, BitDepth::Sixteen, true, Rows::Zeros)),
        ),
        (
            "zeros-rgba8-7900-exif6.png",
            "7900×7900 RGBA 8-bit, zeros, orientation 6",
            (7900, 7900),
            Box::new(|p| write_png(p, (7900, 7900), ColorType::Rgba, BitDepth::Eight, true, Rows::Zeros)),
        ),
        (
            "photo-64mp.png",
            "64 Mpx photo, RGB 8-bit, orientation 6",
            PHOTO_64MP,
            Box::new(|p| write_png(p, PHOTO_64MP, ColorType::Rgb, BitDepth::Eight, true, Rows::Photo)),
        ),
        (
            "photo-64mp.jpg",
            "64 Mpx photo, baseline JPEG q90, orientation 6",
            PHOTO_64MP,
            Box::new(|p| write_jpeg(p, PHOTO_64MP)),
        ),
    ];
    let me = std::env::current_exe()?;
    let mut table = Table::new(
        "A4. Peak RSS of one image, any pixel count (a process inspecting one file)",
        &["file", "what", "compressed size", "pixels", "time", "peak RSS above rest", "goal 64 MiB", "outcome"],
    );
    let (mut verdicts, mut rests) = (Vec::new(), Vec::new());
    for (name, what, (w, h), generate) in &cases {
        let path = env.work.join(name);
        generate(&path).with_context(|| format!("generating {}", path.display()))?;
        warm(&path)?;
        let ct = if name.ends_with(".jpg") { "image/jpeg" } else { "image/png" };
        let p = probe(&me, &path, ct)?;
        let above = p.hwm.saturating_sub(p.rest);
        let met = above <= PEAK_GOAL_KIB && p.outcome.starts_with("processed");
        rests.push(p.rest);
        table.row(vec![
            (*name).to_owned(),
            (*what).to_owned(),
            mib(std::fs::metadata(&path)?.len() >> 10),
            format!("{:.1} Mpx ({w}×{h})", f64::from(*w) * f64::from(*h) / 1e6),
            ms(p.elapsed),
            mib(above),
            if met { "met" } else { "missed" }.into(),
            p.outcome.clone(),
        ]);
        verdicts.push((
            format!("A4 peak RSS ≤ 64 MiB above rest, {name}"),
            met,
            format!("+{}, {}", mib(above), p.outcome),
        ));
    }
    table.print();
    let (lo, hi) = (rests.iter().min().copied().unwrap_or(0), rests.iter().max().copied().unwrap_or(0));
    println!(
        "At rest (runtime started, nothing read) each child held {}–{}; its peak (VmHWM) less that is the figure. \
         Budget: `DEFAULT_BUDGET` ({} MiB). Outcome dimensions are as shown, after EXIF orientation.\n",
        mib(lo),
        mib(hi),
        DEFAULT_BUDGET >> 20
    );
    for (what, met, detail) in verdicts {
        goal(&what, met, detail);
    }
    Ok(())
}
