//! The embedded catalog: SQLite in the data directory, with DynamoDB's semantics
//! (conditional transitions, newest-first pages by id in O(page), status filter).

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use picasso::catalog::{Admission, Catalog, Claim, Lease, Limits, Order, Outcome, Scope, Transition, Usage};
use picasso::change::Change;
use picasso::domain::{
    Analysis, ContentType, Failure, FileId, FileName, FileRecord, FileSize, KeyLayout, MultipartUpload, ObjectKey,
    Owner, Status, name_key, rfc3339,
};
use picasso::integrity::Sha256Digest;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::outbox::{self, Outbox};

/// One connection: each statement takes microseconds, so a mutex beats a pool here,
/// and running it inline beats a hop to a blocking thread. Every committed change that is
/// an event is written to the `outbox` table in the same transaction (see `outbox.rs`).
pub struct SqliteCatalog {
    conn: Arc<Mutex<Connection>>,
    outbox: Arc<Outbox>,
}

const COLUMNS: &str = "id, filename, content_type, size, status, uploaded_at, processed_at, error_code, error_message, \
     sha256, detected_type, metadata, thumbnail, attempts, owner, checksum_sha256, upload_id, part_size, key_layout, version";

impl SqliteCatalog {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS files (
                 id            TEXT PRIMARY KEY,
                 filename      TEXT NOT NULL,
                 content_type  TEXT NOT NULL,
                 size          INTEGER NOT NULL,
                 status        TEXT NOT NULL,
                 uploaded_at   TEXT NOT NULL,
                 processed_at  TEXT,
                 error_code    TEXT,
                 error_message TEXT,
                 sha256        TEXT,
                 detected_type TEXT,
                 metadata      TEXT,
                 thumbnail     TEXT,
                 lease_token   TEXT,
                 lease_until   INTEGER,
                 expires_at    INTEGER,
                 attempts      INTEGER NOT NULL DEFAULT 0,
                 owner         TEXT
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS files_by_status ON files (status, id);",
        )?;
        // Catalogs made before attempts were counted, files had owners, checksums, parts and
        // spread keys (a file without `key_layout` is stored under the flat key).
        for (column, ddl) in [
            ("attempts", "attempts INTEGER NOT NULL DEFAULT 0"),
            ("owner", "owner TEXT"),
            ("checksum_sha256", "checksum_sha256 TEXT"),
            ("upload_id", "upload_id TEXT"),
            ("part_size", "part_size INTEGER"),
            ("key_layout", "key_layout TEXT"),
            ("version", "version INTEGER NOT NULL DEFAULT 1"),
            ("name_key", "name_key TEXT"),
        ] {
            let has: bool =
                conn.query_row("SELECT count(*) FROM pragma_table_info('files') WHERE name = ?1", [column], |r| {
                    r.get(0)
                })?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE files ADD COLUMN {ddl}"))?;
            }
        }
        // Each owner's listing, whole or by status, is a range of its own index; a name search
        // a range of the owner's folded names.
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, id) WHERE owner IS NOT NULL;
             CREATE INDEX IF NOT EXISTS files_by_owner_status ON files (owner, status, id) WHERE owner IS NOT NULL;
             CREATE INDEX IF NOT EXISTS files_by_owner_name ON files (owner, name_key) WHERE owner IS NOT NULL;",
        )?;
        // Files from before search: their folded names, once.
        let unnamed: Vec<(String, String)> = conn
            .prepare("SELECT id, filename FROM files WHERE owner IS NOT NULL AND name_key IS NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, filename) in unnamed {
            conn.execute("UPDATE files SET name_key = ?2 WHERE id = ?1", params![id, name_key(&filename)])?;
        }
        outbox::create(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Self { outbox: Arc::new(Outbox::new(conn.clone())), conn })
    }

    /// The events this catalog's changes wrote, for their dispatcher and the live channel.
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on file `id` in one transaction that also records the change it made, when
    /// that change is an event: committed together or not at all.
    fn changing<T>(&self, id: FileId, op: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old = select(&tx, id)?;
        let out = op(&tx)?;
        let new = select(&tx, id)?;
        let change = Change::between(old.as_ref(), new.as_ref(), picasso::domain::now());
        if let Some(change) = &change {
            outbox::append(&tx, change)?;
        }
        tx.commit()?;
        drop(conn);
        if change.is_some() {
            self.outbox.changed.notify_one();
        }
        Ok(out)
    }

    /// Only one process owns a data directory, so at start-up the leases of the last run
    /// died with it: their files go back to `pending` (the sweeper delivers them again).
    pub fn release_dead_leases(&self) -> anyhow::Result<usize> {
        Ok(self.conn().execute(
            "UPDATE files SET status = 'pending', lease_token = NULL, lease_until = NULL, version = version + 1
             WHERE status = 'processing'",
            [],
        )?)
    }

    /// Drops pending records past their expiry, as DynamoDB's TTL does; returns the multipart
    /// uploads they were waiting for (the bucket's lifecycle rule aborts those on AWS).
    pub fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(ObjectKey, String)>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let expired = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM files WHERE status = 'pending' AND expires_at < ?1"))?
            .query_map(params![now.timestamp()], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        // Gone as if deleted: consumers hear of it like any deletion.
        for r in &expired {
            tx.execute("DELETE FROM files WHERE id = ?1", [r.id.to_string()])?;
            if let Some(change) = Change::between(Some(r), None, now) {
                outbox::append(&tx, &change)?;
            }
        }
        tx.commit()?;
        drop(conn);
        if !expired.is_empty() {
            self.outbox.changed.notify_one();
        }
        Ok(expired.into_iter().filter_map(|r| Some((r.key(), r.multipart?.upload_id))).collect())
    }

    /// Bulk insert in one transaction, for seeding large catalogs in benchmarks.
    pub fn insert_many(&self, records: &[FileRecord], expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(INSERT)?;
            for r in records {
                insert_with(&mut stmt, r, expires_at)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

const INSERT: &str = "INSERT INTO files (id, filename, content_type, size, status, uploaded_at, processed_at,
     error_code, error_message, sha256, detected_type, metadata, thumbnail, expires_at, owner,
     checksum_sha256, upload_id, part_size, key_layout, version, name_key)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

fn insert_with(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &FileRecord,
    expires_at: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let a = r.analysis.as_ref();
    stmt.execute(params![
        r.id.to_string(),
        r.filename.as_str(),
        r.content_type.as_str(),
        r.size.bytes() as i64,
        r.status.as_str(),
        rfc3339(&r.uploaded_at),
        r.processed_at.as_ref().map(rfc3339),
        r.error.as_ref().map(|f| f.code.as_str()),
        r.error.as_ref().map(|f| f.message.as_str()),
        a.map(|a| a.sha256.as_str()),
        a.map(|a| a.detected_type.as_str()),
        a.map(|a| serde_json::Value::Object(a.metadata.clone()).to_string()),
        a.and_then(|a| a.thumbnail.as_deref()),
        (!r.status.is_final()).then_some(expires_at.timestamp()),
        r.owner.as_ref().map(Owner::as_str),
        r.checksum.as_ref().map(Sha256Digest::to_hex),
        r.multipart.as_ref().map(|m| m.upload_id.as_str()),
        r.multipart.as_ref().map(|m| m.part_size as i64),
        r.key_layout.stored(),
        r.version as i64,
        r.owner.as_ref().map(|_| name_key(r.filename.as_str())),
    ])
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
    let bad =
        |i: usize, what: &str| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into());
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        row.get::<_, Option<String>>(i)?
            .map(|t| DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)).map_err(|_| bad(i, "bad time")))
            .transpose()
    };
    let id: String = row.get(0)?;
    let filename: String = row.get(1)?;
    let status: String = row.get(4)?;
    Ok(FileRecord {
        id: FileId::parse(&id).ok_or_else(|| bad(0, "bad id"))?,
        filename: FileName::parse(&filename).map_err(|_| bad(1, "bad filename"))?,
        content_type: ContentType::from_stored(row.get(2)?),
        size: FileSize::from_stored(row.get::<_, i64>(3)? as u64),
        status: status.parse().map_err(|_| bad(4, "bad status"))?,
        uploaded_at: time(5)?.ok_or_else(|| bad(5, "no time"))?,
        processed_at: time(6)?,
        error: match (row.get::<_, Option<String>>(7)?, row.get::<_, Option<String>>(8)?) {
            (Some(code), Some(message)) => Some(Failure { code, message }),
            _ => None,
        },
        analysis: match row.get::<_, Option<String>>(9)? {
            None => None,
            Some(sha256) => Some(Analysis {
                sha256,
                detected_type: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
                metadata: serde_json::from_str(&row.get::<_, Option<String>>(11)?.unwrap_or_else(|| "{}".into()))
                    .map_err(|_| bad(11, "bad metadata"))?,
                thumbnail: row.get(12)?,
            }),
        },
        attempts: row.get(13)?,
        owner: row.get::<_, Option<String>>(14)?.as_deref().and_then(Owner::parse),
        checksum: row.get::<_, Option<String>>(15)?.and_then(|c| Sha256Digest::parse(&c).ok()),
        multipart: match (row.get::<_, Option<String>>(16)?, row.get::<_, Option<i64>>(17)?) {
            (Some(upload_id), Some(n)) => Some(MultipartUpload { upload_id, part_size: n as u64 }),
            _ => None,
        },
        key_layout: KeyLayout::from_stored(row.get::<_, Option<String>>(18)?.as_deref()),
        version: row.get::<_, i64>(19)? as u64,
    })
}

fn select(conn: &Connection, id: FileId) -> rusqlite::Result<Option<FileRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM files WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

/// The owner's files by the rules of `Limits`: a slot past its expiry counts for nothing
/// (it is purged soon after, as DynamoDB's TTL drops it).
fn usage_with(conn: &Connection, owner: &Owner, now: DateTime<Utc>) -> rusqlite::Result<Usage> {
    conn.prepare_cached(
        "SELECT count(*) FILTER (WHERE status IN ('pending', 'processing')), coalesce(sum(size), 0)
         FROM files WHERE owner = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![owner.as_str(), now.timestamp()], |r| {
        Ok(Usage { pending: r.get::<_, i64>(0)? as u64, bytes: r.get::<_, i64>(1)? as u64 })
    })
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn insert(&self, record: &FileRecord, expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        self.changing(record.id, |tx| insert_with(&mut tx.prepare_cached(INSERT)?, record, expires_at))?;
        Ok(())
    }

    async fn admit(
        &self,
        record: &FileRecord,
        expires_at: DateTime<Utc>,
        limits: &Limits,
    ) -> anyhow::Result<Admission> {
        // One transaction on one connection: the count and the insert are one step.
        self.changing(record.id, |tx| {
            if let Some(owner) = &record.owner {
                let usage = usage_with(tx, owner, record.uploaded_at)?;
                if let Some(over) = limits.broken_by(usage, record.size.bytes()) {
                    return Ok(Admission::Refused(over, usage));
                }
            }
            insert_with(&mut tx.prepare_cached(INSERT)?, record, expires_at)?;
            Ok(Admission::Admitted)
        })
    }

    async fn usage(&self, owner: &Owner, now: DateTime<Utc>) -> anyhow::Result<Usage> {
        Ok(usage_with(&self.conn(), owner, now)?)
    }

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        Ok(select(&self.conn(), id)?)
    }

    async fn find(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        // "~" sorts after every UUID and "" before, so one statement serves the first page too.
        let (beyond, direction, start) = match order {
            Order::Newest => ("<", "DESC", "~"),
            Order::Oldest => (">", "ASC", ""),
        };
        let after = after.map_or_else(|| start.to_owned(), |a| a.to_string());
        let owner = scope.owner().map(Owner::as_str);
        let prefix = match scope {
            Scope::Named(_, p) => Some(p.as_str()),
            _ => None,
        };
        let sql = match (owner, status, prefix) {
            // Every statement names all five parameters; those not in play are NULL.
            // A search reads the owner's matches by name and sorts them (O(matches), as on
            // DynamoDB): walking all the owner's files by id instead reads each row (bench B5).
            (Some(_), _, Some(_)) => {
                "INDEXED BY files_by_owner_name WHERE owner = ?3 AND name_key >= ?5 AND substr(name_key, 1, length(?5)) = ?5 AND id {beyond} ?1
                   AND (?4 IS NULL OR status = ?4)"
            }
            (Some(_), None, None) => "WHERE owner = ?3 AND id {beyond} ?1 AND ?4 IS NULL AND ?5 IS NULL",
            (Some(_), Some(_), None) => "WHERE owner = ?3 AND status = ?4 AND id {beyond} ?1 AND ?5 IS NULL",
            (None, None, _) => "WHERE id {beyond} ?1 AND ?3 IS NULL AND ?4 IS NULL AND ?5 IS NULL",
            (None, Some(_), _) => "WHERE status = ?4 AND id {beyond} ?1 AND ?3 IS NULL AND ?5 IS NULL",
        }
        .replace("{beyond}", beyond);
        let conn = self.conn();
        let rows = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM files {sql} ORDER BY id {direction} LIMIT ?2"))?
            .query_map(params![after, n as i64, owner, status.map(Status::as_str), prefix], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    async fn claim(&self, id: FileId, lease: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim> {
        // A claim is never an event (Change::between): no outbox, no reads around it. The
        // connection is held throughout, so the record read is the claim's outcome.
        let (n, record) = {
            let tx = self.conn();
            let n = tx
                .prepare_cached(
                    "UPDATE files SET status = 'processing', lease_token = ?2, lease_until = ?3, expires_at = NULL,
                       attempts = attempts + 1, version = version + 1
                     WHERE id = ?1 AND (status = 'pending' OR (status = 'processing' AND lease_until < ?4))",
                )?
                .execute(params![
                    id.to_string(),
                    lease.token.to_string(),
                    lease.until.timestamp_millis(),
                    now.timestamp_millis()
                ])?;
            (n, select(&tx, id)?)
        };
        Ok(match (n, record) {
            (_, None) => Claim::Missing,
            (1, Some(r)) => Claim::Claimed(r),
            (_, Some(r)) if r.status.is_final() => Claim::Final,
            (_, Some(_)) => Claim::Busy,
        })
    }

    async fn finish(
        &self,
        id: FileId,
        lease: &Lease,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Transition> {
        let f = outcome.failure();
        let a = outcome.analysis();
        let n = self.changing(id, |tx| {
            tx.prepare_cached(
                "UPDATE files SET status = ?3, processed_at = ?4, error_code = ?5, error_message = ?6,
                   sha256 = ?7, detected_type = ?8, metadata = ?9, thumbnail = ?10, lease_token = NULL,
                   lease_until = NULL, version = version + 1
                 WHERE id = ?1 AND status = 'processing' AND lease_token = ?2",
            )?
            .execute(params![
                id.to_string(),
                lease.token.to_string(),
                outcome.status().as_str(),
                rfc3339(&at),
                f.map(|f| f.code.as_str()),
                f.map(|f| f.message.as_str()),
                a.map(|a| a.sha256.as_str()),
                a.map(|a| a.detected_type.as_str()),
                a.map(|a| serde_json::Value::Object(a.metadata.clone()).to_string()),
                a.and_then(|a| a.thumbnail.as_deref()),
            ])
        })?;
        Ok(applied(n))
    }

    async fn release(&self, id: FileId, lease: &Lease, expires_at: DateTime<Utc>) -> anyhow::Result<Transition> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE files SET status = 'pending', lease_token = NULL, lease_until = NULL, expires_at = ?3,
               version = version + 1
             WHERE id = ?1 AND status = 'processing' AND lease_token = ?2",
            )?
            .execute(params![id.to_string(), lease.token.to_string(), expires_at.timestamp()])?;
        Ok(applied(n))
    }

    async fn delete(&self, id: FileId) -> anyhow::Result<bool> {
        let n =
            self.changing(id, |tx| tx.prepare_cached("DELETE FROM files WHERE id = ?1")?.execute([id.to_string()]))?;
        Ok(n == 1)
    }

    async fn keep(&self, id: FileId) -> anyhow::Result<Transition> {
        let n = self
            .conn()
            .prepare_cached("UPDATE files SET expires_at = NULL WHERE id = ?1 AND status = 'pending'")?
            .execute([id.to_string()])?;
        Ok(applied(n))
    }

    async fn stale(&self, now: DateTime<Utc>, pending_before: FileId, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let conn = self.conn();
        let mut records = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE status = 'processing' AND lease_until < ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![now.timestamp_millis(), n as i64], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let pending = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE status = 'pending' AND id < ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![pending_before.to_string(), n as i64], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        records.extend(pending);
        Ok(records)
    }
}

fn applied(rows_changed: usize) -> Transition {
    if rows_changed == 1 { Transition::Applied } else { Transition::Skipped }
}
