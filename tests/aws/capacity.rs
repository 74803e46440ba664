//! What one upload costs in DynamoDB write units, counted from the table's stream: each
//! committed write's item before and after, priced by DynamoDB's rules for the table and its
//! indexes (`picasso::aws::capacity`; the emulator's own `ConsumedCapacity` ignores indexes).

use std::collections::BTreeMap;

use picasso::aws::capacity::stream::{Change, changes};
use picasso::aws::capacity::{TableShape, WriteUnits, write_units};

use crate::e2e::env;

async fn table_shape(sdk: &aws_config::SdkConfig, table: &str) -> TableShape {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let described = ddb.describe_table().table_name(table).send().await.unwrap();
    TableShape::of(described.table().unwrap())
}

fn units(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn one_upload_writes_each_index_once_and_its_claim_and_verdict_only_the_table() {
    let env = env().await;
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let table = std::env::var("TABLE_NAME").unwrap();
    let shape = table_shape(&sdk, &table).await;
    assert_eq!(
        shape.indexes.iter().map(|i| i.name.as_str()).collect::<std::collections::BTreeSet<_>>(),
        ["open_keys", "owner_keys", "shard_keys"].into(),
        "the emulator's table is the template's"
    );

    // The cost bench's workload: 10 KiB of text, processed, then deleted.
    let id = env.upload("notes.txt", "text/plain", 10 << 10, b"word ".repeat(2 << 10)).await;
    assert_eq!(env.until_final(&id).await["status"], "processed");
    let (s, _) = env.call("DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 204);

    let mine: Vec<Change> = changes(&sdk, &table).await.unwrap().into_iter().filter(|c| c.id() == Some(&id)).collect();
    let steps: Vec<WriteUnits> = mine.iter().map(|c| write_units(&shape, c.old.as_ref(), c.new.as_ref())).collect();
    let status = |c: &Change| c.new.as_ref().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(
        mine.iter().map(status).collect::<Vec<_>>(),
        [Some("pending".into()), Some("processing".into()), Some("processed".into()), None],
        "create, claim, verdict, delete: nothing else written"
    );
    // Create: the item and one entry in each index (the open index while not final).
    assert_eq!(
        (steps[0].table, steps[0].indexes.clone()),
        (1, units(&[("open_keys", 1), ("owner_keys", 1), ("shard_keys", 1)]))
    );
    // Claim: the table alone (no index projects or keys on what it changes).
    assert_eq!((steps[1].table, steps[1].indexes.clone()), (1, units(&[])));
    // Verdict: the table, and the file leaves the open index.
    assert_eq!((steps[2].table, steps[2].indexes.clone()), (1, units(&[("open_keys", 1)])));
    // Delete: the item and its remaining index entries.
    assert_eq!((steps[3].table, steps[3].indexes.clone()), (1, units(&[("owner_keys", 1), ("shard_keys", 1)])));
    let upload: u64 = steps[..3].iter().map(WriteUnits::total).sum();
    assert_eq!(upload, 7, "write units from slot to verdict (was 19 with four full-projection indexes)");
}
