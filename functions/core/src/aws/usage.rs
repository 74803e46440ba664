//! Per-owner usage on DynamoDB: one item per owner, `usage#{owner}`, beside the files, with
//! `slots` (file id → size: the files that may still be pending), `bytes` (of all the owner's
//! files) and `version`, which every write of it checks and moves.
//!
//! A new file's slot is written into that item (conditional on its version, so two requests
//! at a limit admit exactly one) before the file itself. The other transitions do not write
//! it: a slot is settled when the usage is next read, by looking at its file. A final file
//! leaves the slots and keeps its bytes; a file gone (its slot expired and DynamoDB's TTL
//! dropped it, or its creation never committed) or past its expiry gives both back. So the
//! claim and the verdict stay single writes, and only admitting (one write) and deleting (a
//! transaction with the file, so no byte is given back for a file that stays) pay for the
//! quota. Slots are settled when a limit would be reached or when there are [`SETTLE_AT`] of
//! them, so the item stays small.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::dynamo::{DynamoCatalog, Item, number, s, status_of};
use crate::catalog::{Admission, Limits, Usage};
use crate::domain::{FileId, FileRecord, Owner, Status};

/// A missing file younger than this may be one whose creation is committing right now.
const IN_FLIGHT: chrono::Duration = chrono::Duration::seconds(60);
/// Slots kept before they are settled: the usage item stays under 1 KB (one write unit).
const SETTLE_AT: usize = 8;
/// Writers of one owner's usage that collide retry this many times, after a random pause
/// that grows (a browser sending a folder asks for many slots at once).
const ATTEMPTS: u32 = 40;

fn usage_key(owner: &Owner) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), s(format!("usage#{owner}")))])
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The usage item as read: version 0 when there is none yet.
struct Held {
    slots: HashMap<String, u64>,
    bytes: u64,
    version: u64,
}

/// What reading the slots' files showed.
struct Settled {
    usage: Usage,
    /// Slots to drop: their files are final, gone or expired.
    dropped: Vec<String>,
}

impl DynamoCatalog {
    async fn held(&self, owner: &Owner) -> anyhow::Result<Held> {
        let item = self.item_at(usage_key(owner)).await?.unwrap_or_default();
        let slots = match item.get("slots") {
            Some(AttributeValue::M(m)) => {
                m.iter().filter_map(|(id, size)| Some((id.clone(), size.as_n().ok()?.parse().ok()?))).collect()
            }
            _ => HashMap::new(),
        };
        let count = |k: &str| number(&item, k).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        Ok(Held { slots, bytes: count("bytes"), version: count("version") })
    }

    /// Looks at each slot's file: which still count as pending, and what the bytes are once
    /// gone and expired files give theirs back.
    async fn settle(&self, held: &Held, now: DateTime<Utc>) -> anyhow::Result<Settled> {
        let ids: Vec<FileId> = held.slots.keys().filter_map(|id| FileId::parse(id)).collect();
        let files: HashMap<String, Item> = self
            .batch_get(&ids, true)
            .await?
            .into_iter()
            .filter_map(|item| Some((item.get("id")?.as_s().ok()?.clone(), item)))
            .collect();
        let mut settled = Settled { usage: Usage { pending: 0, bytes: held.bytes }, dropped: Vec::new() };
        for (id, &size) in &held.slots {
            let file = files.get(id);
            let gone = match file {
                None => FileId::parse(id).is_none_or(|f| f.created_at() < now - IN_FLIGHT),
                Some(item) => number(item, "expires_at").is_some_and(|e| e <= now.timestamp()),
            };
            if gone {
                settled.usage.bytes = settled.usage.bytes.saturating_sub(size);
            }
            if gone || file.and_then(status_of).is_some_and(Status::is_final) {
                settled.dropped.push(id.clone());
            } else {
                settled.usage.pending += 1;
            }
        }
        Ok(settled)
    }

    pub(super) async fn usage_at(&self, owner: &Owner, now: DateTime<Utc>) -> anyhow::Result<Usage> {
        Ok(self.settle(&self.held(owner).await?, now).await?.usage)
    }

    /// Admits a new file: its slot is written into the owner's usage first, conditional on
    /// the version read (two requests at a limit admit exactly one), then the file. Two
    /// writes, not one transaction, which DynamoDB bills twice per item; the order makes the
    /// gap harmless: a slot whose file never commits (a crash between, a failed put) counts
    /// as pending until it is settled like any missing file, [`IN_FLIGHT`] later. Usage may
    /// count too much for that minute, never too little.
    pub(super) async fn admit_within(
        &self,
        record: &FileRecord,
        expires_at: DateTime<Utc>,
        limits: &Limits,
    ) -> anyhow::Result<Admission> {
        let Some(owner) = &record.owner else {
            return crate::catalog::Catalog::insert(self, record, expires_at).await.map(|()| Admission::Admitted);
        };
        let size = record.size.bytes();
        for attempt in 0..ATTEMPTS {
            pause(attempt).await;
            let held = self.held(owner).await?;
            // Every slot counted as pending, every byte kept: more than the truth, so a file
            // that fits this fits. Settling (a read per slot) waits for a limit or a crowd.
            let unsettled = Usage { pending: held.slots.len() as u64, bytes: held.bytes };
            let settled = if held.slots.len() < SETTLE_AT && limits.broken_by(unsettled, size).is_none() {
                Settled { usage: unsettled, dropped: Vec::new() }
            } else {
                self.settle(&held, record.uploaded_at).await?
            };
            if let Some(over) = limits.broken_by(settled.usage, size) {
                return Ok(Admission::Refused(over, settled.usage));
            }
            // Someone else wrote this owner's usage meanwhile: read it again.
            if !self.reserve(owner, &held, &settled, record.id, size).await? {
                continue;
            }
            crate::catalog::Catalog::insert(self, record, expires_at).await?;
            return Ok(Admission::Admitted);
        }
        anyhow::bail!("the usage of {owner} kept changing under {ATTEMPTS} attempts")
    }

    /// Writes the slot of file `id` into the usage read as `held`; false when that usage
    /// changed meanwhile.
    async fn reserve(
        &self,
        owner: &Owner,
        held: &Held,
        settled: &Settled,
        id: FileId,
        size: u64,
    ) -> anyhow::Result<bool> {
        if held.version == 0 {
            // The owner's first file: the item is made with its slot in it.
            let mut item = usage_key(owner);
            item.extend([
                ("slots".to_owned(), AttributeValue::M(HashMap::from([(id.to_string(), n(size))]))),
                ("bytes".to_owned(), n(size)),
                ("version".to_owned(), n(1)),
            ]);
            let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
            return written(put.condition_expression("attribute_not_exists(id)").send().await, "PutItem");
        }
        let u =
            self.usage_update(owner, held, settled.usage.bytes + size, Some((id, size)), &settled.dropped).build()?;
        let update = self
            .client
            .update_item()
            .table_name(u.table_name)
            .set_key(Some(u.key))
            .update_expression(u.update_expression)
            .set_condition_expression(u.condition_expression)
            .set_expression_attribute_names(u.expression_attribute_names)
            .set_expression_attribute_values(u.expression_attribute_values);
        written(update.send().await, "UpdateItem")
    }

    /// A delete that gives the file's bytes (and its slot, if pending) back, in one step.
    pub(super) async fn delete_counted(&self, id: FileId) -> anyhow::Result<bool> {
        for attempt in 0..ATTEMPTS {
            pause(attempt).await;
            let Some(item) = self.item(id).await? else { return Ok(false) };
            let owner = item.get("owner").and_then(|v| v.as_s().ok()).and_then(|o| Owner::parse(o));
            let size = number(&item, "size").and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            let Some(owner) = owner else { return self.delete_item(id).await };
            let held = self.held(&owner).await?;
            // An expired slot already gave its bytes back once settled (only its slot says
            // it has not), and files from before usage was counted are not in it.
            let expired = number(&item, "expires_at").is_some_and(|e| e <= crate::domain::now().timestamp());
            let counted = !expired || held.slots.contains_key(&id.to_string());
            if held.version == 0 || !counted || held.bytes < size {
                return self.delete_item(id).await;
            }
            let update = self.usage_update(&owner, &held, held.bytes - size, None, &[id.to_string()]).build()?;
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("id", s(id.to_string()))
                .condition_expression("attribute_exists(id)")
                .build()?;
            let items = [
                TransactWriteItem::builder().delete(delete).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            match self.transact(items).await? {
                Committed::Yes => return Ok(true),
                Committed::No(reasons) if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") => {
                    return Ok(false);
                }
                Committed::No(_) => continue,
            }
        }
        anyhow::bail!("the usage of the owner of {id} kept changing under {ATTEMPTS} attempts")
    }

    /// The usage item's update, conditional on the version read: `bytes` set, a new `slot`
    /// added, `dropped` slots removed.
    fn usage_update(
        &self,
        owner: &Owner,
        held: &Held,
        bytes: u64,
        slot: Option<(FileId, u64)>,
        dropped: &[String],
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let mut set = vec!["bytes = :bytes", "version = :next"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(usage_key(owner)))
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":next", n(held.version + 1));
        // Only an existing item is updated: the first file's admission puts it whole.
        update =
            update.condition_expression("version = :version").expression_attribute_values(":version", n(held.version));
        if let Some((id, size)) = slot {
            set.push("slots.#new = :size");
            update =
                update.expression_attribute_names("#new", id.to_string()).expression_attribute_values(":size", n(size));
        }
        let mut expr = format!("SET {}", set.join(", "));
        let dropped: Vec<&String> = dropped.iter().filter(|d| held.slots.contains_key(*d)).collect();
        if !dropped.is_empty() {
            let names: Vec<String> = (0..dropped.len()).map(|i| format!("#d{i}")).collect();
            let paths: Vec<String> = names.iter().map(|n| format!("slots.{n}")).collect();
            expr = format!("{expr} REMOVE {}", paths.join(", "));
            for (name, id) in names.iter().zip(dropped) {
                update = update.expression_attribute_names(name, id.as_str());
            }
        }
        update.update_expression(expr)
    }

    async fn transact(&self, items: [TransactWriteItem; 2]) -> anyhow::Result<Committed> {
        match self.client.transact_write_items().set_transact_items(Some(items.to_vec())).send().await {
            Ok(_) => Ok(Committed::Yes),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => Ok(Committed::No(
                    c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect(),
                )),
                // Another transaction on the same items at the same moment.
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => Ok(Committed::No(Vec::new())),
                _ => Err(anyhow::Error::new(e).context("DynamoDB TransactWriteItems")),
            },
        }
    }
}

/// Whether a conditional write was made: false when its condition failed.
fn written<T, E>(out: Result<T, SdkError<E>>, what: &str) -> anyhow::Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("DynamoDB {what} (usage)"))),
    }
}

/// Before a retry: a random pause of up to 5 ms, doubling each attempt up to 160 ms, so
/// writers that collided do not collide again.
async fn pause(attempt: u32) {
    if attempt > 0 {
        let most = 5u64 << attempt.min(5);
        let ms = (uuid::Uuid::new_v4().as_u128() % u128::from(most)) as u64 + 1;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Whether a transaction committed; if not, each item's reason (`ConditionalCheckFailed`, `None`…).
enum Committed {
    Yes,
    No(Vec<String>),
}
