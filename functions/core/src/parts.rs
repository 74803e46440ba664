//! How a file is cut into parts for a multipart upload, and what a client may ask of them:
//! which parts to sign, and whether the parts storage holds are the ones it names.

use crate::domain::{FileRecord, MultipartUpload};
use crate::refusal::DomainError;
use crate::store::StoredPart;

/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Most part URLs signed by one call.
pub const MAX_SIGN_PER_CALL: usize = 100;

/// How a file of `size` bytes is cut: parts of `part_size`, the last one shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub size: u64,
    pub part_size: u64,
}

impl PartPlan {
    /// The configured part size, or more (whole MiB) for a file it would cut in over 10,000 parts.
    pub fn new(size: u64, configured: u64) -> Self {
        const MIB: u64 = 1 << 20;
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        Self { size, part_size: configured.max(needed) }
    }

    pub fn count(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    /// The exact length of part `n` (1-based).
    pub fn len(&self, n: u32) -> u64 {
        if n < self.count() { self.part_size } else { self.size - u64::from(self.count() - 1) * self.part_size }
    }

    pub fn of(record: &FileRecord, upload: &MultipartUpload) -> Self {
        Self { size: record.size.bytes(), part_size: upload.part_size }
    }

    /// A part number of this file, or `None`.
    fn part(&self, n: u64) -> Option<u32> {
        u32::try_from(n).ok().filter(|n| (1..=self.count()).contains(n))
    }

    /// Parts to sign: distinct parts of this file (the caller has checked there are 1 to
    /// [`MAX_SIGN_PER_CALL`] of them).
    pub fn to_sign(&self, numbers: &[u64]) -> Result<Vec<u32>, DomainError> {
        let invalid = |why: String| DomainError::invalid("invalid_part_numbers", why);
        let count = self.count();
        let mut out = Vec::with_capacity(numbers.len());
        for &n in numbers {
            let n = self.part(n).ok_or_else(|| {
                invalid(format!("part numbers are whole numbers from 1 to {count} for this file; got {n}"))
            })?;
            if out.contains(&n) {
                return Err(invalid(format!("part {n} is listed twice")));
            }
            out.push(n);
        }
        Ok(out)
    }

    /// Parts named to complete the upload: every part of this file once, in any order;
    /// returned in order.
    pub fn to_complete(&self, named: Vec<(u64, String)>) -> Result<Vec<(u32, String)>, DomainError> {
        let invalid = |why: String| DomainError::invalid("invalid_parts", why);
        let count = self.count();
        let mut parts: Vec<(u32, String)> = Vec::with_capacity(named.len());
        for (n, etag) in named {
            let Some(n) = self.part(n) else {
                return Err(invalid(format!("part {n} is not a part of this file, which has parts 1 to {count}")));
            };
            if parts.iter().any(|(m, _)| *m == n) {
                return Err(invalid(format!("part {n} is listed twice")));
            }
            parts.push((n, etag));
        }
        parts.sort_by_key(|(n, _)| *n);
        let missing: Vec<String> = (1..=count)
            .filter(|n| parts.binary_search_by_key(n, |(m, _)| *m).is_err())
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "a complete names every part from 1 to {count}; missing: {}",
                abbreviate(&missing)
            )));
        }
        Ok(parts)
    }
}

fn abbreviate(items: &[String]) -> String {
    match items.len() {
        0..=10 => items.join(", "),
        n => format!("{}… ({n} in all)", items[..10].join(", ")),
    }
}

/// ETags compare without their quotes: some clients drop them.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// Whether storage holds exactly the parts the client names, each of its planned length.
/// Returns the parts to assemble, with storage's own ETags.
pub fn check_parts(
    plan: &PartPlan,
    named: &[(u32, String)],
    stored: &[StoredPart],
) -> Result<Vec<StoredPart>, DomainError> {
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(named.len());
    for (n, etag) in named {
        let Some(s) = stored.iter().find(|s| s.number == *n) else {
            missing.push(n.to_string());
            continue;
        };
        if !same_etag(&s.etag, etag) {
            return Err(DomainError::invalid(
                "etag_mismatch",
                format!(
                    "part {n}: storage holds ETag {}, not {etag} (upload it again, or send the ETag its PUT answered)",
                    s.etag
                ),
            ));
        }
        if s.size != plan.len(*n) {
            return Err(DomainError::invalid(
                "part_size_mismatch",
                format!(
                    "part {n} has {} bytes; it must have {} (parts add up to the declared size)",
                    s.size,
                    plan.len(*n)
                ),
            ));
        }
        out.push(s.clone());
    }
    if !missing.is_empty() {
        return Err(DomainError::conflict(
            "parts_missing",
            format!("storage does not hold parts {} yet: upload them, then complete", abbreviate(&missing)),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Refusal;

    const MIB: u64 = 1 << 20;

    #[test]
    fn plans_cut_exact_parts_and_stay_within_ten_thousand() {
        let p = PartPlan::new(200 * MIB, 64 * MIB);
        assert_eq!((p.count(), p.len(1), p.len(3), p.len(4)), (4, 64 * MIB, 64 * MIB, 8 * MIB));
        let p = PartPlan::new(48 * MIB, 16 * MIB);
        assert_eq!((p.count(), p.len(3)), (3, 16 * MIB), "an exact multiple ends with a whole part");
        let p = PartPlan::new(5 << 40, 16 * MIB);
        assert!(p.count() as u64 <= MAX_PARTS && p.part_size.is_multiple_of(MIB), "{p:?}");
        let total: u64 = (1..=p.count()).map(|n| p.len(n)).sum();
        assert_eq!(total, 5 << 40);
    }

    #[test]
    fn stored_parts_must_match_names_etags_and_lengths() {
        let plan = PartPlan::new(12 * MIB, 5 * MIB);
        let stored = |sizes: &[u64]| -> Vec<StoredPart> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| StoredPart { number: i as u32 + 1, etag: format!("\"e{i}\""), size })
                .collect()
        };
        let named: Vec<(u32, String)> = (0..3).map(|i| (i + 1, format!("e{i}"))).collect();
        let ok = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB, 2 * MIB])).unwrap();
        assert_eq!(ok.len(), 3);
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB])).unwrap_err();
        assert_eq!((e.kind, e.code), (Refusal::Conflict, "parts_missing"));
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB + 1, 2 * MIB])).unwrap_err();
        assert_eq!((e.kind, e.code), (Refusal::Invalid, "part_size_mismatch"));
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB, 2 * MIB - 1])).unwrap_err();
        assert_eq!(e.code, "part_size_mismatch", "parts add up to the declared size");
        let mut wrong = named.clone();
        wrong[1].1 = "other".into();
        let e = check_parts(&plan, &wrong, &stored(&[5 * MIB, 5 * MIB, 2 * MIB])).unwrap_err();
        assert_eq!((e.kind, e.code), (Refusal::Invalid, "etag_mismatch"));
    }
}
