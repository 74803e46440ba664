//! The DynamoDB adapter: one item per file, conditional transitions, and Queries (never a
//! Scan) on four keys-only indexes, each written once when a file is created and (`open`)
//! once when it ends, so a file's claim and verdict write the table alone:
//! - `owner_keys` (owner, id): each user's files, a partition per owner;
//! - `name_keys` (owner, folded name): an owner's files by name, for search;
//! - `shard_keys` (`file#H`, id), H the id's last hex digit: everyone's files (admins), 16
//!   partitions read and merged in order;
//! - `open_keys` (HH, id), sparse: only `pending` and `processing` files carry `open` (the
//!   id's last two hex digits: 256 partitions, as it takes two writes per upload), so the
//!   sweeper reads what is not final, never the history.
//!
//! A Query returns keys; the items come from BatchGetItem, in the order the keys gave.

use std::collections::HashMap;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};

use crate::catalog::{Admission, Catalog, Claim, Lease, Limits, Order, Outcome, Scope, Transition, Usage};
use crate::domain::{
    Analysis, ContentType, DomainError, Failure, FileId, FileName, FileRecord, FileSize, KeyLayout, MultipartUpload,
    NamePrefix, Owner, Status, name_key, rfc3339,
};
use crate::integrity::Sha256Digest;

const OWNER_KEYS: &str = "owner_keys";
const SHARD_KEYS: &str = "shard_keys";
const OPEN_KEYS: &str = "open_keys";
const NAME_KEYS: &str = "name_keys";
/// The most matches a name search reads (keys only, about 100 bytes each): a prefix that
/// matches more of one user's files is refused as too broad.
pub const MAX_NAME_MATCHES: usize = 20_000;
/// The shards of the all-files and open indexes: the last hex digit of the (random) end of a UUIDv7.
const SHARDS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'];
/// BatchGetItem's limit.
const BATCH_GET: usize = 100;
/// A listing filtered by status reads at most this many records per page: the matches may be
/// rare, and a page must cost O(page). A page that stops here is short, with a cursor.
const FILTER_READS: usize = 1000;

fn shard_of(id: FileId) -> char {
    id.to_string().chars().last().unwrap_or('0')
}

pub struct DynamoCatalog {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
    filter_reads: usize,
}

impl DynamoCatalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), filter_reads: FILTER_READS }
    }

    /// The same catalog, reading at most `n` records per filtered page (tests).
    pub fn with_filter_reads(self, n: usize) -> Self {
        Self { filter_reads: n, ..self }
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn to_item(r: &FileRecord, expires_at: DateTime<Utc>) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".into(), s(r.id.to_string())),
        ("filename".into(), s(r.filename.as_str())),
        ("content_type".into(), s(r.content_type.as_str())),
        ("size".into(), AttributeValue::N(r.size.bytes().to_string())),
        ("status".into(), s(r.status.as_str())),
        ("uploaded_at".into(), s(rfc3339(&r.uploaded_at))),
        ("expires_at".into(), AttributeValue::N(expires_at.timestamp().to_string())),
        ("version".into(), AttributeValue::N(r.version.to_string())),
    ]);
    if let Some(o) = &r.owner {
        item.insert("owner".into(), s(o.as_str()));
        // Searched by `name_keys` (an owner's files by folded name).
        item.insert("name_key".into(), s(name_key(r.filename.as_str())));
    }
    let h = shard_of(r.id);
    item.insert("shard".into(), s(format!("file#{h}")));
    if !r.status.is_final() {
        item.insert("open".into(), s(r.id.spread()));
    }
    if let Some(t) = &r.processed_at {
        item.insert("processed_at".into(), s(rfc3339(t)));
    }
    if let Some(c) = &r.checksum {
        item.insert("checksum_sha256".into(), s(c.to_hex()));
    }
    if let Some(mark) = r.key_layout.stored() {
        item.insert("key_layout".into(), s(mark));
    }
    if let Some(m) = &r.multipart {
        item.insert("upload_id".into(), s(&m.upload_id));
        item.insert("part_size".into(), AttributeValue::N(m.part_size.to_string()));
    }
    if let Some(f) = &r.error {
        item.insert("error_code".into(), s(&f.code));
        item.insert("error_message".into(), s(&f.message));
    }
    if let Some(a) = &r.analysis {
        for ((_, name), value) in ANALYSIS.into_iter().zip(analysis_attrs(a)) {
            if !matches!(value, AttributeValue::Null(_)) {
                item.insert(name.into(), value);
            }
        }
    }
    item
}

/// Placeholder and attribute name of each stored part of an analysis, in `analysis_attrs` order.
const ANALYSIS: [(&str, &str); 4] = [
    (":sha256", "sha256"),
    (":detected_type", "detected_type"),
    (":metadata", "metadata"),
    (":thumbnail", "thumbnail"),
];

fn analysis_attrs(a: &Analysis) -> [AttributeValue; 4] {
    [
        s(&a.sha256),
        s(&a.detected_type),
        s(serde_json::Value::Object(a.metadata.clone()).to_string()),
        a.thumbnail.as_deref().map_or(AttributeValue::Null(true), s),
    ]
}

pub(super) fn from_item(item: &HashMap<String, AttributeValue>) -> anyhow::Result<FileRecord> {
    let text = |k: &str| -> anyhow::Result<&str> {
        item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str).with_context(|| format!("item lacks string {k}"))
    };
    let time = |k: &str| -> anyhow::Result<Option<DateTime<Utc>>> {
        match item.get(k).and_then(|v| v.as_s().ok()) {
            None => Ok(None),
            Some(t) => Ok(Some(DateTime::parse_from_rfc3339(t)?.with_timezone(&Utc))),
        }
    };
    let id = text("id")?;
    let size = item.get("size").and_then(|v| v.as_n().ok()).context("item lacks size")?.parse()?;
    Ok(FileRecord {
        id: FileId::parse(id).with_context(|| format!("bad id {id:?}"))?,
        owner: text("owner").ok().and_then(Owner::parse),
        filename: FileName::parse(text("filename")?).map_err(|e| anyhow::anyhow!(e.message))?,
        content_type: ContentType::from_stored(text("content_type")?.to_owned()),
        size: FileSize::from_stored(size),
        status: text("status")?.parse().map_err(|_| anyhow::anyhow!("bad status"))?,
        uploaded_at: time("uploaded_at")?.context("item lacks uploaded_at")?,
        processed_at: time("processed_at")?,
        error: match (text("error_code"), text("error_message")) {
            (Ok(code), Ok(message)) => Some(Failure { code: code.into(), message: message.into() }),
            _ => None,
        },
        checksum: text("checksum_sha256").ok().and_then(|c| Sha256Digest::parse(c).ok()),
        multipart: match (text("upload_id"), item.get("part_size").and_then(|v| v.as_n().ok())) {
            (Ok(upload_id), Some(n)) => Some(MultipartUpload { upload_id: upload_id.into(), part_size: n.parse()? }),
            _ => None,
        },
        key_layout: KeyLayout::from_stored(text("key_layout").ok()),
        attempts: number(item, "attempts").unwrap_or(0) as u32,
        // Records from before versions: their creation counts as the first change.
        version: number(item, "version").unwrap_or(1) as u64,
        analysis: match text("sha256") {
            Err(_) => None,
            Ok(sha256) => Some(Analysis {
                sha256: sha256.into(),
                detected_type: text("detected_type").unwrap_or_default().into(),
                metadata: serde_json::from_str(text("metadata").unwrap_or("{}"))?,
                thumbnail: text("thumbnail").ok().map(Into::into),
            }),
        },
    })
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn insert(&self, record: &FileRecord, expires_at: DateTime<Utc>) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record, expires_at)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .context("DynamoDB PutItem")?;
        Ok(())
    }

    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        self.item(id).await?.as_ref().map(from_item).transpose()
    }

    async fn find(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        Ok(self.find_reading(scope, status, order, after, n, usize::MAX).await?.0)
    }

    /// A status filter reads the owner's (or everyone's) files in order and keeps the
    /// matching ones, up to [`FILTER_READS`] a page: a short page then carries a cursor.
    async fn find_for_page(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<(Vec<FileRecord>, Option<FileId>)> {
        let reads = if status.is_some() { self.filter_reads } else { usize::MAX };
        self.find_reading(scope, status, order, after, n, reads).await
    }

    async fn claim(&self, id: FileId, lease: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            // Once claimed the object exists: TTL must no longer drop the record.
            .update_expression(
                "SET #status = :processing, lease_token = :token, lease_until = :until REMOVE expires_at ADD attempts :one, version :one",
            )
            .condition_expression("#status = :pending OR (#status = :processing AND lease_until < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()))
            .expression_attribute_values(":until", AttributeValue::N(lease.until.timestamp_millis().to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Claim::Claimed(from_item(out.attributes.as_ref().context("UpdateItem returned no item")?)?)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(match c.item.as_ref().map(from_item).transpose()? {
                        None => Claim::Missing,
                        Some(r) if r.status.is_final() => Claim::Final,
                        Some(_) => Claim::Busy,
                    })
                }
                _ => Err(anyhow::Error::new(e).context("DynamoDB UpdateItem (claim)")),
            },
        }
    }

    async fn finish(
        &self,
        id: FileId,
        lease: &Lease,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Transition> {
        let mut set = vec!["#status = :final".to_owned(), "processed_at = :at".to_owned()];
        // Final: out of the open index. (`status_id`, `status_shard`: keys of indexes gone since.)
        let mut remove =
            vec!["#open", "lease_token", "lease_until", "status_id", "status_shard", "error_code", "error_message"];
        remove.extend(ANALYSIS.map(|(_, name)| name));
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":final", s(outcome.status().as_str()))
            .expression_attribute_values(":at", s(rfc3339(&at)))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if let Some(f) = outcome.failure() {
            set.extend(["error_code = :code".to_owned(), "error_message = :message".to_owned()]);
            remove.retain(|a| !a.starts_with("error_"));
            req = req
                .expression_attribute_values(":code", s(&f.code))
                .expression_attribute_values(":message", s(&f.message));
        }
        if let Some(a) = outcome.analysis() {
            for ((placeholder, name), value) in ANALYSIS.into_iter().zip(analysis_attrs(a)) {
                if !matches!(value, AttributeValue::Null(_)) {
                    set.push(format!("{name} = {placeholder}"));
                    remove.retain(|r| *r != name);
                    req = req.expression_attribute_values(placeholder, value);
                }
            }
        }
        let update = format!("SET {} REMOVE {} ADD version :one", set.join(", "), remove.join(", "));
        conditional(req.update_expression(update).send().await, "finish")
    }

    async fn release(&self, id: FileId, lease: &Lease, expires_at: DateTime<Utc>) -> anyhow::Result<Transition> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .update_expression(
                "SET #status = :pending, expires_at = :expires REMOVE lease_token, lease_until ADD version :one",
            )
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.timestamp().to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        conditional(out, "release")
    }

    async fn admit(
        &self,
        record: &FileRecord,
        expires_at: DateTime<Utc>,
        limits: &Limits,
    ) -> anyhow::Result<Admission> {
        self.admit_within(record, expires_at, limits).await
    }

    async fn usage(&self, owner: &Owner, now: DateTime<Utc>) -> anyhow::Result<Usage> {
        self.usage_at(owner, now).await
    }

    async fn delete(&self, id: FileId) -> anyhow::Result<bool> {
        self.delete_counted(id).await
    }

    async fn keep(&self, id: FileId) -> anyhow::Result<Transition> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .update_expression("REMOVE expires_at")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .send()
            .await;
        conditional(out, "keep")
    }

    async fn stale(&self, now: DateTime<Utc>, pending_before: FileId, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let (now_ms, before) = (now.timestamp_millis(), pending_before.to_string());
        let stale = |item: &Item| match status_of(item) {
            Some(Status::Processing) => number(item, "lease_until").is_none_or(|until| until < now_ms),
            Some(Status::Pending) => item.get("id").and_then(|v| v.as_s().ok()).is_some_and(|id| *id < before),
            _ => false,
        };
        // Oldest first: what has waited longest goes first.
        let (open, _) = self.scan(&Listing::Open, None, true, 2 * n, n.saturating_mul(20), &stale).await?;
        let (mut processing, mut pending): (Vec<_>, Vec<_>) =
            open.into_iter().partition(|r| r.status == Status::Processing);
        processing.truncate(n);
        pending.truncate(n);
        processing.extend(pending);
        Ok(processing)
    }
}

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn status_of(item: &Item) -> Option<Status> {
    item.get("status")?.as_s().ok()?.parse().ok()
}

pub(super) fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// Which index a scan reads, and which of its partitions.
enum Listing<'a> {
    Owner(&'a Owner),
    All,
    Open,
}

impl DynamoCatalog {
    /// The file's item as stored, read strongly consistent.
    pub(super) async fn item(&self, id: FileId) -> anyhow::Result<Option<Item>> {
        self.item_at(HashMap::from([("id".to_owned(), s(id.to_string()))])).await
    }

    /// The item of `key` (a file's or an owner's usage), read strongly consistent.
    pub(super) async fn item_at(&self, key: Item) -> anyhow::Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB GetItem")?;
        Ok(out.item)
    }

    /// Deletes the file's item alone (files that count toward no usage).
    pub(super) async fn delete_item(&self, id: FileId) -> anyhow::Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .context("DynamoDB DeleteItem")?;
        Ok(out.attributes.is_some())
    }

    /// Up to `n` records of `scope` (of `status`, if given) in `order`, beyond `after`,
    /// reading at most `reads` records; when it stopped at that bound, the last id read.
    async fn find_reading(
        &self,
        scope: &Scope,
        status: Option<Status>,
        order: Order,
        after: Option<FileId>,
        n: usize,
        reads: usize,
    ) -> anyhow::Result<(Vec<FileRecord>, Option<FileId>)> {
        let keep = |item: &Item| status.is_none_or(|s| status_of(item) == Some(s));
        let listing = match scope {
            Scope::Owner(o) => Listing::Owner(o),
            Scope::All => Listing::All,
            Scope::Named(o, prefix) => {
                let ids = self.named_ids(o, prefix, order, after).await?;
                return self.fetch_kept(&ids, n, reads, &keep).await;
            }
        };
        self.scan(&listing, after, order == Order::Oldest, n, reads, &keep).await
    }

    /// A name search's ids: every match from `name_keys` (in name order there), put in
    /// `order`, beyond `after`.
    async fn named_ids(
        &self,
        owner: &Owner,
        prefix: &NamePrefix,
        order: Order,
        after: Option<FileId>,
    ) -> anyhow::Result<Vec<FileId>> {
        let q = Query {
            index: NAME_KEYS,
            pk: "owner",
            key: "#pk = :pk AND begins_with(name_key, :prefix)".into(),
            values: vec![(":pk", s(owner.as_str())), (":prefix", s(prefix.as_str()))],
            forward: true,
        };
        let mut ids = query_ids(&self.client, &self.table, q, MAX_NAME_MATCHES + 1).await?;
        if ids.len() > MAX_NAME_MATCHES {
            return Err(DomainError::invalid(
                "query_too_broad",
                format!("q matches over {MAX_NAME_MATCHES} of your files: type more of the name"),
            )
            .into());
        }
        ids.sort_unstable();
        if order == Order::Newest {
            ids.reverse();
        }
        ids.retain(|id| after.is_none_or(|a| order.beyond(*id, a)));
        Ok(ids)
    }

    /// The items of `ids` a batch at a time, as `scan` does: up to `n` that `keep` accepts,
    /// having read at most `reads`, and the last id read when it stopped there.
    async fn fetch_kept(
        &self,
        ids: &[FileId],
        n: usize,
        reads: usize,
        keep: &(dyn Fn(&Item) -> bool + Sync),
    ) -> anyhow::Result<(Vec<FileRecord>, Option<FileId>)> {
        let (mut found, mut read) = (Vec::with_capacity(n.min(BATCH_GET)), 0);
        while found.len() < n && read < ids.len() {
            let want = (n - found.len()).clamp(1, BATCH_GET).min(ids.len() - read);
            let chunk = &ids[read..read + want];
            read += want;
            for item in self.batch_get(chunk, false).await?.iter().filter(|i| keep(i)) {
                found.push(from_item(item)?);
            }
            if read >= reads && found.len() < n && read < ids.len() {
                return Ok((found, Some(chunk[want - 1])));
            }
        }
        found.truncate(n);
        Ok((found, None))
    }

    /// Walks an index in id order from `after`, fetching the items a batch at a time, and
    /// keeps those that `keep` accepts: up to `n` of them, having read at most `reads`.
    /// Returns them and, when it stopped at `reads` before the end, the last id read.
    async fn scan(
        &self,
        listing: &Listing<'_>,
        after: Option<FileId>,
        oldest_first: bool,
        n: usize,
        reads: usize,
        keep: &(dyn Fn(&Item) -> bool + Sync),
    ) -> anyhow::Result<(Vec<FileRecord>, Option<FileId>)> {
        let mut found = Vec::with_capacity(n.min(BATCH_GET * 10));
        let mut from = after;
        let mut read = 0;
        while found.len() < n {
            // Without a filter every record counts: ask for just what is missing.
            let want = (n - found.len()).min(reads - read).clamp(1, BATCH_GET);
            let ids = self.ids(listing, from, oldest_first, want).await?;
            let Some(&last) = ids.last() else { return Ok((found, None)) };
            read += ids.len();
            for item in self.batch_get(&ids, false).await?.iter().filter(|i| keep(i)) {
                found.push(from_item(item)?);
            }
            from = Some(last);
            if ids.len() < want {
                return Ok((found, None));
            }
            if read >= reads && found.len() < n {
                return Ok((found, Some(last)));
            }
        }
        found.truncate(n);
        Ok((found, None))
    }

    /// Up to `n` ids of the listing's index past `from`, in order (merged across shards).
    async fn ids(
        &self,
        listing: &Listing<'_>,
        from: Option<FileId>,
        oldest_first: bool,
        n: usize,
    ) -> anyhow::Result<Vec<FileId>> {
        let bound = if oldest_first { "id > :from" } else { "id < :from" };
        let query = |index: &'static str, pk: &'static str, value: String| {
            let key = if from.is_some() { format!("#pk = :pk AND {bound}") } else { "#pk = :pk".to_owned() };
            let values = [Some((":pk", s(value))), from.map(|f| (":from", s(f.to_string())))];
            Query { index, pk, key, values: values.into_iter().flatten().collect(), forward: oldest_first }
        };
        let mut ids = match listing {
            Listing::Owner(o) => {
                query_ids(&self.client, &self.table, query(OWNER_KEYS, "owner", o.as_str().into()), n).await?
            }
            Listing::All | Listing::Open => {
                let partitions: Vec<Query> = match listing {
                    Listing::Open => SHARDS
                        .iter()
                        .flat_map(|a| SHARDS.map(|b| format!("{a}{b}")))
                        .map(|hh| query(OPEN_KEYS, "open", hh))
                        .collect(),
                    _ => SHARDS.iter().map(|h| query(SHARD_KEYS, "shard", format!("file#{h}"))).collect(),
                };
                let mut running = tokio::task::JoinSet::new();
                for q in partitions {
                    let (client, table) = (self.client.clone(), self.table.clone());
                    running.spawn(async move { query_ids(&client, &table, q, n).await });
                }
                let mut all = Vec::with_capacity(n * SHARDS.len());
                while let Some(shard) = running.join_next().await {
                    all.extend(shard??);
                }
                all
            }
        };
        ids.sort_unstable();
        if !oldest_first {
            ids.reverse();
        }
        ids.truncate(n);
        Ok(ids)
    }

    /// The items of `ids`, in that order; ids whose item is gone meanwhile are skipped.
    pub(super) async fn batch_get(&self, ids: &[FileId], consistent: bool) -> anyhow::Result<Vec<Item>> {
        let mut by_id = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET) {
            let keys = chunk.iter().map(|id| HashMap::from([("id".to_owned(), s(id.to_string()))])).collect();
            let mut request =
                Some(KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(consistent).build()?);
            // DynamoDB may hand back part of a batch as unprocessed: ask again for the rest.
            while let Some(keys) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .context("DynamoDB BatchGetItem")?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let id = item.get("id").and_then(|v| v.as_s().ok()).and_then(|id| FileId::parse(id));
                    by_id.insert(id.context("item without a file id")?, item);
                }
                request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

/// One Query of an index's keys: `#pk` names its partition key (reserved words all).
struct Query {
    index: &'static str,
    pk: &'static str,
    key: String,
    values: Vec<(&'static str, AttributeValue)>,
    forward: bool,
}

/// Up to `n` ids. A page can stop early at DynamoDB's 1 MB limit: keep going until n or the end.
async fn query_ids(client: &aws_sdk_dynamodb::Client, table: &str, q: Query, n: usize) -> anyhow::Result<Vec<FileId>> {
    let mut ids = Vec::with_capacity(n.min(BATCH_GET * 10));
    let mut start = None;
    loop {
        let mut req = client
            .query()
            .table_name(table)
            .index_name(q.index)
            .key_condition_expression(&q.key)
            .expression_attribute_names("#pk", q.pk)
            .scan_index_forward(q.forward)
            .limit(i32::try_from(n - ids.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take());
        for (name, value) in &q.values {
            req = req.expression_attribute_values(*name, value.clone());
        }
        let out = req.send().await.context("DynamoDB Query")?;
        for item in out.items() {
            let id = item.get("id").and_then(|v| v.as_s().ok()).context("index entry without id")?;
            ids.push(FileId::parse(id).with_context(|| format!("index entry with a bad id {id:?}"))?);
        }
        match out.last_evaluated_key {
            Some(k) if ids.len() < n => start = Some(k),
            _ => return Ok(ids),
        }
    }
}

/// A failed condition is an answer (`Skipped`), not an error.
fn conditional<T>(
    out: Result<T, aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>>,
    what: &str,
) -> anyhow::Result<Transition> {
    match out {
        Ok(_) => Ok(Transition::Applied),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
            Ok(Transition::Skipped)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("DynamoDB UpdateItem ({what})"))),
    }
}
