//! The sweeper: nothing stays stuck when an event is lost, a processor dies mid-file, or a
//! message waits past the pending TTL. It finds `processing` records whose lease ended and
//! old `pending` records whose bytes did arrive, keeps the latter from expiring, and sends
//! both through processing again. On AWS a schedule runs it; the local stack runs it at
//! start-up and then periodically.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::domain::{FileId, Status};
use crate::events::ObjectRef;
use crate::store::ObjectStore;

/// Where redelivered objects go: the queue on AWS, the in-process channel locally.
#[async_trait]
pub trait Redeliver: Send + Sync + 'static {
    async fn redeliver(&self, objects: &[ObjectRef]) -> anyhow::Result<()>;
}

pub struct Sweeper {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    redeliver: Arc<dyn Redeliver>,
    bucket: String,
    /// A pending record younger than this may still be receiving its bytes, or its event
    /// may be on its way ([`Config::pending_grace`]).
    pending_grace: Duration,
    /// Records looked at per kind and run.
    batch: usize,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// `processing` under a lease that ended: sent again.
    pub expired_leases: usize,
    /// `pending` with its bytes present: kept from expiring and sent again.
    pub arrived: usize,
    /// `pending` without bytes: left for the TTL.
    pub waiting: usize,
}

impl Sweeper {
    pub fn from_config(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        redeliver: Arc<dyn Redeliver>,
        config: &Config,
    ) -> Self {
        Self {
            catalog,
            store,
            redeliver,
            bucket: config.bucket_name.clone(),
            pending_grace: config.pending_grace(),
            batch: config.sweep_batch,
        }
    }

    /// The same sweeper, looking at pending records once they are `grace` old (tests).
    pub fn with_grace(self, pending_grace: Duration) -> Self {
        Self { pending_grace, ..self }
    }

    /// One run, leaving alone the pending records younger than the grace period.
    pub async fn sweep(&self, now: DateTime<Utc>) -> anyhow::Result<Swept> {
        self.sweep_older_than(now, self.pending_grace).await
    }

    /// One run that looks at pending records older than `grace` (zero at a start-up, when
    /// nothing can be in flight).
    pub async fn sweep_older_than(&self, now: DateTime<Utc>, grace: Duration) -> anyhow::Result<Swept> {
        let bound = first_id_at(now - grace);
        let mut swept = Swept::default();
        let mut again = Vec::new();
        for record in self.catalog.stale(now, bound, self.batch).await? {
            match record.status {
                Status::Processing => swept.expired_leases += 1,
                Status::Pending => match self.store.head(record.key()).await? {
                    Some(_) => {
                        self.catalog.keep(record.id).await?;
                        swept.arrived += 1;
                    }
                    None => {
                        swept.waiting += 1;
                        continue;
                    }
                },
                _ => continue,
            }
            tracing::info!(file_id = %record.id, status = %record.status, "sweeper sends the file through processing again");
            again.push(ObjectRef { bucket: self.bucket.clone(), key: record.key().to_string() });
        }
        if !again.is_empty() {
            self.redeliver.redeliver(&again).await?;
        }
        tracing::info!(?swept, "sweep done");
        Ok(swept)
    }
}

/// The smallest UUIDv7 of a millisecond: every id created before `t` sorts below it.
fn first_id_at(t: DateTime<Utc>) -> FileId {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    let uuid = uuid::Builder::from_unix_timestamp_millis(ms, &[0; 10]).into_uuid();
    FileId::parse(&uuid.hyphenated().to_string()).expect("a v7 UUID built from a timestamp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_sorts_between_earlier_and_later_ids() {
        let before = FileId::new();
        std::thread::sleep(Duration::from_millis(3));
        let bound = first_id_at(crate::domain::now());
        std::thread::sleep(Duration::from_millis(3));
        let after = FileId::new();
        assert!(before < bound && bound < after);
    }
}
