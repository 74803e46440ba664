//! The local stack's change log: an `outbox` row per event, written by the catalog in the
//! transaction of the change itself (as DynamoDB Streams does on AWS), and the webhook
//! deliveries still owed. A SIGKILL at any point loses nothing: an event is either committed
//! with its change or neither is; a delivery is owed until its receiver says 2xx.

use chrono::{DateTime, Utc};
use picasso::change::{Change, EventType, EventTypes};
use picasso::domain::Owner;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

/// How long events stay for `Last-Event-ID` after they were dispatched (at least a day).
pub const KEPT_FOR: chrono::Duration = chrono::Duration::hours(25);

pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox (
             seq        INTEGER PRIMARY KEY AUTOINCREMENT,
             event_id   TEXT NOT NULL UNIQUE,
             owner      TEXT,
             type       TEXT NOT NULL,
             body       TEXT NOT NULL,
             at         INTEGER NOT NULL,
             dispatched INTEGER NOT NULL DEFAULT 0
         );
         CREATE INDEX IF NOT EXISTS outbox_undispatched ON outbox (seq) WHERE dispatched = 0;
         CREATE TABLE IF NOT EXISTS webhook_deliveries (
             seq      INTEGER PRIMARY KEY,
             attempts INTEGER NOT NULL DEFAULT 0,
             first_at INTEGER,
             next_at  INTEGER NOT NULL,
             dead     INTEGER NOT NULL DEFAULT 0
         );
         CREATE INDEX IF NOT EXISTS webhook_due ON webhook_deliveries (next_at) WHERE dead = 0;",
    )
}

/// Records `change` in the caller's transaction.
pub(crate) fn append(tx: &Connection, change: &Change) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO outbox (event_id, owner, type, body, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![
            change.id(),
            change.record.owner.as_ref().map(Owner::as_str),
            change.kind.as_str(),
            picasso::notify::body(change).to_string(),
            change.at.timestamp_millis(),
        ])?;
    Ok(())
}

/// One event as stored: its place in the log, whose it is, and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub owner: Option<String>,
    pub kind: EventType,
    pub body: String,
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let kind: String = r.get(3)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        owner: r.get(2)?,
        kind: EventType::parse(&kind).unwrap_or(EventType::Created),
        body: r.get(4)?,
    })
}

const EVENT: &str = "SELECT seq, event_id, owner, type, body FROM outbox";

/// A webhook delivery that is due.
#[derive(Debug, Clone)]
pub struct Due {
    pub event: StoredEvent,
    pub attempts: u32,
    pub first_at: Option<DateTime<Utc>>,
}

/// The log as its readers see it: the catalog's connection, shared, and a wake-up the
/// catalog gives after each commit that wrote to it.
pub struct Outbox {
    conn: Arc<Mutex<Connection>>,
    pub(crate) changed: Notify,
}

impl Outbox {
    pub(crate) fn new(conn: Arc<Mutex<Connection>>) -> Self {
        Self { conn, changed: Notify::new() }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events not yet handed to the live channel and the webhook, oldest first.
    pub fn undispatched(&self, n: usize) -> anyhow::Result<Vec<StoredEvent>> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(&format!("{EVENT} WHERE dispatched = 0 ORDER BY seq LIMIT ?1"))?
            .query_map([n as i64], stored)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks `events` dispatched and, in the same transaction, owes a webhook delivery of
    /// those of `published` types (`None`: no webhook).
    pub fn dispatched(
        &self,
        events: &[StoredEvent],
        published: Option<&EventTypes>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut owed = 0;
        for e in events {
            tx.prepare_cached("UPDATE outbox SET dispatched = 1 WHERE seq = ?1")?.execute([e.seq])?;
            if published.is_some_and(|p| p.contains(e.kind)) {
                owed += tx
                    .prepare_cached("INSERT OR IGNORE INTO webhook_deliveries (seq, next_at) VALUES (?1, ?2)")?
                    .execute(params![e.seq, now.timestamp_millis()])?;
            }
        }
        tx.commit()?;
        Ok(owed)
    }

    /// Where `event_id` sits in the log, if it is still kept.
    pub fn seq_of(&self, event_id: &str) -> anyhow::Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT seq FROM outbox WHERE event_id = ?1")?
            .query_row([event_id], |r| r.get(0))
            .optional()?)
    }

    /// Dispatched events after `seq`, oldest first: `owner`'s only, or everyone's.
    pub fn events_after(&self, seq: i64, owner: Option<&Owner>, n: usize) -> anyhow::Result<Vec<StoredEvent>> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(&format!(
                "{EVENT} WHERE seq > ?1 AND dispatched = 1 AND (?2 IS NULL OR owner = ?2) ORDER BY seq LIMIT ?3"
            ))?
            .query_map(params![seq, owner.map(Owner::as_str), n as i64], stored)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The newest dispatched event's place (0 when none is). Dispatching goes in log order, so
    /// every event after it is still to be dispatched.
    pub fn last_dispatched(&self) -> anyhow::Result<i64> {
        Ok(self.conn().query_row("SELECT coalesce(max(seq), 0) FROM outbox WHERE dispatched = 1", [], |r| r.get(0))?)
    }

    /// Deliveries due at `now`, the soonest first.
    pub fn due(&self, now: DateTime<Utc>, n: usize) -> anyhow::Result<Vec<Due>> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT o.seq, o.event_id, o.owner, o.type, o.body, d.attempts, d.first_at
                 FROM webhook_deliveries d JOIN outbox o ON o.seq = d.seq
                 WHERE d.dead = 0 AND d.next_at <= ?1 ORDER BY d.next_at LIMIT ?2",
            )?
            .query_map(params![now.timestamp_millis(), n as i64], |r| {
                Ok(Due {
                    event: stored(r)?,
                    attempts: r.get(5)?,
                    first_at: r.get::<_, Option<i64>>(6)?.and_then(DateTime::from_timestamp_millis),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// When the next owed delivery is due, if any is.
    pub fn next_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let conn = self.conn();
        let at: Option<i64> =
            conn.query_row("SELECT min(next_at) FROM webhook_deliveries WHERE dead = 0", [], |r| r.get(0))?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }

    pub fn delivered(&self, seq: i64) -> anyhow::Result<()> {
        self.conn().prepare_cached("DELETE FROM webhook_deliveries WHERE seq = ?1")?.execute([seq])?;
        Ok(())
    }

    /// One more failed attempt: tried again at `next`, or given up (`None`, kept as dead).
    pub fn attempt_failed(&self, due: &Due, now: DateTime<Utc>, next: Option<DateTime<Utc>>) -> anyhow::Result<()> {
        let first = due.first_at.unwrap_or(now);
        self.conn()
            .prepare_cached(
                "UPDATE webhook_deliveries SET attempts = ?2, first_at = ?3, next_at = ?4, dead = ?5 WHERE seq = ?1",
            )?
            .execute(params![
                due.event.seq,
                due.attempts + 1,
                first.timestamp_millis(),
                next.unwrap_or(now).timestamp_millis(),
                next.is_none()
            ])?;
        Ok(())
    }

    /// Drops dispatched events older than [`KEPT_FOR`] that no delivery still needs.
    pub fn prune_events(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        Ok(self
            .conn()
            .prepare_cached(
                "DELETE FROM outbox WHERE dispatched = 1 AND at < ?1
                   AND seq NOT IN (SELECT seq FROM webhook_deliveries)",
            )?
            .execute([(now - KEPT_FOR).timestamp_millis()])?)
    }
}
