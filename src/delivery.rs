//! In-process event delivery, standing in for S3 → SQS → Lambda: bounded concurrency,
//! retries with backoff. Nothing is lost if the process stops: undelivered files stay
//! `pending` with their object present, and start-up recovery delivers them again.

use std::sync::Arc;
use std::time::Duration;

use picasso::processor::Processor;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::storage::Created;

const ATTEMPTS: u32 = 8;

pub fn spawn(mut rx: mpsc::Receiver<Created>, processor: Arc<Processor>, concurrency: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        while let Some(created) = rx.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let processor = processor.clone();
            tokio::spawn(async move {
                deliver(&processor, &created).await;
                drop(permit);
            });
        }
    })
}

async fn deliver(processor: &Processor, created: &Created) {
    let event = created.to_event();
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match processor.handle_event(event.clone()).await {
            Ok(_) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(key = created.key, attempt, error = format!("{e:#}"), "delivery failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => tracing::error!(
                key = created.key,
                error = format!("{e:#}"),
                "delivery failed; the file stays pending until the next start"
            ),
        }
    }
}
