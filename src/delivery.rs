//! In-process event delivery, standing in for S3 → SQS → Lambda: bounded concurrency,
//! retries with backoff, as many deliveries as the queue's `maxReceiveCount` (the last one
//! ends the file `failed` on a transient error, as on AWS). Nothing is lost if the process
//! stops: undelivered files stay `pending` with their object present, and the sweeper
//! delivers them again.

use std::sync::Arc;
use std::time::Duration;

use picasso::processor::{Delivery, Notification, Processor};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::storage::Created;

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
    // The notification S3 would send, decoded as the Lambda decodes it.
    let objects = match Notification::parse(&created.to_event().to_string()) {
        Ok(Notification::Objects(objects)) => objects,
        _ => return,
    };
    let mut backoff = Duration::from_millis(50);
    let attempts = processor.max_receive_count.max(1);
    for receive_count in 1..=attempts {
        let delivery = Delivery { receive_count, deadline: None };
        let mut result = Ok(());
        for obj in &objects {
            result = result.and(processor.handle_object(obj, delivery).await.map(drop));
        }
        match result {
            Ok(()) => return,
            Err(e) if receive_count < attempts => {
                let attempt = receive_count;
                tracing::warn!(key = created.key, attempt, error = format!("{e:#}"), "delivery failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => tracing::error!(
                key = created.key,
                error = format!("{e:#}"),
                "delivery failed; the sweeper will try again"
            ),
        }
    }
}
