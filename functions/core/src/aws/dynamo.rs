//! The DynamoDB adapter: one item per file, conditional transitions, Queries on the
//! `by_time` and `by_status` indexes (never a Scan).

use std::collections::HashMap;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Claim, Lease, Outcome, Transition};
use crate::domain::{Analysis, ContentType, Failure, FileId, FileName, FileRecord, FileSize, Status, rfc3339};

/// Partition key shared by every item in the `by_time` index, which serves the unfiltered listing.
const LIST_PK: &str = "file";
const BY_TIME: &str = "by_time";
const BY_STATUS: &str = "by_status";

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
        ("list_pk".into(), s(LIST_PK)),
        ("filename".into(), s(r.filename.as_str())),
        ("content_type".into(), s(r.content_type.as_str())),
        ("size".into(), AttributeValue::N(r.size.bytes().to_string())),
        ("status".into(), s(r.status.as_str())),
        ("uploaded_at".into(), s(rfc3339(&r.uploaded_at))),
        ("expires_at".into(), AttributeValue::N(expires_at.timestamp().to_string())),
    ]);
    if let Some(t) = &r.processed_at {
        item.insert("processed_at".into(), s(rfc3339(t)));
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

    async fn newest(&self, status: Option<Status>, after: Option<FileId>, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let (index, hash) = match status {
            None => (BY_TIME, "list_pk = :p"),
            Some(_) => (BY_STATUS, "#status = :p"),
        };
        let q = Query {
            index,
            key: match after {
                Some(_) => format!("{hash} AND id < :after"),
                None => hash.to_owned(),
            },
            values: [
                Some((":p", s(status.map_or(LIST_PK, Status::as_str)))),
                after.map(|a| (":after", s(a.to_string()))),
            ],
            filter: None,
            forward: false,
        };
        self.query(q, n).await
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
                "SET #status = :processing, lease_token = :token, lease_until = :until REMOVE expires_at ADD attempts :one",
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
        let mut remove = vec!["lease_token", "lease_until", "error_code", "error_message"];
        remove.extend(ANALYSIS.map(|(_, name)| name));
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.to_string()))
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
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
            .update_expression("SET #status = :pending, expires_at = :expires REMOVE lease_token, lease_until")
            .condition_expression("#status = :processing AND lease_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":processing", s(Status::Processing.as_str()))
            .expression_attribute_values(":token", s(lease.token.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.timestamp().to_string()))
            .send()
            .await;
        conditional(out, "release")
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
        let expired = Query {
            index: BY_STATUS,
            key: "#status = :p".into(),
            values: [
                Some((":p", s(Status::Processing.as_str()))),
                Some((":now", AttributeValue::N(now.timestamp_millis().to_string()))),
            ],
            filter: Some("lease_until < :now"),
            forward: true,
        };
        let old = Query {
            index: BY_STATUS,
            key: "#status = :p AND id < :before".into(),
            values: [Some((":p", s(Status::Pending.as_str()))), Some((":before", s(pending_before.to_string())))],
            filter: None,
            forward: true,
        };
        let mut records = self.query(expired, n).await?;
        records.extend(self.query(old, n).await?);
        Ok(records)
    }
}

/// One Query on an index; `#status` always names the status attribute.
struct Query {
    index: &'static str,
    key: String,
    values: [Option<(&'static str, AttributeValue)>; 2],
    filter: Option<&'static str>,
    forward: bool,
}

impl DynamoCatalog {
    /// Up to `n` items. A page can stop early at DynamoDB's 1 MB limit or after filtering:
    /// keep going until n items or the end.
    async fn query(&self, q: Query, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        let mut items = Vec::with_capacity(n);
        let mut start = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(q.index)
                .key_condition_expression(&q.key)
                .set_filter_expression(q.filter.map(Into::into))
                .scan_index_forward(q.forward)
                .limit(i32::try_from(n - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if q.key.contains("#status") {
                req = req.expression_attribute_names("#status", "status");
            }
            for (name, value) in q.values.iter().flatten() {
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
