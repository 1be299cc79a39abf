//! GitHub Releases: the profile's `github:` block, a synchronous client bound to one purpose,
//! publishing assets (draft → upload → verify → publish) and release-backed billing state (which
//! asks `crate::ledger` and `crate::heads` to verify what it moves; it parses no ledger line).
pub mod client;
mod failure;
mod file_body;
pub mod guard;
pub mod publish;
pub mod settings;
pub mod state;
pub mod tag_template;

pub use client::{
    validate_asset_name, Asset, Downloaded, GithubClient, Release, RetryPolicy, MAX_ASSET_BYTES,
};
pub use guard::{Purpose, TOKEN_ENV};
pub use publish::{AssetAction, PublishResult, PublishedAsset};
pub use settings::GithubSettings;
pub use state::{
    pull_state, push_state, Head, PullOptions, PulledState, PushOptions, Signing, StateAction,
    StateFile, StateOutcome, PULLED_FILE, STATE_FILES,
};
pub use tag_template::ReleaseOwner;
