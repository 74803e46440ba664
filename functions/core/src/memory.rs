//! In-memory adapters, for tests and examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Outcome, Transition};
use crate::domain::{FileId, FileRecord, ObjectKey, Status};
use crate::store::{ObjectStore, PresignedPut, StoredObject};

#[derive(Default)]
pub struct MemoryCatalog(Mutex<BTreeMap<FileId, FileRecord>>);

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn insert(&self, record: &FileRecord, _expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut rows = self.0.lock().unwrap();
        anyhow::ensure!(!rows.contains_key(&record.id), "duplicate id {}", record.id);
        rows.insert(record.id, record.clone());
        Ok(())
    }

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        Ok(self.0.lock().unwrap().get(&id).cloned())
    }

    async fn newest(
        &self,
        status: Option<Status>,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        let rows = self.0.lock().unwrap();
        let older = match after {
            Some(a) => rows.range(..a),
            None => rows.range(..),
        };
        Ok(older
            .rev()
            .map(|(_, r)| r)
            .filter(|r| status.is_none_or(|s| r.status == s))
            .take(n)
            .cloned()
            .collect())
    }

    async fn finish(
        &self,
        id: FileId,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Transition> {
        let mut rows = self.0.lock().unwrap();
        match rows.get_mut(&id) {
            Some(r) if !r.status.is_final() => {
                r.status = outcome.status();
                r.processed_at = Some(at);
                r.error = match outcome {
                    Outcome::Processed => None,
                    Outcome::Failed(f) => Some(f.clone()),
                };
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
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        self.0.lock().unwrap().insert(key.to_owned(), bytes);
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> anyhow::Result<PresignedPut> {
        Ok(PresignedPut {
            url: format!("memory://bucket/{key}?size={size}&ttl={}", ttl.as_secs()),
            headers: vec![("content-type".into(), content_type.into())],
        })
    }

    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&key.to_string())
            .map(|b| StoredObject {
                size: b.len() as u64,
            }))
    }
}
