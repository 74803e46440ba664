//! The DynamoDB adapter: one item per file, conditional transitions, and Queries (never a
//! Scan) on four indexes, none with a hot partition:
//! - `by_owner` (owner, id) and `by_owner_status` (owner, `status#id`): each user's listing,
//!   a partition per owner;
//! - `by_shard` (`file#H`, id) and `by_status_shard` (`status#H`, id), H the id's last hex
//!   digit: everyone's files (admins) and the sweeper, 16 partitions read and merged in order.

use std::collections::HashMap;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Claim, Lease, Outcome, Scope, Transition};
use crate::domain::{
    Analysis, ContentType, Failure, FileId, FileName, FileRecord, FileSize, KeyLayout, MultipartUpload, Owner, Status,
    rfc3339,
};
use crate::integrity::Sha256Digest;

const BY_OWNER: &str = "by_owner";
const BY_OWNER_STATUS: &str = "by_owner_status";
const BY_SHARD: &str = "by_shard";
const BY_STATUS_SHARD: &str = "by_status_shard";
/// The shards of the all-files indexes: the last hex digit of the (random) end of a UUIDv7.
const SHARDS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'];

fn shard_of(id: FileId) -> char {
    id.to_string().chars().last().unwrap_or('0')
}

/// The index keys that follow the status; set with it by every transition.
fn status_keys(status: Status, id: FileId) -> [(&'static str, &'static str, AttributeValue); 3] {
    let h = shard_of(id);
    [
        ("status_id", ":status_id", s(format!("{status}#{id}"))),
        ("status_shard", ":status_shard", s(format!("{status}#{h}"))),
        ("shard", ":shard", s(format!("file#{h}"))),
    ]
}

/// `SET` clauses for [`status_keys`]; `shard` only fills in what records from before lacked.
/// (`shard` is a reserved word: the updates name it `#shard`.)
const STATUS_KEYS_SET: &str =
    "status_id = :status_id, status_shard = :status_shard, #shard = if_not_exists(#shard, :shard)";

pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCatalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn to_item(r: &FileRecord, expires_at: DateTime<Utc>) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".into(), s(r.id.to_string())),
        ("filename".into(), s(r.filename.as_str())),
        ("content_type".into(), s(r.content_type.as_str())),
        ("size".into(), AttributeValue::N(r.size.bytes().to_string())),
        ("status".into(), s(r.status.as_str())),
        ("uploaded_at".into(), s(rfc3339(&r.uploaded_at))),
        ("expires_at".into(), AttributeValue::N(expires_at.timestamp().to_string())),
    ]);
    if let Some(o) = &r.owner {
        item.insert("owner".into(), s(o.as_str()));
    }
    for (name, _, value) in status_keys(r.status, r.id) {
        item.insert(name.into(), value);
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

fn from_item(item: &HashMap<String, AttributeValue>) -> anyhow::Result<FileRecord> {
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
        attempts: item.get("attempts").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0),
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .context("DynamoDB GetItem")?;
        out.item.as_ref().map(from_item).transpose()
    }

    async fn newest(
        &self,
        scope: &Scope,
        status: Option<Status>,
        after: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        let after_id = after.map(|a| (":after", s(a.to_string())));
        match (scope, status) {
            (Scope::Owner(o), None) => {
                let key = if after.is_some() { "#owner = :o AND id < :after" } else { "#owner = :o" };
                let values = [Some((":o", s(o.as_str()))), after_id].into_iter().flatten().collect();
                self.query(Query::newest(BY_OWNER, key, values), n).await
            }
            (Scope::Owner(o), Some(st)) => {
                // `status#id` sorts by id within a status; BETWEEN includes its upper end, so
                // one more is read and the cursor's own record dropped.
                let (key, hi) = match after {
                    Some(a) => ("#owner = :o AND status_id BETWEEN :lo AND :hi", Some(format!("{st}#{a}"))),
                    None => ("#owner = :o AND begins_with(status_id, :lo)", None),
                };
                let values =
                    [Some((":o", s(o.as_str()))), Some((":lo", s(format!("{st}#")))), hi.map(|h| (":hi", s(h)))];
                let q = Query::newest(BY_OWNER_STATUS, key, values.into_iter().flatten().collect());
                let mut items = self.query(q, n + usize::from(after.is_some())).await?;
                items.retain(|r| Some(r.id) != after);
                items.truncate(n);
                Ok(items)
            }
            (Scope::All, _) => {
                let (index, prefix) = match status {
                    None => (BY_SHARD, "file".to_owned()),
                    Some(st) => (BY_STATUS_SHARD, st.to_string()),
                };
                let key = if after.is_some() { "#p = :p AND id < :after" } else { "#p = :p" };
                let pk = if status.is_some() { "status_shard" } else { "shard" };
                self.across_shards(n, false, |h| {
                    let values = [Some((":p", s(format!("{prefix}#{h}")))), after_id.clone()];
                    Query {
                        names: vec![("#p", pk)],
                        ..Query::newest(index, key, values.into_iter().flatten().collect())
                    }
                })
                .await
            }
        }
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
            .update_expression(format!(
                "SET #status = :processing, lease_token = :token, lease_until = :until, {STATUS_KEYS_SET} \
                 REMOVE expires_at ADD attempts :one"
            ))
            .expression_attribute_names("#shard", "shard")
            .set_expression_attribute_values(Some(status_values(Status::Processing, id)))
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
        let mut set = vec!["#status = :final".to_owned(), "processed_at = :at".to_owned(), STATUS_KEYS_SET.to_owned()];
        let mut remove = vec!["lease_token", "lease_until", "error_code", "error_message"];
        remove.extend(ANALYSIS.map(|(_, name)| name));
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#shard", "shard")
            .set_expression_attribute_values(Some(status_values(outcome.status(), id)))
            .expression_attribute_values(":final", s(outcome.status().as_str()))
            .expression_attribute_values(":at", s(rfc3339(&at)))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()));
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
        let update = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        conditional(req.update_expression(update).send().await, "finish")
    }

    async fn release(&self, id: FileId, lease: &Lease, expires_at: DateTime<Utc>) -> anyhow::Result<Transition> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .update_expression(format!(
                "SET #status = :pending, expires_at = :expires, {STATUS_KEYS_SET} REMOVE lease_token, lease_until"
            ))
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#shard", "shard")
            .set_expression_attribute_values(Some(status_values(Status::Pending, id)))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.timestamp().to_string()))
            .send()
            .await;
        conditional(out, "release")
    }

    async fn delete(&self, id: FileId) -> anyhow::Result<bool> {
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
        let now_ms = AttributeValue::N(now.timestamp_millis().to_string());
        let mut records = self
            .across_shards(n, true, |h| Query {
                filter: Some("lease_until < :now"),
                forward: true,
                ..Query::newest(
                    BY_STATUS_SHARD,
                    "status_shard = :p",
                    vec![(":p", s(format!("{}#{h}", Status::Processing))), (":now", now_ms.clone())],
                )
            })
            .await?;
        let before = s(pending_before.to_string());
        let pending = self
            .across_shards(n, true, |h| Query {
                forward: true,
                ..Query::newest(
                    BY_STATUS_SHARD,
                    "status_shard = :p AND id < :before",
                    vec![(":p", s(format!("{}#{h}", Status::Pending))), (":before", before.clone())],
                )
            })
            .await?;
        records.extend(pending);
        Ok(records)
    }
}

/// Expression values of [`status_keys`].
fn status_values(status: Status, id: FileId) -> HashMap<String, AttributeValue> {
    status_keys(status, id).into_iter().map(|(_, placeholder, v)| (placeholder.to_owned(), v)).collect()
}

/// One Query on an index.
#[derive(Clone)]
struct Query {
    index: &'static str,
    key: &'static str,
    values: Vec<(&'static str, AttributeValue)>,
    names: Vec<(&'static str, &'static str)>,
    filter: Option<&'static str>,
    forward: bool,
}

impl Query {
    /// Newest first, `#owner` and `#status` named (both are reserved words).
    fn newest(index: &'static str, key: &'static str, values: Vec<(&'static str, AttributeValue)>) -> Self {
        Self { index, key, values, names: Vec::new(), filter: None, forward: false }
    }
}

impl DynamoCatalog {
    /// Up to `n` items. A page can stop early at DynamoDB's 1 MB limit or after filtering:
    /// keep going until n items or the end.
    async fn query(&self, q: Query, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        query(&self.client, &self.table, q, n).await
    }

    /// The same query on every shard at once, merged in id order: `n` items in all.
    async fn across_shards(
        &self,
        n: usize,
        oldest_first: bool,
        query_of: impl Fn(char) -> Query,
    ) -> anyhow::Result<Vec<FileRecord>> {
        let mut running = tokio::task::JoinSet::new();
        for h in SHARDS {
            let (client, table, q) = (self.client.clone(), self.table.clone(), query_of(h));
            running.spawn(async move { query(&client, &table, q, n).await });
        }
        let mut all = Vec::with_capacity(n * SHARDS.len());
        while let Some(shard) = running.join_next().await {
            all.extend(shard??);
        }
        all.sort_unstable_by_key(|r| r.id);
        if !oldest_first {
            all.reverse();
        }
        all.truncate(n);
        Ok(all)
    }
}

async fn query(client: &aws_sdk_dynamodb::Client, table: &str, q: Query, n: usize) -> anyhow::Result<Vec<FileRecord>> {
    let mut items = Vec::with_capacity(n);
    let mut start = None;
    loop {
        let mut req = client
            .query()
            .table_name(table)
            .index_name(q.index)
            .key_condition_expression(q.key)
            .set_filter_expression(q.filter.map(Into::into))
            .scan_index_forward(q.forward)
            .limit(i32::try_from(n - items.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take());
        for (placeholder, name) in [("#status", "status"), ("#owner", "owner")] {
            if q.key.contains(placeholder) {
                req = req.expression_attribute_names(placeholder, name);
            }
        }
        for (placeholder, name) in &q.names {
            req = req.expression_attribute_names(*placeholder, *name);
        }
        for (name, value) in &q.values {
            req = req.expression_attribute_values(*name, value.clone());
        }
        let out = req.send().await.context("DynamoDB Query")?;
        for item in out.items() {
            items.push(from_item(item)?);
        }
        match out.last_evaluated_key {
            Some(k) if items.len() < n => start = Some(k),
            _ => return Ok(items),
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
