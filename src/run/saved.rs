//! A plan saved for later (`plan --format json --out FILE`, then `apply FILE`) and the
//! fingerprint that tells whether it still fits the source and the snapshot.

use super::Prepared;
use crate::reconcile::Plan;
use crate::store::Store;
use anyhow::Context as _;

/// A plan as `plan --format json --out FILE` saves it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedPlan {
    pub fingerprint: Fingerprint,
    pub plan: Plan,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// SHA-256 of the desired state the plan was made from.
    pub source: String,
    /// The snapshot version the plan was made against.
    pub snapshot_version: i64,
}

/// The fingerprint of what a plan was made from.
pub fn fingerprint(prepared: &Prepared, store: &Store) -> anyhow::Result<Fingerprint> {
    use sha2::{Digest, Sha256};
    /// Hashes what is written to it: the desired state's JSON is hashed as it is produced, never
    /// held whole (a large directory's would be hundreds of megabytes).
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    /// Users hashed per chunk; chunk digests are hashed in order. The chunks are of a fixed size,
    /// so the fingerprint does not depend on the number of threads that hash them.
    const CHUNK: usize = 1 << 16;
    let d = &prepared.desired;
    let users: Vec<_> = d.users.iter().collect();
    let mut all = Hashing(Sha256::new());
    let hash_chunk = |chunk: &[_]| {
        let mut hashing = Hashing(Sha256::new());
        serde_json::to_writer(&mut hashing, chunk).map(|()| hashing.0.finalize())
    };
    crate::parts::render_in_order(&users, CHUNK, crate::parts::threads(4), hash_chunk, |digest| {
        digest.map(|digest| all.0.update(digest))
    })
    .context("serialising the desired state")?;
    serde_json::to_writer(&mut all, &(&d.groups, &d.skipped, &d.warnings, d.records_read, &d.cut_off))
        .context("serialising the desired state")?;
    let source = all.0.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Fingerprint { source, snapshot_version: store.snapshot_version()? })
}
