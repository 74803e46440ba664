//! Committed changes of a file as events: which change of a record is worth announcing, and
//! under which id. Derived from the catalog's own change log (a DynamoDB stream record, an
//! outbox row written in the same SQLite transaction), never from the code that made the
//! change, so no committed change is missed and nothing uncommitted is announced.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::domain::{FileRecord, Status};

/// What happened to a file. The internal `processing` claim (and its release) is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Created,
    Processed,
    Failed,
    Deleted,
}

impl EventType {
    pub const ALL: [EventType; 4] = [EventType::Created, EventType::Processed, EventType::Failed, EventType::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "file.created",
            EventType::Processed => "file.processed",
            EventType::Failed => "file.failed",
            EventType::Deleted => "file.deleted",
        }
    }

    /// `file.processed` or its short form `processed`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL.into_iter().find(|t| t.as_str() == s || t.as_str().strip_prefix("file.") == Some(s))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which event types a deployment publishes (EventBridge, webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(BTreeSet<EventType>);

impl EventTypes {
    /// One entry per upload: its verdict, and its deletion (`EventTypes`, `--event-types`).
    pub const DEFAULT: &'static str = "processed,failed,deleted";

    pub fn default_published() -> Self {
        Self::parse(Self::DEFAULT).expect("the default parses")
    }

    pub fn all() -> Self {
        Self(EventType::ALL.into())
    }

    /// A comma-separated list (`processed,failed` or `file.processed, file.failed`); `all`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "all" {
            return Ok(Self::all());
        }
        let types = s
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| EventType::parse(t).ok_or_else(|| format!("unknown event type {:?}", t.trim())))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if types.is_empty() {
            return Err("no event type given".into());
        }
        Ok(Self(types))
    }

    pub fn contains(&self, t: EventType) -> bool {
        self.0.contains(&t)
    }
}

/// One committed change worth announcing: the record as the change left it (as it was, for a
/// deletion) and the version the change made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: EventType,
    pub record: FileRecord,
    pub version: u64,
    pub at: DateTime<Utc>,
}

impl Change {
    /// The change from `old` to `new` (either absent: created, deleted), committed at `at`;
    /// `None` for changes that are not events (a claim, a release, an expiry cleared).
    pub fn between(old: Option<&FileRecord>, new: Option<&FileRecord>, at: DateTime<Utc>) -> Option<Self> {
        let (kind, record, version) = match (old, new) {
            (None, Some(new)) => (EventType::Created, new, new.version.max(1)),
            (Some(old), None) => (EventType::Deleted, old, old.version + 1),
            (Some(old), Some(new)) if old.status != new.status => match new.status {
                Status::Processed => (EventType::Processed, new, new.version),
                Status::Failed => (EventType::Failed, new, new.version),
                Status::Pending | Status::Processing => return None,
            },
            _ => return None,
        };
        Some(Self { kind, record: record.clone(), version, at })
    }

    /// `{file_id}.{version}`: the same however often the change is delivered.
    pub fn id(&self) -> String {
        format!("{}.{}", self.record.id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AllowList, ContentType, FileName, FileSize, Owner};

    fn record() -> FileRecord {
        FileRecord::pending(
            Owner::parse("alice").unwrap(),
            FileName::parse("a.txt").unwrap(),
            ContentType::parse("text/plain", &AllowList::parse("*")).unwrap(),
            FileSize::new(3, 10).unwrap(),
        )
    }

    fn moved(r: &FileRecord, status: Status) -> FileRecord {
        FileRecord { status, version: r.version + 1, ..r.clone() }
    }

    #[test]
    fn a_files_life_is_four_events_in_version_order() {
        let now = Utc::now();
        let created = record();
        let claimed = moved(&created, Status::Processing);
        let done = moved(&claimed, Status::Processed);
        let steps = [
            (None, Some(&created)),
            (Some(&created), Some(&claimed)),
            (Some(&claimed), Some(&done)),
            (Some(&done), None),
        ];
        let events: Vec<_> = steps.iter().filter_map(|(o, n)| Change::between(*o, *n, now)).collect();
        let seen: Vec<_> = events.iter().map(|c| (c.kind, c.version)).collect();
        assert_eq!(
            seen,
            [(EventType::Created, 1), (EventType::Processed, 3), (EventType::Deleted, 4)],
            "the claim is no event, yet counts"
        );
        assert_eq!(events[2].id(), format!("{}.4", created.id));
        assert_eq!(events[2].record.status, Status::Processed, "a deletion carries the record as it was");
    }

    #[test]
    fn releases_and_expiry_changes_are_not_events() {
        let claimed = moved(&record(), Status::Processing);
        let released = moved(&claimed, Status::Pending);
        assert_eq!(Change::between(Some(&claimed), Some(&released), Utc::now()), None);
        assert_eq!(Change::between(Some(&released), Some(&released), Utc::now()), None);
        let failed = moved(&claimed, Status::Failed);
        assert_eq!(Change::between(Some(&claimed), Some(&failed), Utc::now()).unwrap().kind, EventType::Failed);
    }

    #[test]
    fn event_types_parse_both_spellings_and_refuse_unknown_ones() {
        let t = EventTypes::parse("processed, file.failed").unwrap();
        assert!(t.contains(EventType::Processed) && t.contains(EventType::Failed) && !t.contains(EventType::Created));
        assert_eq!(EventTypes::parse("all").unwrap(), EventTypes::all());
        assert!(EventTypes::parse("processed,exploded").unwrap_err().contains("exploded"));
        assert!(EventTypes::parse(" , ").is_err());
    }
}
