//! In-memory adapters, for tests and examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Claim, Lease, Outcome, Transition};
use crate::domain::{FileId, FileRecord, ObjectKey, Status};
use crate::store::{ObjectReader, ObjectStore, PresignedPut, StoredObject};

#[derive(Default)]
pub struct MemoryCatalog(Mutex<BTreeMap<FileId, (FileRecord, Option<Lease>)>>);

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn insert(&self, record: &FileRecord, _expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut rows = self.0.lock().unwrap();
        anyhow::ensure!(!rows.contains_key(&record.id), "duplicate id {}", record.id);
        rows.insert(record.id, (record.clone(), None));
        Ok(())
    }

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        Ok(self.0.lock().unwrap().get(&id).map(|(r, _)| r.clone()))
    }

    async fn newest(&self, status: Option<Status>, after: Option<FileId>, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let rows = self.0.lock().unwrap();
        let older = match after {
            Some(a) => rows.range(..a),
            None => rows.range(..),
        };
        Ok(older.rev().map(|(_, (r, _))| r).filter(|r| status.is_none_or(|s| r.status == s)).take(n).cloned().collect())
    }

    async fn claim(&self, id: FileId, lease: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim> {
        let mut rows = self.0.lock().unwrap();
        let Some((r, held)) = rows.get_mut(&id) else { return Ok(Claim::Missing) };
        Ok(match r.status {
            Status::Processed | Status::Failed => Claim::Final,
            Status::Processing if held.is_some_and(|l| l.until >= now) => Claim::Busy,
            _ => {
                r.status = Status::Processing;
                *held = Some(*lease);
                Claim::Claimed(r.clone())
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
            Some((r, held)) if r.status == Status::Processing && held.is_some_and(|l| l.token == lease.token) => {
                outcome.apply(r, at);
                *held = None;
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
    }

    async fn release(&self, id: FileId, lease: &Lease) -> anyhow::Result<Transition> {
        let mut rows = self.0.lock().unwrap();
        match rows.get_mut(&id) {
            Some((r, held)) if r.status == Status::Processing && held.is_some_and(|l| l.token == lease.token) => {
                r.status = Status::Pending;
                *held = None;
                Ok(Transition::Applied)
            }
            _ => Ok(Transition::Skipped),
        }
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
            headers: vec![("content-type".into(), content_type.into())],
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
}
