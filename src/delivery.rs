//! In-process event delivery, standing in for S3 → SQS → Lambda: bounded concurrency,
//! retries with backoff, as many deliveries as the queue's `maxReceiveCount` (the last one
//! ends the file `failed` on a transient error, as on AWS). Nothing is lost if the process
//! stops: undelivered files stay `pending` with their object present, and the sweeper
//! delivers them again.

use std::sync::Arc;
use std::time::Duration;

use picasso::events::ObjectRef;
use picasso::processor::{Delivery, Processor};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

pub fn spawn(mut rx: mpsc::Receiver<ObjectRef>, processor: Arc<Processor>, concurrency: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        while let Some(object) = rx.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let processor = processor.clone();
            tokio::spawn(async move {
                deliver(&processor, &object).await;
                drop(permit);
            });
        }
    })
}

async fn deliver(processor: &Processor, object: &ObjectRef) {
    let mut backoff = Duration::from_millis(50);
    let attempts = processor.max_receive_count().max(1);
    for receive_count in 1..=attempts {
        let delivery = Delivery { receive_count, deadline: None };
        match processor.handle_object(object, delivery).await {
            Ok(_) => return,
            Err(e) if receive_count < attempts => {
                let attempt = receive_count;
                tracing::warn!(key = object.key, attempt, error = format!("{e:#}"), "delivery failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => tracing::error!(
                key = object.key,
                error = format!("{e:#}"),
                "delivery failed; the sweeper will try again"
            ),
        }
    }
}
