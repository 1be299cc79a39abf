//! Signed heads (`heads.json`): Ed25519 keys, the signed document, where a directory stands against it, judging a copy of the state release, and what replacing it would drop; knows no GitHub.
//!
//! docs/records.md pins the layout, docs/ledger.md the design, docs/security.md what it stops.
pub mod keys;
pub mod lacking;
pub mod local;
pub mod remote;
pub mod signed;
pub mod standing;

pub use keys::{generate, key_id_of, GeneratedKey, Signer, TrustedKey};
pub use lacking::{lacking, Lack, Lacking};
pub use local::{check_local, LocalHeads};
pub use remote::{
    check_signed, judge, past_head, relist_hint, unlisted_key, verify_chains, Expected, RemoteState,
};
pub use signed::{FileHead, Heads, SignedHeads, Unverified, HEADS_FILE, MAX_HEADS_BYTES};
pub use standing::{standings, FileStanding, Standing};
