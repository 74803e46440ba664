//! Listings on DynamoDB's keys-only indexes: a page is a Query for ids and a BatchGetItem for
//! the items; a status filter reads a bounded number of records per page.

use picasso::catalog::{Catalog, Cursor, Order, Scope};
use picasso::domain::{ContentType, FileName, FileRecord, FileSize, Owner, Status};

async fn catalog(filter_reads: usize) -> picasso::aws::DynamoCatalog {
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME: run `make test`");
    picasso::aws::DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&sdk), table).with_filter_reads(filter_reads)
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_rare_status_pages_through_short_pages_to_every_match_and_no_other() {
    let catalog = catalog(4).await;
    let owner = Owner::parse(&format!("listing-{}", uuid::Uuid::new_v4())).unwrap();
    let mut ids = Vec::new();
    for i in 0..13 {
        let r = FileRecord::pending(
            owner.clone(),
            FileName::parse(&format!("f{i}.txt")).unwrap(),
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(1),
        );
        catalog.insert(&r, chrono::Utc::now() + chrono::Duration::hours(1)).await.unwrap();
        ids.push(r.id);
    }
    // Files 2 and 9 are claimed: the rare status among 13 pending ones.
    for &i in &[2, 9] {
        let lease = picasso::catalog::Lease::new(chrono::Utc::now(), std::time::Duration::from_secs(60));
        let claimed = catalog.claim(ids[i], &lease, chrono::Utc::now()).await.unwrap();
        assert!(matches!(claimed, picasso::catalog::Claim::Claimed(_)));
    }
    let scope = Scope::Owner(owner.clone());
    let (mut found, mut pages, mut cursor): (Vec<_>, usize, Option<Cursor>) = (Vec::new(), 0, None);
    loop {
        let page = catalog.list(&scope, Some(Status::Processing), Order::Newest, cursor.as_ref(), 10).await.unwrap();
        assert!(page.items.iter().all(|r| r.status == Status::Processing));
        found.extend(page.items.iter().map(|r| r.id));
        pages += 1;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "a cursor must move forward");
    }
    assert_eq!(found, [ids[9], ids[2]], "both, newest first");
    // 4 records read a page: 13 records take 4 pages, some with no match at all.
    assert_eq!(pages, 4);

    // Unfiltered, pages are full and in order.
    let page = catalog.list(&scope, None, Order::Newest, None, 10).await.unwrap();
    let newest: Vec<_> = ids.iter().rev().take(10).copied().collect();
    assert_eq!(page.items.iter().map(|r| r.id).collect::<Vec<_>>(), newest);
    let rest = catalog.list(&scope, None, Order::Newest, page.next.as_ref(), 10).await.unwrap();
    assert_eq!(rest.items.len(), 3);
    assert!(rest.next.is_none());
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn oldest_first_pages_in_upload_order() {
    crate::common::order::oldest_first(std::sync::Arc::new(catalog(1000).await)).await;
    // Short reads per page: a status filter still reaches every match in order.
    crate::common::order::oldest_first(std::sync::Arc::new(catalog(2).await)).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn name_search_reads_the_owners_folded_names() {
    crate::common::search::name_search(std::sync::Arc::new(catalog(1000).await)).await;
    // With few reads allowed per page, a status filter still reaches every match.
    crate::common::search::name_search(std::sync::Arc::new(catalog(2).await)).await;
}
