//! The oldest-first contract every catalog adapter meets (`GET /files?order=oldest`; embedded
//! ones in tests/api, DynamoDB against the emulator in tests/aws): upload order from the
//! first file, a page at a time, with a status and with a name search, one owner's only.

use std::sync::Arc;
use std::time::Duration;

use picasso::catalog::{Catalog, Cursor, Lease, Order, Outcome, Scope};
use picasso::domain::{ContentType, FileId, FileName, FileRecord, FileSize, NamePrefix, Owner, Status, now};

pub async fn oldest_first(cat: Arc<dyn Catalog>) {
    let run = uuid::Uuid::new_v4();
    let alice = Owner::parse(&format!("alice-{run}")).unwrap();
    let bob = Owner::parse(&format!("bob-{run}")).unwrap();
    let mut ids = Vec::new();
    for i in 0..9 {
        // Bob's file in the middle of alice's: never in her listing.
        if i == 4 {
            let b =
                FileRecord::pending(bob.clone(), FileName::parse("b.txt").unwrap(), text(), FileSize::from_stored(1));
            cat.insert(&b, now() + Duration::from_secs(600)).await.unwrap();
        }
        let name = if i % 3 == 0 { format!("Photo-{i}.txt") } else { format!("note-{i}.txt") };
        let r = FileRecord::pending(alice.clone(), FileName::parse(&name).unwrap(), text(), FileSize::from_stored(1));
        cat.insert(&r, now() + Duration::from_secs(600)).await.unwrap();
        ids.push(r.id);
    }
    let hers = Scope::Owner(alice.clone());
    assert_eq!(pages(&cat, &hers, None, 4).await, ids, "upload order, across pages");
    let newest: Vec<FileId> = ids.iter().rev().copied().collect();
    let first = cat.list(&hers, None, Order::Newest, None, 100).await.unwrap();
    assert_eq!(first.items.iter().map(|r| r.id).collect::<Vec<_>>(), newest, "newest first is the reverse");

    // Two of them processed: oldest first among that status only.
    for &i in &[7, 2] {
        let lease = Lease::new(now(), Duration::from_secs(60));
        cat.claim(ids[i], &lease, now()).await.unwrap();
        cat.finish(ids[i], &lease, &Outcome::Processed(Default::default()), now()).await.unwrap();
    }
    assert_eq!(pages(&cat, &hers, Some(Status::Processed), 1).await, [ids[2], ids[7]]);

    // A name search, oldest first: photo-0, photo-3, photo-6 in any case.
    let photos = Scope::Named(alice, NamePrefix::parse("PHOTO").unwrap().unwrap());
    assert_eq!(pages(&cat, &photos, None, 2).await, [ids[0], ids[3], ids[6]]);
}

fn text() -> ContentType {
    ContentType::from_stored("text/plain".into())
}

/// Every id of a listing, oldest first, read `limit` at a time; each cursor pages oldest first only.
async fn pages(cat: &Arc<dyn Catalog>, scope: &Scope, status: Option<Status>, limit: usize) -> Vec<FileId> {
    let (mut found, mut cursor): (Vec<FileId>, Option<Cursor>) = (Vec::new(), None);
    for _ in 0..50 {
        let page = cat.list(scope, status, Order::Oldest, cursor.as_ref(), limit).await.unwrap();
        found.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(c) => {
                assert_eq!(c.order, Order::Oldest);
                let refused = Cursor::decode(&c.encode(), scope, status, Order::Newest).unwrap_err();
                assert_eq!(refused.code, "invalid_cursor", "an oldest-first cursor does not page newest first");
                cursor = Some(c);
            }
            None => return found,
        }
    }
    panic!("a cursor must move forward");
}
