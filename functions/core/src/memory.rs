//! In-memory adapters, for tests and examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::{Admission, Catalog, Claim, Lease, Limits, Order, Outcome, Scope, Transition, Usage};
use crate::domain::{FileId, FileRecord, ObjectKey, Owner, Status};
use crate::integrity::Sha256Digest;
use crate::store::{Completion, ObjectReader, ObjectStore, PresignedPut, Presigner, StoredObject, StoredPart};

#[derive(Default)]
pub struct MemoryCatalog(Mutex<BTreeMap<FileId, Row>>);

/// A record with what the store keeps beside it.
struct Row {
    record: FileRecord,
    lease: Option<Lease>,
    expires_at: Option<DateTime<Utc>>,
}

impl MemoryCatalog {
    /// When the record expires, as DynamoDB's TTL would read it.
    pub fn expires_at(&self, id: FileId) -> Option<DateTime<Utc>> {
        self.0.lock().unwrap().get(&id).and_then(|r| r.expires_at)
    }

    /// Drops a record, as DynamoDB's TTL does once `expires_at` has passed.
    pub fn remove(&self, id: FileId) -> bool {
        self.0.lock().unwrap().remove(&id).is_some()
    }
}

/// The owner's files by the rules of [`Limits`]: an expired slot counts for nothing.
fn usage_of(rows: &BTreeMap<FileId, Row>, owner: &Owner, now: DateTime<Utc>) -> Usage {
    let mut usage = Usage::default();
    for row in rows.values().filter(|r| r.record.owner.as_ref() == Some(owner)) {
        if row.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        usage.pending += u64::from(!row.record.status.is_final());
        usage.bytes += row.record.size.bytes();
    }
    usage
}

/// Whether `row` is held by `lease` (`processing` under it).
fn held_by(row: &Row, lease: &Lease) -> bool {
    row.record.status == Status::Processing && row.lease.is_some_and(|l| l.token == lease.token)
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn insert(&self, record: &FileRecord, expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut rows = self.0.lock().unwrap();
        anyhow::ensure!(!rows.contains_key(&record.id), "duplicate id {}", record.id);
        let expires_at = (!record.status.is_final()).then_some(expires_at);
        rows.insert(record.id, Row { record: record.clone(), lease: None, expires_at });
        Ok(())
    }

    async fn admit(
        &self,
        record: &FileRecord,
        expires_at: DateTime<Utc>,
        limits: &Limits,
    ) -> anyhow::Result<Admission> {
        // One lock over the count and the insert: atomic, as the other adapters are.
        let mut rows = self.0.lock().unwrap();
        if let Some(owner) = &record.owner {
            let usage = usage_of(&rows, owner, record.uploaded_at);
            if let Some(over) = limits.broken_by(usage, record.size.bytes()) {
                return Ok(Admission::Refused(over, usage));
            }
        }
        anyhow::ensure!(!rows.contains_key(&record.id), "duplicate id {}", record.id);
        rows.insert(record.id, Row { record: record.clone(), lease: None, expires_at: Some(expires_at) });
        Ok(Admission::Admitted)
    }

    async fn usage(&self, owner: &Owner, now: DateTime<Utc>) -> anyhow::Result<Usage> {
        Ok(usage_of(&self.0.lock().unwrap(), owner, now))
    }

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        Ok(self.0.lock().unwrap().get(&id).map(|r| r.record.clone()))
    }

    async fn find(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let rows = self.0.lock().unwrap();
        let beyond: Box<dyn Iterator<Item = _>> = match (order, after) {
            (Order::Newest, Some(a)) => Box::new(rows.range(..a).rev()),
            (Order::Newest, None) => Box::new(rows.iter().rev()),
            (Order::Oldest, Some(a)) => Box::new(rows.range((Excluded(a), Unbounded))),
            (Order::Oldest, None) => Box::new(rows.iter()),
        };
        let mine = |r: &&FileRecord| scope.holds(r);
        let matching = beyond.map(|(_, row)| &row.record).filter(mine).filter(|r| status.is_none_or(|s| r.status == s));
        Ok(matching.take(n).cloned().collect())
    }

    async fn claim(&self, id: FileId, lease: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim> {
        let mut rows = self.0.lock().unwrap();
        let Some(row) = rows.get_mut(&id) else { return Ok(Claim::Missing) };
        Ok(match row.record.status {
            Status::Processed | Status::Failed => Claim::Final,
            Status::Processing if row.lease.is_some_and(|l| l.until >= now) => Claim::Busy,
            _ => {
                row.record.status = Status::Processing;
                row.record.attempts += 1;
                row.record.version += 1;
                row.lease = Some(*lease);
                row.expires_at = None;
                Claim::Claimed(row.record.clone())
            }
        })
    }

    async fn finish(
        &self,
        id: FileId,
        lease: &Lease,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Transition> {
        let mut rows = self.0.lock().unwrap();
        match rows.get_mut(&id) {
            Some(row) if held_by(row, lease) => {
                outcome.apply(&mut row.record, at);
                row.lease = None;
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
    }

    async fn release(&self, id: FileId, lease: &Lease, expires_at: DateTime<Utc>) -> anyhow::Result<Transition> {
        let mut rows = self.0.lock().unwrap();
        match rows.get_mut(&id) {
            Some(row) if held_by(row, lease) => {
                row.record.status = Status::Pending;
                row.record.version += 1;
                row.lease = None;
                row.expires_at = Some(expires_at);
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
    }

    async fn delete(&self, id: FileId) -> anyhow::Result<bool> {
        Ok(self.remove(id))
    }

    async fn keep(&self, id: FileId) -> anyhow::Result<Transition> {
        let mut rows = self.0.lock().unwrap();
        match rows.get_mut(&id) {
            Some(row) if row.record.status == Status::Pending => {
                row.expires_at = None;
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
    }

    async fn stale(&self, now: DateTime<Utc>, pending_before: FileId, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let rows = self.0.lock().unwrap();
        let expired =
            rows.values().filter(|r| r.record.status == Status::Processing && r.lease.is_none_or(|l| l.until < now));
        let old = rows.range(..pending_before).map(|(_, r)| r).filter(|r| r.record.status == Status::Pending);
        Ok(expired.take(n).chain(old.take(n)).map(|r| r.record.clone()).collect())
    }
}

/// Objects by key, and multipart uploads in progress; presigned URLs point nowhere real
/// (tests write with [`MemoryStore::put_bytes`] and [`MemoryStore::put_part`]).
#[derive(Default)]
pub struct MemoryStore(Mutex<Buckets>);

#[derive(Default)]
struct Buckets {
    objects: HashMap<String, Vec<u8>>,
    /// Replaces reads of existing objects: a stalled or broken connection, for fault tests.
    reads: Option<fn(Vec<u8>) -> ObjectReader>,
    /// Upload id → (key, parts by number).
    uploads: HashMap<String, (String, BTreeMap<u32, Vec<u8>>)>,
}

/// A strong ETag from the bytes, as S3 quotes it.
fn etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!("\"{}\"", crate::integrity::hex(&d[..16]))
}

impl MemoryStore {
    pub fn put_bytes(&self, key: &str, bytes: Vec<u8>) {
        self.0.lock().unwrap().objects.insert(key.to_owned(), bytes);
    }

    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().objects.get(key).cloned()
    }

    /// Stores one part, as a PUT to its URL would; returns its ETag, or `None` if the upload is gone.
    pub fn put_part(&self, upload_id: &str, number: u32, bytes: Vec<u8>) -> Option<String> {
        let mut b = self.0.lock().unwrap();
        let (_, parts) = b.uploads.get_mut(upload_id)?;
        let tag = etag(&bytes);
        parts.insert(number, bytes);
        Some(tag)
    }

    /// From now on every read of an object goes through `reads`, given the object's bytes
    /// (`None`: reads work again).
    pub fn fail_reads(&self, reads: Option<fn(Vec<u8>) -> ObjectReader>) {
        self.0.lock().unwrap().reads = reads;
    }

    /// Multipart uploads in progress.
    pub fn uploads_in_progress(&self) -> usize {
        self.0.lock().unwrap().uploads.len()
    }
}

#[async_trait]
impl Presigner for MemoryStore {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        sha256: Option<&Sha256Digest>,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        let mut headers = vec![("content-type".into(), content_type.into()), ("if-none-match".into(), "*".into())];
        if let Some(d) = sha256 {
            headers.push(("x-amz-checksum-sha256".into(), d.to_base64()));
        }
        Ok(PresignedPut { url: format!("memory://bucket/{key}?size={size}&ttl={}", ttl.as_secs()), headers })
    }

    async fn create_multipart(&self, key: ObjectKey, _content_type: &str) -> anyhow::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.0.lock().unwrap().uploads.insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    async fn presign_part(
        &self,
        key: ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        Ok(PresignedPut {
            url: format!(
                "memory://bucket/{key}?uploadId={upload_id}&partNumber={number}&size={size}&ttl={}",
                ttl.as_secs()
            ),
            headers: vec![],
        })
    }

    async fn list_parts(&self, _key: ObjectKey, upload_id: &str) -> anyhow::Result<Option<Vec<StoredPart>>> {
        let b = self.0.lock().unwrap();
        Ok(b.uploads.get(upload_id).map(|(_, parts)| {
            parts.iter().map(|(&number, p)| StoredPart { number, etag: etag(p), size: p.len() as u64 }).collect()
        }))
    }

    async fn complete_multipart(
        &self,
        key: ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Completion> {
        let mut b = self.0.lock().unwrap();
        let key = key.to_string();
        if b.uploads.get(upload_id).is_none_or(|(k, _)| *k != key) {
            return Ok(Completion::NoSuchUpload);
        }
        if b.objects.contains_key(&key) {
            return Ok(Completion::AlreadyExists);
        }
        let (_, stored) = b.uploads.remove(upload_id).unwrap_or_default();
        let mut object = Vec::new();
        for p in parts {
            let bytes = stored.get(&p.number).filter(|bytes| etag(bytes) == p.etag);
            object.extend_from_slice(bytes.with_context(|| format!("part {} is not stored", p.number))?);
        }
        b.objects.insert(key, object);
        Ok(Completion::Completed)
    }

    async fn abort_multipart(&self, _key: ObjectKey, upload_id: &str) -> anyhow::Result<()> {
        self.0.lock().unwrap().uploads.remove(upload_id);
        Ok(())
    }

    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String> {
        Ok(format!("memory://bucket/{key}?ttl={}&as={}", ttl.as_secs(), download_as.unwrap_or_default()))
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        Ok(self.0.lock().unwrap().objects.get(&key.to_string()).map(|b| StoredObject { size: b.len() as u64 }))
    }

    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>> {
        let reads = self.0.lock().unwrap().reads;
        Ok(self.get_bytes(&key.to_string()).map(|b| match reads {
            Some(read) => read(b),
            None => Box::pin(std::io::Cursor::new(b)) as ObjectReader,
        }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> anyhow::Result<()> {
        self.put_bytes(key, bytes);
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.0.lock().unwrap().objects.remove(key);
        Ok(())
    }
}
