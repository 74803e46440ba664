//! What a write costs in DynamoDB write units, from the item as it was before and after the
//! write and the table's indexes, by DynamoDB's documented rules. Emulators do not model
//! index writes, so the tests and the cost bench count them here, from the images the
//! table's stream records:
//! - the table: the larger of the two images, in 1 KB steps (at least 1; a delete counts the
//!   deleted item);
//! - each global secondary index: nothing when neither image has the index's keys; a put when
//!   only the new one has them, a delete when only the old one has; a delete and a put when
//!   its key changed; an update when a projected attribute changed; each index entry sized as
//!   its projected attributes plus 100 bytes, in 1 KB steps.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, TableDescription};

pub type Item = HashMap<String, AttributeValue>;

/// The table's key and its global secondary indexes, as DescribeTable tells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    pub keys: Vec<String>,
    pub indexes: Vec<IndexShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShape {
    pub name: String,
    pub keys: Vec<String>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    KeysOnly,
    Include(Vec<String>),
    All,
}

impl TableShape {
    pub fn of(table: &TableDescription) -> Self {
        let names = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            k.iter().map(|e| e.attribute_name().to_owned()).collect::<Vec<_>>()
        };
        let indexes = table
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let p = i.projection();
                let projection = match p.and_then(|p| p.projection_type()) {
                    Some(ProjectionType::All) => Projection::All,
                    Some(ProjectionType::Include) => {
                        Projection::Include(p.map(|p| p.non_key_attributes().to_vec()).unwrap_or_default())
                    }
                    _ => Projection::KeysOnly,
                };
                IndexShape {
                    name: i.index_name().unwrap_or_default().to_owned(),
                    keys: names(i.key_schema()),
                    projection,
                }
            })
            .collect();
        Self { keys: names(table.key_schema()), indexes }
    }
}

/// The units of one write: the table's, and each index's that it touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteUnits {
    pub table: u64,
    pub indexes: BTreeMap<String, u64>,
}

impl WriteUnits {
    pub fn total(&self) -> u64 {
        self.table + self.indexes.values().sum::<u64>()
    }

    /// The same write made in a transaction: DynamoDB writes each item twice (prepare and
    /// commit); its indexes are updated once, as for any write.
    pub fn transactional(self) -> Self {
        Self { table: 2 * self.table, ..self }
    }
}

impl std::ops::AddAssign<&WriteUnits> for WriteUnits {
    fn add_assign(&mut self, other: &WriteUnits) {
        self.table += other.table;
        for (name, units) in &other.indexes {
            *self.indexes.entry(name.clone()).or_default() += units;
        }
    }
}

/// The units of the write that turned `old` into `new` (None: the item did not exist, or no
/// longer does).
pub fn write_units(shape: &TableShape, old: Option<&Item>, new: Option<&Item>) -> WriteUnits {
    let table = old.map_or(0, item_size).max(new.map_or(0, item_size));
    let mut units = WriteUnits { table: kb_steps(table), indexes: BTreeMap::new() };
    for index in &shape.indexes {
        let entry = |item: Option<&Item>| item.and_then(|i| index_entry(shape, index, i));
        let n = match (entry(old), entry(new)) {
            (None, None) => 0,
            (None, Some(e)) | (Some(e), None) => kb_steps(entry_size(&e)),
            (Some(a), Some(b)) if index.keys.iter().any(|k| a.get(k) != b.get(k)) => {
                kb_steps(entry_size(&a)) + kb_steps(entry_size(&b))
            }
            (Some(a), Some(b)) if a != b => kb_steps(entry_size(&a).max(entry_size(&b))),
            _ => 0,
        };
        if n > 0 {
            units.indexes.insert(index.name.clone(), n);
        }
    }
    units
}

/// The attributes an index holds for an item, or None when the item lacks the index's keys
/// (a sparse index has no entry for it).
fn index_entry(shape: &TableShape, index: &IndexShape, item: &Item) -> Option<Item> {
    if !index.keys.iter().all(|k| item.contains_key(k)) {
        return None;
    }
    let keep = |name: &str| {
        shape.keys.iter().chain(&index.keys).any(|k| k == name)
            || match &index.projection {
                Projection::All => true,
                Projection::Include(names) => names.iter().any(|n| n == name),
                Projection::KeysOnly => false,
            }
    };
    Some(item.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// 100 bytes of overhead per index entry, on top of its attributes.
fn entry_size(entry: &Item) -> usize {
    item_size(entry) + 100
}

fn kb_steps(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(1024).max(1)
}

/// DynamoDB's size of an item: each attribute's name plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    use AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => number_size(n),
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(v) => v.iter().map(String::len).sum(),
        A::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        A::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        // 3 bytes for the document, 1 per element, plus the elements.
        A::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        A::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum::<usize>(),
        _ => 0,
    }
}

/// About one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits = n.trim_start_matches('-').replace('.', "");
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    significant.len().div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn shape() -> TableShape {
        let index = |name: &str, keys: &[&str], projection| IndexShape {
            name: name.into(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            projection,
        };
        TableShape {
            keys: vec!["id".into()],
            indexes: vec![
                index("all", &["owner", "id"], Projection::All),
                index("keys", &["shard", "id"], Projection::KeysOnly),
                index("sparse", &["open", "id"], Projection::KeysOnly),
                index("moving", &["status_id"], Projection::KeysOnly),
            ],
        }
    }

    #[test]
    fn a_put_writes_the_table_and_every_index_it_has_keys_for() {
        let new = item(&[("id", s("1")), ("owner", s("a")), ("shard", s("f#1")), ("status", s("pending"))]);
        let u = write_units(&shape(), None, Some(&new));
        assert_eq!(u.table, 1);
        assert_eq!(u.indexes, BTreeMap::from([("all".into(), 1), ("keys".into(), 1)]));
        assert_eq!(u.total(), 3);
    }

    #[test]
    fn an_update_costs_only_the_indexes_whose_entry_changed() {
        let old = item(&[("id", s("1")), ("owner", s("a")), ("shard", s("f#1")), ("open", s("1")), ("status", s("p"))]);
        let mut new = old.clone();
        new.insert("status".into(), s("q"));
        // `all` projects status: an update there; the keys-only indexes are untouched.
        let u = write_units(&shape(), Some(&old), Some(&new));
        assert_eq!((u.table, u.indexes.clone()), (1, BTreeMap::from([("all".into(), 1)])));
        // Dropping the sparse key deletes its entry.
        new.remove("open");
        assert_eq!(write_units(&shape(), Some(&old), Some(&new)).indexes.get("sparse"), Some(&1));
        // A key that moves is a delete and a put.
        let (mut a, mut b) = (old.clone(), old.clone());
        a.insert("status_id".into(), s("p#1"));
        b.insert("status_id".into(), s("q#1"));
        assert_eq!(write_units(&shape(), Some(&a), Some(&b)).indexes.get("moving"), Some(&2));
    }

    #[test]
    fn sizes_go_in_kilobyte_steps_by_the_larger_image() {
        let small = item(&[("id", s("1"))]);
        let big = item(&[("id", s("1")), ("blob", s(&"x".repeat(2000)))]);
        assert_eq!(write_units(&shape(), Some(&big), Some(&small)).table, 2, "the larger of the two");
        assert_eq!(write_units(&shape(), Some(&big), None).table, 2, "a delete counts what it deleted");
        assert_eq!(item_size(&item(&[("n", AttributeValue::N("12345".into()))])), 1 + 4);
        assert_eq!(item_size(&item(&[("n", AttributeValue::N("-100".into()))])), 1 + 2);
    }
}

/// The table's changes as its stream (`NEW_AND_OLD_IMAGES`) records them, for the tests and
/// the cost bench.
#[cfg(feature = "audit")]
pub mod stream {
    use anyhow::Context;
    use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};

    use super::{AttributeValue, Item};

    /// One committed write: the item before and after it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Change {
        pub old: Option<Item>,
        pub new: Option<Item>,
    }

    impl Change {
        /// The `id` of the item written.
        pub fn id(&self) -> Option<&str> {
            let image = self.new.as_ref().or(self.old.as_ref())?;
            image.get("id")?.as_s().ok().map(String::as_str)
        }

        /// Whether the catalog makes this write in a transaction (as `aws::usage` does): a
        /// file of an owner deleted, with its owner's usage item, and that item's write. An
        /// admission writes the usage (adding the file's slot) and then the file, each alone.
        pub fn transactional(&self) -> bool {
            if self.id().is_some_and(|id| id.starts_with("usage#")) {
                return !self.adds_slot();
            }
            self.new.is_none() && self.old.as_ref().is_some_and(|i| i.contains_key("owner"))
        }

        fn adds_slot(&self) -> bool {
            let slots = |i: &Option<Item>| match i.as_ref().and_then(|i| i.get("slots")) {
                Some(AttributeValue::M(m)) => m.keys().cloned().collect(),
                _ => std::collections::BTreeSet::new(),
            };
            !slots(&self.new).is_subset(&slots(&self.old))
        }
    }

    /// Every change the stream of `table` holds, in the order they were committed.
    pub async fn changes(sdk: &aws_config::SdkConfig, table: &str) -> anyhow::Result<Vec<Change>> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let described = ddb.describe_table().table_name(table).send().await.context("DescribeTable")?;
        let arn = described.table().and_then(|t| t.latest_stream_arn()).context("the table has no stream")?;
        let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
        let stream = streams.describe_stream().stream_arn(arn).send().await.context("DescribeStream")?;
        let mut records = Vec::new();
        for shard in stream.stream_description().map(|d| d.shards()).unwrap_or_default() {
            let mut iterator = streams
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard.shard_id().unwrap_or_default())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .context("GetShardIterator")?
                .shard_iterator;
            // An open shard always hands out a next iterator: stop at the first empty read.
            while let Some(it) = iterator {
                let out = streams.get_records().shard_iterator(it).send().await.context("GetRecords")?;
                if out.records().is_empty() {
                    break;
                }
                records.extend(out.records().iter().filter_map(|r| r.dynamodb().cloned()));
                iterator = out.next_shard_iterator;
            }
        }
        records.sort_by_key(|r| r.sequence_number().map(|s| s.parse::<u128>().unwrap_or(0)));
        Ok(records.into_iter().map(|r| Change { old: r.old_image.map(item), new: r.new_image.map(item) }).collect())
    }

    fn item(image: std::collections::HashMap<String, StreamValue>) -> Item {
        image.into_iter().map(|(k, v)| (k, value(v))).collect()
    }

    fn value(v: StreamValue) -> AttributeValue {
        use AttributeValue as A;
        use aws_sdk_dynamodb::primitives::Blob;
        match v {
            StreamValue::S(s) => A::S(s),
            StreamValue::N(n) => A::N(n),
            StreamValue::B(b) => A::B(Blob::new(b.into_inner())),
            StreamValue::Bool(b) => A::Bool(b),
            StreamValue::Null(n) => A::Null(n),
            StreamValue::Ss(v) => A::Ss(v),
            StreamValue::Ns(v) => A::Ns(v),
            StreamValue::Bs(v) => A::Bs(v.into_iter().map(|b| Blob::new(b.into_inner())).collect()),
            StreamValue::L(v) => A::L(v.into_iter().map(value).collect()),
            StreamValue::M(m) => A::M(item(m)),
            _ => A::Null(true),
        }
    }
}
