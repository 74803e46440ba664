//! The files table's stream as changes: each record's old and new images read as the
//! catalog reads its items. Items that are not files (per-user usage) are no change.

use std::collections::HashMap;

use anyhow::Context;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::from_item;
use crate::change::Change;
use crate::domain::{FileId, FileRecord};

fn image(item: &serde_dynamo::Item) -> anyhow::Result<Option<FileRecord>> {
    let item = HashMap::<String, AttributeValue>::from(item.clone());
    if item.is_empty() {
        return Ok(None);
    }
    from_item(&item).map(Some)
}

/// The change one stream record carries, if it is an event. An image that is not a valid file
/// record is an error: retried, then kept in the on-failure queue, never dropped unseen.
pub fn change_of(record: &EventRecord) -> anyhow::Result<Option<Change>> {
    let file = match record.change.keys.get("id") {
        Some(serde_dynamo::AttributeValue::S(id)) => FileId::parse(id),
        _ => None,
    };
    if file.is_none() {
        return Ok(None);
    }
    let old = image(&record.change.old_image).context("the stream record's old image")?;
    let new = image(&record.change.new_image).context("the stream record's new image")?;
    Ok(Change::between(old.as_ref(), new.as_ref(), record.change.approximate_creation_date_time))
}
