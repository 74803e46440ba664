//! What one upload costs in DynamoDB write units, counted from the table's stream: each
//! committed write's item before and after, priced by DynamoDB's rules for the table and its
//! indexes (`picasso::aws::capacity`; the emulator's own `ConsumedCapacity` ignores indexes).

use std::collections::BTreeMap;

use picasso::aws::capacity::stream::{Change, changes};
use picasso::aws::capacity::{TableShape, write_units};

use crate::e2e::env;

async fn table_shape(sdk: &aws_config::SdkConfig, table: &str) -> TableShape {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let described = ddb.describe_table().table_name(table).send().await.unwrap();
    TableShape::of(described.table().unwrap())
}

fn units_of(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn one_upload_writes_each_index_once_and_its_claim_and_verdict_only_the_table_counted_from_the_stream() {
    let env = env().await;
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let table = std::env::var("TABLE_NAME").unwrap();
    let shape = table_shape(&sdk, &table).await;
    assert_eq!(
        shape.indexes.iter().map(|i| i.name.as_str()).collect::<std::collections::BTreeSet<_>>(),
        ["name_keys", "open_keys", "owner_keys", "shard_keys"].into(),
        "the emulator's table is the template's"
    );

    // The cost bench's workload: 10 KiB of text, processed, then deleted, by a user of its own
    // (whose usage item no other test writes).
    let sub: &'static str = Box::leak(uuid::Uuid::new_v4().to_string().into_boxed_str());
    let user = crate::common::User { sub, groups: &[] };
    let id = env.upload_as(&user, "notes.txt", "text/plain", 10 << 10, b"word ".repeat(2 << 10)).await;
    assert_eq!(env.until_final_as(&user, &id).await["status"], "processed");
    let (s, _) = env.call_as(&user, "DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 204);

    let usage_id = format!("usage#{sub}");
    let all = changes(&sdk, &table).await.unwrap();
    let mine: Vec<&Change> = all.iter().filter(|c| c.id() == Some(&id) || c.id() == Some(&usage_id)).collect();
    let status = |c: &Change| c.new.as_ref().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).cloned();
    let is_usage = |c: &Change| c.id() == Some(&usage_id);
    let file: Vec<&Change> = mine.iter().copied().filter(|c| !is_usage(c)).collect();
    assert_eq!(
        file.iter().map(|c| status(c)).collect::<Vec<_>>(),
        [Some("pending".into()), Some("processing".into()), Some("processed".into()), None],
        "create, claim, verdict, delete: nothing else written"
    );
    let usage: Vec<&Change> = mine.iter().copied().filter(|c| is_usage(c)).collect();
    assert_eq!(usage.len(), 2, "the owner's usage: written with the new file and with its delete, no more: {usage:#?}");
    // As the cost bench prices them: a write made in a transaction counts twice on the table.
    let units = |c: &Change| {
        let u = write_units(&shape, c.old.as_ref(), c.new.as_ref());
        if c.transactional() { u.transactional() } else { u }
    };
    // Create: the owner's usage first (its slot), then the file and one entry in each index
    // (the open index while not final, the name index for search); single writes, no
    // transaction (which would bill each item twice).
    let at = |c: &Change| mine.iter().position(|m| std::ptr::eq(*m, c)).unwrap();
    assert!(at(usage[0]) < at(file[0]), "the slot is reserved before the file is written");
    let usage_create = units(usage[0]);
    assert_eq!((usage_create.table, usage_create.indexes.clone()), (1, units_of(&[])), "{usage_create:?}");
    let create = units(file[0]);
    assert_eq!(
        (create.table, create.indexes.clone()),
        (1, units_of(&[("name_keys", 1), ("open_keys", 1), ("owner_keys", 1), ("shard_keys", 1)]))
    );
    // Claim: the table alone (no index projects or keys on what it changes).
    let claim = units(file[1]);
    assert_eq!((claim.table, claim.indexes.clone()), (1, units_of(&[])));
    // Verdict: the table, and the file leaves the open index; the usage is settled later.
    let verdict = units(file[2]);
    assert_eq!((verdict.table, verdict.indexes.clone()), (1, units_of(&[("open_keys", 1)])));
    // Delete, in one transaction with the usage: the item and its remaining index entries.
    let delete = units(file[3]);
    assert_eq!(
        (delete.table, delete.indexes.clone()),
        (2, units_of(&[("name_keys", 1), ("owner_keys", 1), ("shard_keys", 1)]))
    );
    assert_eq!(units(usage[1]).total(), 2);
    let upload = create.total() + usage_create.total() + claim.total() + verdict.total();
    assert_eq!(
        upload, 9,
        "write units from slot to verdict (11 with the quota's transaction; 19 with four full-projection indexes and no quota)"
    );
}
