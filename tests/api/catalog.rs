//! One contract, every embedded `Catalog` adapter: what the API and the processor rely on.
//! (DynamoDB meets the same cases against the emulator in aws_e2e.rs.)

use std::sync::Arc;
use std::time::Duration;

use picasso::catalog::{Catalog, Claim, Lease, Order, Outcome, Scope, Transition};
use picasso::domain::{ContentType, FileName, FileRecord, FileSize, Status, now};

fn record(i: usize) -> FileRecord {
    FileRecord::pending(
        picasso::domain::Owner::parse("alice").unwrap(),
        FileName::parse(&format!("f{i} — ü.txt")).unwrap(),
        ContentType::from_stored("text/plain".into()),
        FileSize::from_stored(1 + i as u64),
    )
}

async fn contract(cat: Arc<dyn Catalog>) {
    let alice = picasso::domain::Owner::parse("alice").unwrap();
    let hers = Scope::Owner(alice.clone());
    // Another owner's file, in the middle of alice's: never in her listing, always in everyone's.
    let mut bobs = record(99);
    bobs.owner = picasso::domain::Owner::parse("bob");
    let records: Vec<FileRecord> = (0..7).map(record).collect();
    for r in &records {
        cat.insert(r, now() + Duration::from_secs(60)).await.unwrap();
    }
    assert!(cat.insert(&records[0], now()).await.is_err(), "ids are unique");
    cat.insert(&bobs, now() + Duration::from_secs(60)).await.unwrap();
    let of = |scope: Scope| {
        let cat = cat.clone();
        async move {
            cat.list(&scope, None, Order::Newest, None, 100)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(of(Scope::Owner(picasso::domain::Owner::parse("bob").unwrap())).await, vec![bobs.id]);
    assert_eq!(of(Scope::All).await.len(), 8, "everyone's files");
    assert!(!of(hers.clone()).await.contains(&bobs.id));
    let mut legacy = record(98);
    legacy.owner = None;
    cat.insert(&legacy, now()).await.unwrap();
    assert!(of(Scope::All).await.contains(&legacy.id), "files from before owners: admins see them");
    assert!(!of(hers.clone()).await.contains(&legacy.id));
    assert_eq!(cat.get(records[3].id).await.unwrap().as_ref(), Some(&records[3]), "stored as given");

    // Newest first, resumed strictly after a cursor, with an exact end.
    let ids = |rs: &[FileRecord]| rs.iter().map(|r| r.id).collect::<Vec<_>>();
    let newest: Vec<_> = records.iter().rev().map(|r| r.id).collect();
    let p1 = cat.list(&hers, None, Order::Newest, None, 4).await.unwrap();
    assert_eq!(ids(&p1.items), newest[..4]);
    let p2 = cat.list(&hers, None, Order::Newest, p1.next.as_ref(), 4).await.unwrap();
    assert_eq!(ids(&p2.items), newest[4..]);
    assert!(p2.next.is_none());
    assert!(
        cat.list(&hers, None, Order::Newest, None, 7).await.unwrap().next.is_none(),
        "no cursor when nothing is left"
    );

    // Claim, finish, and the status index follows.
    let (a, b) = (records[1].id, records[2].id);
    let mine = Lease::new(now(), Duration::from_secs(60));
    let other = Lease::new(now(), Duration::from_secs(60));
    assert!(matches!(cat.claim(a, &mine, now()).await.unwrap(), Claim::Claimed(r) if r.status == Status::Processing));
    assert_eq!(cat.claim(a, &other, now()).await.unwrap(), Claim::Busy);
    assert_eq!(
        cat.finish(a, &other, &Outcome::Processed(Default::default()), now()).await.unwrap(),
        Transition::Skipped
    );
    let failed = Outcome::failed("size_mismatch", "declared 2 bytes but 3 arrived");
    assert_eq!(cat.finish(a, &mine, &failed, now()).await.unwrap(), Transition::Applied);
    let done = cat.get(a).await.unwrap().unwrap();
    assert_eq!((done.status, done.error.unwrap().code.as_str()), (Status::Failed, "size_mismatch"));
    assert!(done.processed_at.is_some());
    assert_eq!(cat.claim(a, &other, now()).await.unwrap(), Claim::Final);
    assert_eq!(ids(&cat.list(&hers, Some(Status::Failed), Order::Newest, None, 10).await.unwrap().items), vec![a]);
    assert_eq!(cat.list(&hers, Some(Status::Pending), Order::Newest, None, 10).await.unwrap().items.len(), 6);

    // An expired lease is taken over; the old holder can neither finish nor release.
    let short = Lease::new(now(), Duration::from_millis(50));
    assert!(matches!(cat.claim(b, &short, now()).await.unwrap(), Claim::Claimed(_)));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(matches!(cat.claim(b, &other, now()).await.unwrap(), Claim::Claimed(_)));
    assert_eq!(cat.release(b, &short, now() + Duration::from_secs(60)).await.unwrap(), Transition::Skipped);
    assert_eq!(cat.release(b, &other, now() + Duration::from_secs(60)).await.unwrap(), Transition::Applied);
    assert_eq!(cat.get(b).await.unwrap().unwrap().status, Status::Pending);
    assert_eq!(cat.claim(picasso::domain::FileId::new(), &mine, now()).await.unwrap(), Claim::Missing);
    sweeping(cat.as_ref()).await;
}

/// What the sweeper and the retry rules rely on: claims counted, old pending and expired
/// leases found (and nothing else), pending records kept from expiring.
async fn sweeping(cat: &dyn Catalog) {
    let rs: Vec<FileRecord> = (10..13).map(record).collect();
    for r in &rs {
        cat.insert(r, now() + Duration::from_secs(60)).await.unwrap();
    }
    let (a, b, c) = (rs[0].id, rs[1].id, rs[2].id);
    let mine = |found: Vec<FileRecord>| {
        found.into_iter().filter(|r| rs.iter().any(|x| x.id == r.id)).map(|r| (r.id, r.status)).collect::<Vec<_>>()
    };
    // Pending records older than the bound (c's id), oldest first.
    let stale = mine(cat.stale(now(), c, 1000).await.unwrap());
    assert_eq!(stale, vec![(a, Status::Pending), (b, Status::Pending)]);

    let short = Lease::new(now(), Duration::from_millis(50));
    let Claim::Claimed(claimed) = cat.claim(a, &short, now()).await.unwrap() else { panic!("not claimed") };
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.version, 2, "created is the first change, the claim the second");
    assert!(mine(cat.stale(now(), c, 1000).await.unwrap()).contains(&(b, Status::Pending)));
    assert!(!mine(cat.stale(now(), c, 1000).await.unwrap()).contains(&(a, Status::Processing)), "lease still runs");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(mine(cat.stale(now(), c, 1000).await.unwrap()).contains(&(a, Status::Processing)), "lease ran out");

    let next = Lease::new(now(), Duration::from_secs(60));
    let Claim::Claimed(again) = cat.claim(a, &next, now()).await.unwrap() else { panic!("not taken over") };
    assert_eq!(again.attempts, 2, "every claim counts");
    assert_eq!(cat.release(a, &next, now() + Duration::from_secs(60)).await.unwrap(), Transition::Applied);
    assert_eq!(cat.get(a).await.unwrap().unwrap().attempts, 2, "releasing keeps the count");
    assert_eq!(cat.get(a).await.unwrap().unwrap().version, 4, "every change counts, a release too");

    assert_eq!(cat.keep(b).await.unwrap(), Transition::Applied);
    let kept = cat.get(b).await.unwrap().unwrap();
    assert_eq!((kept.status, kept.version), (Status::Pending, 1), "keeping is no state change");
    let Claim::Claimed(_) = cat.claim(a, &next, now()).await.unwrap() else { panic!("released, so claimable") };
    cat.finish(a, &next, &Outcome::failed("x", "y"), now()).await.unwrap();
    assert_eq!(cat.get(a).await.unwrap().unwrap().version, 6);
    let lost = Lease::new(now(), Duration::from_secs(60));
    assert_eq!(cat.finish(a, &lost, &Outcome::failed("x", "z"), now()).await.unwrap(), Transition::Skipped);
    assert_eq!(cat.get(a).await.unwrap().unwrap().version, 6, "a change that did not commit counts nothing");
    assert_eq!(cat.keep(a).await.unwrap(), Transition::Skipped, "only pending records are kept");
}

#[tokio::test]
async fn memory_catalog() {
    contract(Arc::new(picasso::memory::MemoryCatalog::default())).await;
}

#[tokio::test]
async fn sqlite_catalog() {
    let dir = std::env::temp_dir().join(format!("picasso-catalog-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    contract(picasso_local::open_catalog(&dir).unwrap()).await;
    // What a fresh connection reads back is what was written.
    let again = picasso_local::open_catalog(&dir).unwrap();
    assert_eq!(again.list(&Scope::All, None, Order::Newest, None, 100).await.unwrap().items.len(), 12);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The in-memory catalog and a fresh SQLite one, whose directory the caller removes.
fn embedded(tag: &str) -> ([Arc<dyn Catalog>; 2], std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("picasso-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite: Arc<dyn Catalog> = picasso_local::open_catalog(&dir).unwrap();
    ([Arc::new(picasso::memory::MemoryCatalog::default()), sqlite], dir)
}

#[tokio::test]
async fn name_search_in_both_embedded_catalogs() {
    let (catalogs, dir) = embedded("search");
    for cat in catalogs {
        crate::common::search::name_search(cat).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn oldest_first_in_both_embedded_catalogs() {
    let (catalogs, dir) = embedded("order");
    for cat in catalogs {
        crate::common::order::oldest_first(cat).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}
