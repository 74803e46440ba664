//! The name-search contract every catalog adapter meets (`GET /files?q=`; embedded ones in
//! tests/api, DynamoDB against the emulator in tests/aws): a prefix of the name in any case
//! (Unicode case folding), newest first, a page at a time, with a status, one owner's only.

use std::sync::Arc;
use std::time::Duration;

use picasso::catalog::{Catalog, Cursor, Lease, Order, Outcome, Scope};
use picasso::domain::{ContentType, FileId, FileName, FileRecord, FileSize, NamePrefix, Owner, Status, now};

fn file(owner: &Owner, name: &str) -> FileRecord {
    FileRecord::pending(
        owner.clone(),
        FileName::parse(name).unwrap(),
        ContentType::from_stored("text/plain".into()),
        FileSize::from_stored(3),
    )
}

pub async fn name_search(cat: Arc<dyn Catalog>) {
    let run = uuid::Uuid::new_v4();
    let alice = Owner::parse(&format!("alice-{run}")).unwrap();
    let bob = Owner::parse(&format!("bob-{run}")).unwrap();
    let names = [
        "Straße.txt",
        "STRASSE-2.csv",
        "Ärger.png",
        "ärgerlich.txt",
        "report-1.txt",
        "report-2.txt",
        "report-3.txt",
        "notes.txt",
        "report-4.txt",
        "Report-5.txt",
        "ΣΊΣΥΦΟΣ.txt",
    ];
    let mut ids = std::collections::HashMap::new();
    for name in names {
        let r = file(&alice, name);
        ids.insert(name, r.id);
        cat.insert(&r, now() + Duration::from_secs(3600)).await.unwrap();
    }
    cat.insert(&file(&bob, "report-bob.txt"), now() + Duration::from_secs(3600)).await.unwrap();
    let named = |q: &str| Scope::Named(alice.clone(), NamePrefix::parse(q).unwrap().unwrap());
    let found = |q: &'static str, status: Option<Status>| {
        let (cat, scope) = (cat.clone(), named(q));
        async move {
            let page = cat.list(&scope, status, Order::Newest, None, 100).await.unwrap();
            page.items.iter().map(|r| r.filename.as_str().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("straße", None).await, ["STRASSE-2.csv", "Straße.txt"], "full case folding, newest first");
    assert_eq!(found("STRASSE", None).await, ["STRASSE-2.csv", "Straße.txt"]);
    assert_eq!(found("äR", None).await, ["ärgerlich.txt", "Ärger.png"]);
    assert_eq!(found("σίσυφος", None).await, ["ΣΊΣΥΦΟΣ.txt"], "final sigma folds as any sigma");
    assert_eq!(found("nothing", None).await, Vec::<String>::new());
    assert_eq!(found("report-b", None).await, Vec::<String>::new(), "another owner's files never");

    // Pages of two, newest first, the cursor bound to the search.
    let scope = named("REPORT");
    let (mut seen, mut cursor): (Vec<FileId>, Option<Cursor>) = (Vec::new(), None);
    loop {
        let page = cat.list(&scope, None, Order::Newest, cursor.as_ref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<FileId> =
        ["Report-5.txt", "report-4.txt", "report-3.txt", "report-2.txt", "report-1.txt"].map(|n| ids[n]).to_vec();
    assert_eq!(seen, expected);

    // With a status: only the processed one.
    let lease = Lease::new(now(), Duration::from_secs(60));
    let third = ids["report-3.txt"];
    assert!(matches!(cat.claim(third, &lease, now()).await.unwrap(), picasso::catalog::Claim::Claimed(_)));
    cat.finish(third, &lease, &Outcome::failed("x", "y"), now()).await.unwrap();
    assert_eq!(found("report", Some(Status::Failed)).await, ["report-3.txt"]);
    assert_eq!(found("report", Some(Status::Pending)).await.len(), 4);
    // A deleted file is found no more.
    cat.delete(ids["notes.txt"]).await.unwrap();
    assert_eq!(found("no", None).await, Vec::<String>::new());
}
