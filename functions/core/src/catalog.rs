//! The catalog of files: a port with a DynamoDB adapter (AWS), an embedded one
//! (local stack) and an in-memory one (tests). All share these semantics:
//! pages newest (or oldest) first resumed after an id, and conditional status transitions.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::domain::{Analysis, Failure, FileId, FileRecord, NamePrefix, Owner, Status};
use crate::refusal::DomainError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

/// What processing concluded about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed(Analysis),
    /// A permanent failure, with whatever was learnt before it.
    Failed(Failure, Option<Analysis>),
}

impl Outcome {
    pub fn failed(code: &str, message: impl Into<String>) -> Self {
        Outcome::Failed(Failure::new(code, message), None)
    }

    pub fn status(&self) -> Status {
        match self {
            Outcome::Processed(_) => Status::Processed,
            Outcome::Failed(..) => Status::Failed,
        }
    }

    pub fn analysis(&self) -> Option<&Analysis> {
        match self {
            Outcome::Processed(a) | Outcome::Failed(_, Some(a)) => Some(a),
            Outcome::Failed(_, None) => None,
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(f, _) => Some(f),
            Outcome::Processed(_) => None,
        }
    }

    /// Applies the outcome to a record, as every adapter stores it.
    pub fn apply(&self, r: &mut FileRecord, at: DateTime<Utc>) {
        r.status = self.status();
        r.processed_at = Some(at);
        r.error = self.failure().cloned();
        r.analysis = self.analysis().cloned();
        r.version += 1;
    }
}

/// The right to process one file until `until`; `token` tells holders apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: uuid::Uuid,
    pub until: DateTime<Utc>,
}

impl Lease {
    pub fn new(now: DateTime<Utc>, duration: std::time::Duration) -> Self {
        Self { token: uuid::Uuid::new_v4(), until: now + duration }
    }
}

/// Result of trying to claim a file for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
// One claim per file and delivery, moved once: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Claim {
    /// Ours until the lease ends: `pending`, or `processing` under an expired lease.
    Claimed(FileRecord),
    /// Someone else holds a live lease.
    Busy,
    /// Already `processed` or `failed`.
    Final,
    Missing,
}

/// Result of a conditional transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Applied,
    /// The record was not in the expected state (lease lost, already final, or gone): nothing changed.
    Skipped,
}

/// Whose files a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One owner's: a Query on that owner's partition.
    Owner(Owner),
    /// Everyone's (admins), records without an owner included.
    All,
    /// One owner's files whose name starts with a prefix, compared case-folded (`?q=`).
    Named(Owner, NamePrefix),
}

impl Scope {
    /// The owner whose files it holds (all but everyone's).
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Scope::Owner(o) | Scope::Named(o, _) => Some(o),
            Scope::All => None,
        }
    }

    /// Whether `r` belongs to it.
    pub fn holds(&self, r: &FileRecord) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(o) => r.owner.as_ref() == Some(o),
            Scope::Named(o, prefix) => r.owner.as_ref() == Some(o) && prefix.matches(r.filename.as_str()),
        }
    }
}

/// Which end a listing starts from. Ids are UUIDv7, so id order is upload order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    #[default]
    Newest,
    Oldest,
}

impl Order {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "newest" => Some(Self::Newest),
            "oldest" => Some(Self::Oldest),
            _ => None,
        }
    }

    /// Whether `id` comes after `after` in this order.
    pub fn beyond(self, id: FileId, after: FileId) -> bool {
        match self {
            Self::Newest => id < after,
            Self::Oldest => id > after,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<FileRecord>,
    pub next: Option<Cursor>,
}

/// How much one user may hold at once; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Files not yet final (`pending` or `processing`) whose slot has not expired.
    pub pending: Option<u64>,
    /// Bytes of all the user's files, pending ones included.
    pub bytes: Option<u64>,
}

/// What one user holds: counted by the same rules as [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub pending: u64,
    pub bytes: u64,
}

/// Which limit a new file would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Pending(u64),
    Bytes(u64),
}

/// The answer to a new file: recorded, or refused with what its owner holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused(Quota, Usage),
}

impl Limits {
    /// The limit a file of `size` more bytes would break, holding `usage`.
    pub fn broken_by(&self, usage: Usage, size: u64) -> Option<Quota> {
        if let Some(max) = self.pending.filter(|&max| usage.pending >= max) {
            return Some(Quota::Pending(max));
        }
        self.bytes.filter(|&max| usage.bytes.saturating_add(size) > max).map(Quota::Bytes)
    }
}

#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Records a new `pending` file; `expires_at` lets the store drop it if its upload never
    /// arrives. No limit applies (tools and tests); the API admits files with [`Catalog::admit`].
    async fn insert(&self, record: &FileRecord, expires_at: DateTime<Utc>) -> anyhow::Result<()>;

    /// Records a new `pending` file of an owner if it keeps them within `limits`, checked and
    /// counted in one atomic step: two requests at a limit admit exactly one. A file stops
    /// counting as pending once final, deleted or expired, and its bytes once deleted or expired.
    async fn admit(&self, record: &FileRecord, expires_at: DateTime<Utc>, limits: &Limits)
    -> anyhow::Result<Admission>;

    /// What `owner` holds at `now`.
    async fn usage(&self, owner: &Owner, now: DateTime<Utc>) -> anyhow::Result<Usage>;

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>>;

    /// Up to `n` records of `scope` in `order`, optionally of one status, strictly beyond
    /// `after`. Must cost O(n), whatever the size of the catalog and of other owners.
    async fn find(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>>;

    /// [`Catalog::find`], newest first.
    async fn newest(
        &self,
        scope: &Scope,
        status: Option<Status>,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        self.find(scope, status, Order::Newest, after, n).await
    }

    /// `pending` (or `processing` under an expired lease) → `processing` under `lease`,
    /// counting the attempt and clearing the expiry (the bytes are there).
    async fn claim(&self, id: FileId, lease: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim>;

    /// `processing` under this lease → the outcome's final status; anything else is left as it is.
    async fn finish(
        &self,
        id: FileId,
        lease: &Lease,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Transition>;

    /// `processing` under this lease → `pending` expiring at `expires_at`, so a retry need not
    /// wait for the lease to end.
    async fn release(&self, id: FileId, lease: &Lease, expires_at: DateTime<Utc>) -> anyhow::Result<Transition>;

    /// Removes a record (`DELETE /files/{id}`); whether there was one.
    async fn delete(&self, id: FileId) -> anyhow::Result<bool>;

    /// A `pending` file whose bytes have arrived no longer expires.
    async fn keep(&self, id: FileId) -> anyhow::Result<Transition>;

    /// What the sweeper looks at, up to `n` of each: `processing` records whose lease ended
    /// before `now`, and `pending` records older than `pending_before`, oldest first.
    async fn stale(&self, now: DateTime<Utc>, pending_before: FileId, n: usize) -> anyhow::Result<Vec<FileRecord>>;

    /// [`Catalog::find`] for a page: an adapter may stop looking before `n` when matches
    /// are rare, and then says where it stopped, so a page costs O(page) (DynamoDB does).
    async fn find_for_page(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<(Vec<FileRecord>, Option<FileId>)> {
        Ok((self.find(scope, status, order, after, n).await?, None))
    }

    /// One page, with a cursor when more records may exist: one extra read tells, or the
    /// adapter stopped looking (then the page may be short).
    async fn list(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<&Cursor>,
        limit: usize,
    ) -> anyhow::Result<Page> {
        let (mut items, stopped_at) =
            self.find_for_page(scope, status, order, after.map(|c| c.after), limit + 1).await?;
        let cursor = |after| Cursor { scope: scope.clone(), status, order, after };
        let next = if items.len() > limit {
            items.truncate(limit);
            Some(cursor(items[limit - 1].id))
        } else {
            stopped_at.map(cursor)
        };
        Ok(Page { items, next })
    }
}

/// Opaque to clients: where a listing stopped and which listing it belongs to (whose files,
/// which status, which order). A cursor of another listing is refused, so it cannot open
/// someone else's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub scope: Scope,
    pub status: Option<Status>,
    pub order: Order,
    pub after: FileId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let status = self.status.map_or("*", Status::as_str);
        let scope = match &self.scope {
            Scope::All => "*".to_owned(),
            Scope::Owner(o) => format!("o:{o}"),
            Scope::Named(o, p) => format!("q:{}:{o}", URL_SAFE_NO_PAD.encode(p.as_str())),
        };
        // Newest first keeps the format of cursors issued before there was an order.
        let version = match self.order {
            Order::Newest => "v2",
            Order::Oldest => "v2o",
        };
        URL_SAFE_NO_PAD.encode(format!("{version}:{status}:{}:{scope}", self.after))
    }

    /// Anything but a cursor this API issued for the same listing is a client error.
    pub fn decode(s: &str, scope: &Scope, status: Option<Status>, order: Order) -> Result<Self, DomainError> {
        let invalid =
            || DomainError::invalid("invalid_cursor", "cursor is not one this API issued; start again without it");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        // The owner comes last: it may itself contain colons.
        let mut parts = text.splitn(4, ':');
        let (Some(version), Some(st), Some(id), Some(whose)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let cursor_order = match version {
            "v2" => Order::Newest,
            "v2o" => Order::Oldest,
            _ => return Err(invalid()),
        };
        let cursor_status = match st {
            "*" => None,
            s => Some(s.parse::<Status>().map_err(|_| invalid())?),
        };
        let cursor_scope = match whose {
            "*" => Scope::All,
            q if q.starts_with("q:") => {
                let (prefix, owner) = q[2..].split_once(':').ok_or_else(invalid)?;
                let prefix = URL_SAFE_NO_PAD.decode(prefix).ok().and_then(|p| String::from_utf8(p).ok());
                Scope::Named(
                    Owner::parse(owner).ok_or_else(invalid)?,
                    NamePrefix::from_folded(prefix.ok_or_else(invalid)?),
                )
            }
            o => Scope::Owner(o.strip_prefix("o:").and_then(Owner::parse).ok_or_else(invalid)?),
        };
        let after = FileId::parse(id).ok_or_else(invalid)?;
        if cursor_status != status || cursor_scope != *scope || cursor_order != order {
            return Err(DomainError::invalid(
                "invalid_cursor",
                "cursor belongs to another listing (another status filter, order, scope or user)",
            ));
        }
        Ok(Self { scope: cursor_scope, status, order, after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Scope {
        Scope::Owner(Owner::parse("alice:with|odd#chars").unwrap())
    }

    #[test]
    fn cursor_round_trips() {
        let named = Scope::Named(Owner::parse("a:b").unwrap(), NamePrefix::parse("Straße: 2").unwrap().unwrap());
        for scope in [alice(), Scope::All, named] {
            for (status, order) in [(None, Order::Newest), (Some(Status::Processed), Order::Oldest)] {
                let c = Cursor { scope: scope.clone(), status, order, after: FileId::new() };
                assert_eq!(Cursor::decode(&c.encode(), &scope, status, order).unwrap(), c);
            }
        }
    }

    #[test]
    fn a_cursor_opens_only_its_own_listing() {
        let c = Cursor { scope: alice(), status: None, order: Order::Newest, after: FileId::new() }.encode();
        let bob = Scope::Owner(Owner::parse("bob").unwrap());
        let searched =
            Scope::Named(Owner::parse("alice:with|odd#chars").unwrap(), NamePrefix::parse("a").unwrap().unwrap());
        for (scope, status) in [(bob, None), (Scope::All, None), (alice(), Some(Status::Failed)), (searched, None)] {
            let e = Cursor::decode(&c, &scope, status, Order::Newest).unwrap_err();
            assert_eq!((e.kind, e.code), (crate::refusal::Refusal::Invalid, "invalid_cursor"), "{scope:?}");
        }
        let e = Cursor::decode(&c, &alice(), None, Order::Oldest).unwrap_err();
        assert_eq!(e.code, "invalid_cursor", "a newest-first cursor does not page oldest first");
    }

    #[test]
    fn tampered_or_foreign_cursors_are_client_errors() {
        let c = Cursor { scope: Scope::All, status: None, order: Order::Newest, after: FileId::new() }.encode();
        let mut tampered = c.clone().into_bytes();
        tampered[5] ^= 1;
        let v4 = URL_SAFE_NO_PAD.encode("v2:*:6f1c1f4e-8d7e-4c1a-9a7e-2b1c3d4e5f60:*");
        for bad in [
            String::from_utf8(tampered).unwrap(),
            "not base64!".into(),
            String::new(),
            URL_SAFE_NO_PAD.encode("v3:*:x:*"),
            URL_SAFE_NO_PAD.encode("v2:weird:x:*"),
            URL_SAFE_NO_PAD.encode(format!("v1:*:{}", FileId::new())),
            v4,
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            let e = Cursor::decode(&bad, &Scope::All, None, Order::Newest).unwrap_err();
            assert_eq!((e.kind, e.code), (crate::refusal::Refusal::Invalid, "invalid_cursor"), "{bad:?}");
        }
        let e = Cursor::decode(&c, &Scope::All, Some(Status::Failed), Order::Newest).unwrap_err();
        assert_eq!(e.code, "invalid_cursor");
    }
}
