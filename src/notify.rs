//! Publishing the outbox: a dispatcher hands each committed event to the live channel
//! (`GET /events`) and owes the webhook a delivery of the published types, in one transaction;
//! a worker delivers what is owed, signed, on the backoff schedule, until a 2xx. Both start from
//! the database, so a restart (or a SIGKILL) resumes where the last run stopped.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use picasso::change::EventTypes;
use picasso::notify::webhook::{Attempt, Backoff, Sender};
use tokio::sync::{Notify, watch};

use crate::outbox::Outbox;

/// Where webhooks go and which events they carry.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub sender: Sender,
    pub backoff: Backoff,
    pub types: EventTypes,
}

/// Events read from the outbox per round.
const BATCH: usize = 500;
/// Deliveries attempted at once.
const PARALLEL: usize = 16;

/// Starts the dispatcher (and the webhook worker, with a webhook); the receiver tells the live
/// channel the newest dispatched event's place in the log.
pub fn spawn(outbox: Arc<Outbox>, webhook: Option<Webhook>) -> anyhow::Result<watch::Receiver<i64>> {
    let (dispatched_tx, dispatched_rx) = watch::channel(outbox.last_dispatched()?);
    let owed = Arc::new(Notify::new());
    if let Some(webhook) = webhook.clone() {
        tokio::spawn(deliver(outbox.clone(), webhook, owed.clone()));
    }
    tokio::spawn(async move {
        let types = webhook.map(|w| w.types);
        let mut pruned = tokio::time::Instant::now();
        loop {
            if let Err(e) = dispatch_all(&outbox, types.as_ref(), &dispatched_tx, &owed) {
                tracing::warn!(error = format!("{e:#}"), "dispatching events; trying again");
            }
            if pruned.elapsed() > Duration::from_secs(3600) {
                pruned = tokio::time::Instant::now();
                let _ = outbox.prune_events(picasso::domain::now());
            }
            // A commit wakes it at once (a permit waits if it is busy); the timeout is a net.
            let _ = tokio::time::timeout(Duration::from_secs(1), outbox.changed.notified()).await;
        }
    });
    Ok(dispatched_rx)
}

fn dispatch_all(
    outbox: &Outbox,
    types: Option<&EventTypes>,
    dispatched: &watch::Sender<i64>,
    owed: &Notify,
) -> anyhow::Result<()> {
    loop {
        let batch = outbox.undispatched(BATCH)?;
        let Some(last) = batch.last().map(|e| e.seq) else { return Ok(()) };
        if outbox.dispatched(&batch, types, picasso::domain::now())? > 0 {
            owed.notify_one();
        }
        dispatched.send_replace(last);
    }
}

async fn deliver(outbox: Arc<Outbox>, webhook: Webhook, owed: Arc<Notify>) {
    loop {
        let now = picasso::domain::now();
        match outbox.due(now, PARALLEL) {
            Ok(due) if !due.is_empty() => {
                let attempts = due.iter().map(|d| webhook.sender.send(&d.event.id, &d.event.body));
                for (d, attempt) in due.iter().zip(join_all(attempts).await) {
                    let recorded = match attempt {
                        Attempt::Delivered => outbox.delivered(d.event.seq),
                        Attempt::Failed(why) => {
                            let now = picasso::domain::now();
                            let since_first = (now - d.first_at.unwrap_or(now)).to_std().unwrap_or_default();
                            let next = webhook.backoff.next(d.attempts + 1, since_first);
                            tracing::warn!(
                                event = d.event.id,
                                attempt = d.attempts + 1,
                                error = why,
                                given_up = next.is_none(),
                                "webhook delivery failed"
                            );
                            outbox.attempt_failed(d, now, next.map(|n| now + n))
                        }
                    };
                    if let Err(e) = recorded {
                        tracing::warn!(error = format!("{e:#}"), "recording a webhook attempt");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reading owed webhook deliveries"),
        }
        let wait = match outbox.next_due() {
            Ok(Some(at)) => (at - picasso::domain::now()).to_std().unwrap_or_default().min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        let _ = tokio::time::timeout(wait, owed.notified()).await;
    }
}
