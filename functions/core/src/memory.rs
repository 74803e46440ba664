//! In-memory adapters, for tests and examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Claim, Lease, Outcome, Scope, Transition};
use crate::domain::{FileId, FileRecord, ObjectKey, Status};
use crate::store::{ObjectReader, ObjectStore, PresignedPut, StoredObject};

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

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        Ok(self.0.lock().unwrap().get(&id).map(|r| r.record.clone()))
    }

    async fn newest(
        &self,
        scope: &Scope,
        status: Option<Status>,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        let rows = self.0.lock().unwrap();
        let older = match after {
            Some(a) => rows.range(..a),
            None => rows.range(..),
        };
        let mine = |r: &&FileRecord| match scope {
            Scope::All => true,
            Scope::Owner(o) => r.owner.as_ref() == Some(o),
        };
        let matching =
            older.rev().map(|(_, row)| &row.record).filter(mine).filter(|r| status.is_none_or(|s| r.status == s));
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
                row.lease = None;
                row.expires_at = Some(expires_at);
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
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

/// Objects by key; presigned URLs point nowhere real.
#[derive(Default)]
pub struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);

impl MemoryStore {
    pub fn put_bytes(&self, key: &str, bytes: Vec<u8>) {
        self.0.lock().unwrap().insert(key.to_owned(), bytes);
    }

    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(key).cloned()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        Ok(PresignedPut {
            url: format!("memory://bucket/{key}?size={size}&ttl={}", ttl.as_secs()),
            headers: vec![("content-type".into(), content_type.into()), ("if-none-match".into(), "*".into())],
        })
    }

    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String> {
        Ok(format!("memory://bucket/{key}?ttl={}&as={}", ttl.as_secs(), download_as.unwrap_or_default()))
    }

    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        Ok(self.0.lock().unwrap().get(&key.to_string()).map(|b| StoredObject { size: b.len() as u64 }))
    }

    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>> {
        Ok(self.get_bytes(&key.to_string()).map(|b| Box::pin(std::io::Cursor::new(b)) as ObjectReader))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> anyhow::Result<()> {
        self.put_bytes(key, bytes);
        Ok(())
    }

    async fn delete(&self, key: ObjectKey) -> anyhow::Result<()> {
        self.0.lock().unwrap().remove(&key.to_string());
        Ok(())
    }
}
