//! The quota contract every catalog adapter meets (embedded ones in tests/api, DynamoDB
//! against the emulator in tests/aws).

use std::sync::Arc;
use std::time::Duration;

use picasso::catalog::{Admission, Catalog, Limits, Usage};
use picasso::domain::{ContentType, FileName, FileRecord, FileSize, Owner, now};

fn file(owner: &Owner, size: u64) -> FileRecord {
    FileRecord::pending(
        owner.clone(),
        FileName::parse("f.txt").unwrap(),
        ContentType::from_stored("text/plain".into()),
        FileSize::from_stored(size),
    )
}

/// Two requests at the limit at the same moment: exactly one is admitted.
pub async fn one_of_two_at_the_limit(cat: Arc<dyn Catalog>) {
    let owner = Owner::parse(&format!("racer-{}", uuid::Uuid::new_v4())).unwrap();
    let limits = Limits { pending: Some(1), bytes: None };
    for _ in 0..5 {
        let (a, b) = (file(&owner, 1), file(&owner, 1));
        let later = now() + Duration::from_secs(3600);
        let (x, y) = tokio::join!(cat.admit(&a, later, &limits), cat.admit(&b, later, &limits));
        let admitted = [x.unwrap(), y.unwrap()].iter().filter(|a| **a == Admission::Admitted).count();
        assert_eq!(admitted, 1);
        for r in [a, b] {
            cat.delete(r.id).await.unwrap();
        }
        assert_eq!(cat.usage(&owner, now()).await.unwrap(), Usage::default());
    }
}

/// Random sequences of create, finish, delete and expire: the usage is always what the
/// files say, never negative, and a limit holds.
pub async fn usage_follows_random_sequences(cat: Arc<dyn Catalog>, steps: usize) {
    use picasso::catalog::{Claim, Lease, Outcome};
    let owner = Owner::parse(&format!("random-{}", uuid::Uuid::new_v4())).unwrap();
    let limits = Limits { pending: Some(4), bytes: Some(60) };
    // Each file admitted and not deleted, and whether it is final; and those whose slot expired.
    let mut live: Vec<(FileRecord, bool)> = Vec::new();
    let mut expired: Vec<FileRecord> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..steps {
        let expected = Usage {
            pending: live.iter().filter(|(_, done)| !done).count() as u64,
            bytes: live.iter().map(|(r, _)| r.size.bytes()).sum(),
        };
        match next(5) {
            0 | 1 => {
                let r = file(&owner, 1 + next(20));
                let expires = if next(5) == 0 { now() } else { now() + Duration::from_secs(3600) };
                let got = cat.admit(&r, expires, &limits).await.unwrap();
                let want = match limits.broken_by(expected, r.size.bytes()) {
                    None => Admission::Admitted,
                    Some(q) => Admission::Refused(q, expected),
                };
                assert_eq!(got, want);
                // One made already expired counts for nothing from now on.
                match got {
                    Admission::Admitted if expires > now() => live.push((r, false)),
                    Admission::Admitted => expired.push(r),
                    Admission::Refused(..) => {}
                }
            }
            2 if !live.is_empty() => {
                let i = next(live.len() as u64) as usize;
                if !live[i].1 {
                    let lease = Lease::new(now(), Duration::from_secs(60));
                    assert!(matches!(cat.claim(live[i].0.id, &lease, now()).await.unwrap(), Claim::Claimed(_)));
                    cat.finish(live[i].0.id, &lease, &Outcome::failed("x", "y"), now()).await.unwrap();
                    live[i].1 = true;
                }
            }
            3 if !live.is_empty() => {
                let (r, _) = live.remove(next(live.len() as u64) as usize);
                assert!(cat.delete(r.id).await.unwrap());
            }
            // Deleting a file whose slot expired (before DynamoDB's TTL dropped it) gives back nothing more.
            4 if !expired.is_empty() => {
                let r = expired.remove(next(expired.len() as u64) as usize);
                assert!(cat.delete(r.id).await.unwrap());
            }
            _ => {}
        }
        let expected = Usage {
            pending: live.iter().filter(|(_, done)| !done).count() as u64,
            bytes: live.iter().map(|(r, _)| r.size.bytes()).sum(),
        };
        assert_eq!(cat.usage(&owner, now()).await.unwrap(), expected);
    }
}

/// Many slots asked for at once by one user, within the limit: all admitted, none lost to the
/// contention on the owner's usage (a browser sending a folder of files).
pub async fn a_burst_within_the_limit_is_all_admitted(cat: Arc<dyn Catalog>, n: usize) {
    let owner = Owner::parse(&format!("burst-{}", uuid::Uuid::new_v4())).unwrap();
    let limits = Limits { pending: Some(n as u64), bytes: None };
    let files: Vec<FileRecord> = (0..n).map(|_| file(&owner, 3)).collect();
    let later = now() + Duration::from_secs(3600);
    let tasks: Vec<_> = files
        .iter()
        .cloned()
        .map(|r| {
            let cat = cat.clone();
            tokio::spawn(async move { cat.admit(&r, later, &limits).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Admission::Admitted);
    }
    assert_eq!(cat.usage(&owner, now()).await.unwrap(), Usage { pending: n as u64, bytes: 3 * n as u64 });
}
