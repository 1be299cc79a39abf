//! Synchronous GitHub Releases client over octocrab: bounded retries for idempotent calls only,
//! streamed uploads and downloads, errors that name repository, tag and asset. Every write
//! passes the guard of the purpose the client was made for; every request, its URL check.
use super::failure::{describe_octocrab_error, truncate, Failure};
use super::file_body::FileBody;
use super::guard::{check_token_url, check_write, Purpose, WriteOp, TOKEN_ENV};
use super::settings::GithubSettings;
use crate::digest::HashingWriter;
use crate::error::{Error, Result};
use crate::redact::Redactor;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use octocrab::{OctoBody, Octocrab};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// GitHub refuses release assets of 2 GiB or more.
pub const MAX_ASSET_BYTES: u64 = (1 << 31) - 1;

/// Releases are scanned 100 per page; drafts cannot be fetched by tag, so the list is the
/// only way to find one. A publish looks at the 20 × 100 newest (GitHub lists newest first,
/// and the drafts it makes are recent); a published release older than those is fetched by
/// its tag.
const MAX_RELEASE_PAGES: u32 = 20;
/// The most an API answer may hold: a page of 100 releases with long notes is a few MB. A
/// server sending more (a hostile or broken api_url) gets an error, never all our memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// An error answer is only quoted (cut to 4 KB), so little of it is read.
const MAX_ERROR_ANSWER_BYTES: usize = 1 << 20;
/// The state release is made by the first push, so it is among the oldest: its lookup lists
/// up to 100 × 100 releases (a page is one request), and a listing still going on there is an
/// error, never "no state release" (which would start an empty ledger and a second draft).
const MAX_STATE_RELEASE_PAGES: u32 = 100;
const MAX_ASSET_PAGES: u32 = 20;
const PER_PAGE: usize = 100;

/// How idempotent calls (GET, DELETE, PATCH of the draft flag or of an asset's name) are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each further one.
    pub first_delay: Duration,
    /// A server asking us to wait longer than this (retry-after, x-ratelimit-reset) ends the
    /// call at once: a CLI in CI should fail clearly rather than sleep for an hour.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(200),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// The fields of a GitHub release this crate relies on (others are ignored).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub id: u64,
    pub tag_name: String,
    pub draft: bool,
    /// `https://uploads.github.com/repos/o/n/releases/1/assets{?name,label}`.
    #[serde(default)]
    pub upload_url: String,
    #[serde(default)]
    pub html_url: String,
    /// Markdown; artifact releases carry their owner line (see `publish.rs`).
    #[serde(default)]
    pub body: Option<String>,
    /// Set by GitHub on releases published under the immutable-releases setting.
    #[serde(default)]
    pub immutable: bool,
}

/// The fields of a release asset this crate relies on.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub id: u64,
    pub name: String,
    pub size: u64,
    /// `uploaded`, or `starter` for an upload that never finished.
    pub state: String,
    /// `sha256:<hex>` on github.com since 2025; absent on older servers.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub browser_download_url: String,
}

impl Asset {
    /// The SHA-256 GitHub computed for the asset, when it reports one.
    pub fn sha256(&self) -> Option<&str> {
        self.digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
            .filter(|h| h.len() == 64)
    }
    pub fn is_uploaded(&self) -> bool {
        self.state == "uploaded"
    }
}

/// What a download wrote: the bytes and their SHA-256, computed while writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub sha256: String,
    pub bytes: u64,
}

/// A synchronous client for one repository. It owns a current-thread tokio runtime, so it
/// must not be used from inside another tokio runtime (the rest of the binary is sync).
pub struct GithubClient {
    rt: tokio::runtime::Runtime,
    api: Octocrab,
    uploads: Octocrab,
    settings: GithubSettings,
    owner: String,
    name: String,
    policy: RetryPolicy,
    purpose: Purpose,
    /// Where the token may go: the API base and the upload origin (scheme and authority).
    api_url: String,
    upload_origin: String,
    /// Every call ends by then (a delivery step's `timeout_seconds`); none when unset.
    deadline: Option<std::time::Instant>,
    /// Masks the token (and every other secret the process holds) in what a server said.
    redactor: Redactor,
}

impl std::fmt::Debug for GithubClient {
    // The octocrab instances hold the token: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("repository", &self.settings.repository)
            .field("api_url", &self.settings.api_url)
            .field("policy", &self.policy)
            .field("purpose", &self.purpose)
            .finish()
    }
}

/// Check an asset name: `[A-Za-z0-9._-]`, 1–255 characters, not starting with '.'.
/// GitHub rewrites other characters, and upload names travel unencoded in a query string.
pub fn validate_asset_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && super::settings::safe_name_chars(name);
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "release asset name '{name}' is not allowed: use 1-255 characters of [A-Za-z0-9._-], not starting with '.'"
        ))
        .help("rename the file; GitHub would rewrite other characters and the upload would not match"))
    }
}

impl GithubClient {
    /// A client for `settings.repository`, made for `purpose`, with the token from
    /// `GITHUB_TOKEN` (as the secret store captured it at start-up).
    pub fn from_env(settings: &GithubSettings, purpose: Purpose) -> Result<Self> {
        match crate::secrets::github_token() {
            Some(t) if !t.trim().is_empty() => Self::new(settings, t.trim(), purpose),
            _ => Err(Error::input(format!(
                "{TOKEN_ENV} is not set: GitHub release operations on {} need a token",
                settings.repository
            ))
            .help(format!(
                "set {TOKEN_ENV} to a token with contents: write on {} (in GitHub Actions: env: {{{TOKEN_ENV}: ${{{{ secrets.GITHUB_TOKEN }}}}}})",
                settings.repository
            ))),
        }
    }

    /// A client with an explicit token (tests, callers that hold their own). The settings are
    /// validated here, so no client exists for an http:// API off this machine.
    pub fn new(settings: &GithubSettings, token: &str, purpose: Purpose) -> Result<Self> {
        settings.validate()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::failure(
                "internal: the GitHub client was created inside an async runtime",
            ));
        }
        let (owner, name) = settings.owner_and_name()?;
        let (owner, name) = (owner.to_string(), name.to_string());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::failure(format!("cannot start the HTTP runtime: {e}")))?;
        let api_url = settings.api_url.trim().trim_end_matches('/').to_string();
        let upload_origin = upload_origin(&api_url)?;
        // octocrab's connector is built on the runtime it will run on.
        let _guard = rt.enter();
        let api = build_octocrab(&api_url, &upload_origin, token, &settings.repository)?;
        // A separate instance whose base has no path: octocrab prefixes the base path to
        // absolute URIs too, which would break GHE's /api/uploads URLs under /api/v3.
        let uploads = build_octocrab(&upload_origin, &upload_origin, token, &settings.repository)?;
        drop(_guard);
        Ok(GithubClient {
            rt,
            api,
            uploads,
            settings: settings.clone(),
            owner,
            name,
            policy: RetryPolicy::default(),
            purpose,
            api_url,
            upload_origin,
            deadline: None,
            redactor: Redactor::new(
                std::iter::once(token.to_string()).chain(crate::secrets::all_values()),
            ),
        })
    }

    /// End every call, retries and waits included, at `at`: the connection is dropped and the
    /// call fails. Per-request timeouts do not bound a server that answers a byte at a time.
    pub fn with_deadline(mut self, at: std::time::Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// Replace the retry policy (tests use short waits).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn settings(&self) -> &GithubSettings {
        &self.settings
    }

    pub fn repository(&self) -> &str {
        &self.settings.repository
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The guard every release-writing call passes first.
    fn may_write(&self, tag: &str, op: WriteOp) -> Result<()> {
        check_write(self.purpose, &self.settings.state_tag, tag, op)
    }

    /// The release with this tag, drafts included; a published one wins over drafts, then
    /// the oldest draft (GitHub allows several drafts with one tag).
    pub fn find_release(&self, tag: &str) -> Result<Option<Release>> {
        self.block(self.find_release_async(tag))?.map_err(|f| {
            f.into_error(&format!(
                "looking for release '{tag}' of {}",
                self.repository()
            ))
        })
    }

    /// The state release `tag`: by `known_id` (the release a pull or push of this directory
    /// used; a draft is found by id too) while it still carries that tag, else by listing
    /// up to 10,000 releases. A listing that does not end there is an error: the release
    /// may be among the older ones, and calling it missing would fork the state.
    pub fn find_state_release(&self, tag: &str, known_id: Option<u64>) -> Result<Option<Release>> {
        let what = format!("looking for release '{tag}' of {}", self.repository());
        if let Some(id) = known_id {
            let route = format!("/repos/{}/{}/releases/{id}", self.owner, self.name);
            let got = self.block(self.retrying(|| async {
                match self.get_json::<Release>(&route).await {
                    Ok(r) => Ok(Some(r)),
                    // Deleted since: look for the tag as a first pull would.
                    Err(Failure::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }))?;
            match got.map_err(|f| f.into_error(&format!("{what} (release id {id})")))? {
                Some(r) if r.tag_name == tag => return Ok(Some(r)),
                _ => {}
            }
        }
        let route = format!("/repos/{}/{}/releases", self.owner, self.name);
        let listed = self
            .block(
                self.list_pages(&route, MAX_STATE_RELEASE_PAGES, |r: &Release| {
                    r.tag_name == tag
                }),
            )?
            .map_err(|f| f.into_error(&what))?;
        if listed.items.is_empty() && listed.cut_off {
            let listed_count = MAX_STATE_RELEASE_PAGES as usize * PER_PAGE;
            return Err(Error::failure(format!(
                "{what}: GitHub listed {listed_count} releases, newest first, without it, and has more; the state release, made by the first push, may be among the older ones, so it is not taken as missing (that would start an empty ledger and a second state release)"
            ))
            .help(format!(
                "delete releases of {} that are no longer needed, or publish artifacts to another repository than the state's (github.repository); a billing-state directory that pulled or pushed before finds the release by the release_id in its .state-pulled.json, without listing",
                self.repository()
            )));
        }
        Ok(pick_release(listed.items))
    }

    /// Create a draft release for `tag`. Not retried: on failure the releases are listed
    /// again and a draft that did get created is returned.
    pub fn create_draft_release(&self, tag: &str) -> Result<Release> {
        self.create_draft_with_body(
            tag,
            "Created by platform. Assets are uploaded and verified while this release is a draft; it is published only when all of them are complete.",
        )
    }

    /// `create_draft_release` with the release's Markdown body.
    pub(super) fn create_draft_with_body(&self, tag: &str, text: &str) -> Result<Release> {
        super::settings::check_tag(tag, "release tag")?;
        self.may_write(tag, WriteOp::CreateRelease)?;
        let what = format!("creating draft release '{tag}' in {}", self.repository());
        let route = format!("/repos/{}/{}/releases", self.owner, self.name);
        let body = serde_json::json!({
            "tag_name": tag,
            "name": tag,
            "draft": true,
            "body": text,
        });
        let payload = Payload::Json(body.to_string());
        let first = self.block(self.api_json::<Release>(Method::POST, &route, payload))?;
        match first {
            Ok(r) => Ok(r),
            Err(failure) => match self.find_release(tag) {
                // The POST may have landed although its answer was lost.
                Ok(Some(r)) if r.draft => Ok(r),
                // Otherwise the POST's own failure is the error worth reporting.
                _ => Err(failure.into_error(&what)),
            },
        }
    }

    /// One release by id (retried).
    pub fn get_release(&self, release_id: u64) -> Result<Release> {
        let route = format!("/repos/{}/{}/releases/{release_id}", self.owner, self.name);
        self.block(self.retrying(|| self.get_json::<Release>(&route)))?
            .map_err(|f| {
                f.into_error(&format!(
                    "reading release {release_id} of {}",
                    self.repository()
                ))
            })
    }

    /// Every asset of a release with its state, size and digest (retried).
    pub fn list_assets(&self, release: &Release) -> Result<Vec<Asset>> {
        self.block(self.list_assets_async(release.id))?
            .map_err(|f| {
                f.into_error(&format!(
                    "listing the assets of release '{}' of {}",
                    release.tag_name,
                    self.repository()
                ))
            })
    }

    /// Upload `path` as asset `name`, streaming the file (memory use does not grow with its
    /// size). Never retried here: a failed upload can leave a `starter` asset behind or may
    /// have succeeded, so callers list the assets again and decide.
    pub fn upload_asset(&self, release: &Release, name: &str, path: &Path) -> Result<Asset> {
        validate_asset_name(name)?;
        self.may_write(&release.tag_name, WriteOp::UploadAsset)?;
        let what = format!(
            "uploading asset '{name}' to release '{}' of {}",
            release.tag_name,
            self.repository()
        );
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, &e))?;
        if meta.len() > MAX_ASSET_BYTES {
            return Err(Error::input(format!(
                "{what}: {} is {} bytes; GitHub release assets must be under 2 GiB",
                path.display(),
                meta.len()
            ))
            .help("split the deliverable or deliver it another way"));
        }
        let base = release
            .upload_url
            .split('{')
            .next()
            .unwrap_or_default()
            .to_string();
        if base.is_empty() {
            return Err(Error::failure(format!(
                "{what}: GitHub gave no upload_url for the release"
            )));
        }
        let uri = format!("{base}?name={name}");
        let path = path.to_path_buf();
        let size = meta.len();
        self.block(async {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| Failure::Local(Error::io(&path, &e)))?;
            let body = FileBody::new(file, size, path.clone());
            let resp = self
                .send(&self.uploads, Method::POST, &uri, Payload::File(body, size))
                .await?;
            read_json::<Asset>(resp).await
        })?
        .map_err(|f| f.into_error(&what))
    }

    /// Delete an asset (retried; an asset that is already gone counts as deleted).
    pub fn delete_asset(&self, release: &Release, asset: &Asset) -> Result<()> {
        self.may_write(&release.tag_name, WriteOp::DeleteAsset)?;
        let route = format!(
            "/repos/{}/{}/releases/assets/{}",
            self.owner, self.name, asset.id
        );
        let result = self.block(self.retrying(|| async {
            match self
                .send(&self.api, Method::DELETE, &route, Payload::Empty)
                .await
            {
                Ok(_) => Ok(()),
                // A retried DELETE whose first try landed sees 404: the goal is reached.
                Err(Failure::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(()),
                Err(e) => Err(e),
            }
        }))?;
        result.map_err(|f| {
            f.into_error(&format!(
                "deleting asset '{}' of release '{}' of {}",
                asset.name,
                release.tag_name,
                self.repository()
            ))
        })
    }

    /// Rename an asset (PATCH name; retried, since giving an asset the name it already has is
    /// harmless). GitHub refuses a name another asset of the release holds.
    pub fn rename_asset(&self, release: &Release, asset: &Asset, name: &str) -> Result<Asset> {
        validate_asset_name(name)?;
        self.may_write(&release.tag_name, WriteOp::RenameAsset)?;
        let route = format!(
            "/repos/{}/{}/releases/assets/{}",
            self.owner, self.name, asset.id
        );
        let body = serde_json::json!({ "name": name }).to_string();
        self.block(self.retrying(|| {
            self.api_json::<Asset>(Method::PATCH, &route, Payload::Json(body.clone()))
        }))?
        .map_err(|f| {
            f.into_error(&format!(
                "renaming asset '{}' of release '{}' of {} to '{name}'",
                asset.name,
                release.tag_name,
                self.repository()
            ))
        })
    }

    /// Download an asset to `dest` (written to a temporary file beside it, then renamed),
    /// hashing while writing. The size and, when GitHub reports it, the digest are checked;
    /// a short or corrupted transfer is retried like any idempotent GET.
    pub fn download_asset(
        &self,
        release: &Release,
        asset: &Asset,
        dest: &Path,
    ) -> Result<Downloaded> {
        let what = format!(
            "downloading asset '{}' of release '{}' of {}",
            asset.name,
            release.tag_name,
            self.repository()
        );
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, &e))?;
        let route = format!(
            "/repos/{}/{}/releases/assets/{}",
            self.owner, self.name, asset.id
        );
        let got = self.block(self.retrying(|| self.download_once(&route, asset, &dir)))?;
        let (tmp, downloaded) = got.map_err(|f| f.into_error(&what))?;
        tmp.persist(dest)
            .map_err(|e| Error::io(dest, &e.error).help("check that the directory is writable"))?;
        Ok(downloaded)
    }

    /// Publish a draft (PATCH draft=false; retried, since setting the flag twice is harmless).
    pub fn publish_release(&self, release: &Release) -> Result<Release> {
        self.may_write(&release.tag_name, WriteOp::PublishRelease)?;
        let route = format!(
            "/repos/{}/{}/releases/{}",
            self.owner, self.name, release.id
        );
        let body = serde_json::json!({"draft": false}).to_string();
        let what = format!(
            "publishing release '{}' of {}",
            release.tag_name,
            self.repository()
        );
        let published = self
            .block(self.retrying(|| {
                self.api_json::<Release>(Method::PATCH, &route, Payload::Json(body.clone()))
            }))?
            .map_err(|f| f.into_error(&what))?;
        if published.draft {
            return Err(Error::failure(format!(
                "{what}: GitHub still reports the release as a draft"
            ))
            .help("re-run: publishing is idempotent"));
        }
        Ok(published)
    }

    /// Checked before every request, since every request carries the token: an absolute URL
    /// (an upload URL GitHub handed back) must be on the API's or the upload origin, and every
    /// URL must be https or loopback. A route is relative to the API base.
    fn check_destination(&self, uri: &str) -> Result<()> {
        if uri.starts_with('/') {
            return check_token_url(&format!("{}{uri}", self.api_url), "the GitHub API URL");
        }
        check_token_url(uri, "a URL GitHub returned")?;
        let origin_of = |u: &str| -> Option<String> {
            let u: http::Uri = u.parse().ok()?;
            Some(format!("{}://{}", u.scheme_str()?, u.authority()?))
        };
        let origin = origin_of(uri);
        if origin.is_some()
            && (origin == origin_of(&self.api_url) || origin == origin_of(&self.upload_origin))
        {
            return Ok(());
        }
        Err(Error::input(format!(
            "refused to send the GitHub token to '{uri}': it is neither on {} nor on {}",
            self.api_url, self.upload_origin
        ))
        .help("check github.api_url; the server's answer named another host"))
    }

    // ---- async internals -------------------------------------------------------------------

    /// Run a future on the client's runtime.
    fn block<F: Future>(&self, fut: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::failure(
                "internal: the GitHub client was called inside an async runtime",
            ));
        }
        let Some(at) = self.deadline else {
            return Ok(self.rt.block_on(fut));
        };
        // Dropping the future on expiry drops its connection: nothing goes on afterwards.
        self.rt
            // Made inside the runtime: a timer needs its reactor.
            .block_on(async { tokio::time::timeout_at(at.into(), fut).await })
            .map_err(|_| {
                Error::failure(format!(
                    "a call to {} was cut off at its deadline (the step's timeout_seconds)",
                    self.api_url
                ))
            })
    }

    async fn find_release_async(&self, tag: &str) -> std::result::Result<Option<Release>, Failure> {
        let route = format!("/repos/{}/{}/releases", self.owner, self.name);
        let listed = self
            .list_pages(&route, MAX_RELEASE_PAGES, |r: &Release| r.tag_name == tag)
            .await?;
        if listed.items.is_empty() && listed.cut_off {
            // Older than the listing: a published release is still found by its tag (drafts
            // are not, so an old draft stays behind and a new one is made).
            return self.published_release_by_tag(tag).await;
        }
        Ok(pick_release(listed.items))
    }

    /// The published release of `tag`, or none (404: no such release, or only drafts).
    async fn published_release_by_tag(
        &self,
        tag: &str,
    ) -> std::result::Result<Option<Release>, Failure> {
        // Tags are checked to be [A-Za-z0-9._-] (settings), so they go into the path as is.
        let route = format!("/repos/{}/{}/releases/tags/{tag}", self.owner, self.name);
        self.retrying(|| async {
            match self.get_json::<Release>(&route).await {
                Ok(r) if r.tag_name == tag => Ok(Some(r)),
                Ok(_) => Ok(None),
                Err(Failure::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn list_assets_async(&self, release_id: u64) -> std::result::Result<Vec<Asset>, Failure> {
        let route = format!(
            "/repos/{}/{}/releases/{release_id}/assets",
            self.owner, self.name
        );
        let listed = self
            .list_pages(&route, MAX_ASSET_PAGES, |_: &Asset| true)
            .await?;
        Ok(listed.items)
    }

    /// The items of a paged list that `keep` accepts, page by page (each retried) up to
    /// `max_pages`, until a page comes back short.
    async fn list_pages<T: DeserializeOwned>(
        &self,
        route: &str,
        max_pages: u32,
        keep: impl Fn(&T) -> bool,
    ) -> std::result::Result<Listed<T>, Failure> {
        let mut items = Vec::new();
        for page in 1..=max_pages {
            let paged = format!("{route}?per_page={PER_PAGE}&page={page}");
            let list: Vec<T> = self.retrying(|| self.get_json(&paged)).await?;
            let n = list.len();
            items.extend(list.into_iter().filter(|item| keep(item)));
            if n < PER_PAGE {
                return Ok(Listed {
                    items,
                    cut_off: false,
                });
            }
        }
        Ok(Listed {
            items,
            cut_off: true,
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, route: &str) -> std::result::Result<T, Failure> {
        self.api_json(Method::GET, route, Payload::Empty).await
    }

    /// One API call whose answer is JSON.
    async fn api_json<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        payload: Payload,
    ) -> std::result::Result<T, Failure> {
        let resp = self.send(&self.api, method, route, payload).await?;
        // A body that is not the JSON expected is quoted in the error.
        read_json(resp)
            .await
            .map_err(|f| f.redacted(&self.redactor))
    }

    async fn download_once(
        &self,
        route: &str,
        asset: &Asset,
        dir: &Path,
    ) -> std::result::Result<(tempfile::NamedTempFile, Downloaded), Failure> {
        let resp = self
            .send(&self.api, Method::GET, route, Payload::Download)
            .await?;
        let tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| Failure::Local(Error::io(dir, &e)))?;
        let tmp_path = tmp.path().to_path_buf();
        let mut writer = HashingWriter::new(tmp);
        let mut body = resp.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Failure::Transport(format!("reading the download: {e}")))?;
            if let Ok(data) = frame.into_data() {
                // A server sending more than the asset's size would otherwise fill the disk
                // before the size check below.
                received = received.saturating_add(data.len() as u64);
                if received > asset.size {
                    return Err(Failure::Transport(format!(
                        "received more than the {} bytes GitHub lists for the asset",
                        asset.size
                    )));
                }
                writer
                    .write_all(&data)
                    .map_err(|e| Failure::Local(Error::io(&tmp_path, &e)))?;
            }
        }
        let (mut tmp, sha256, bytes) = writer.finish();
        tmp.flush()
            .map_err(|e| Failure::Local(Error::io(&tmp_path, &e)))?;
        if bytes != asset.size {
            return Err(Failure::Transport(format!(
                "received {bytes} bytes, GitHub lists {} for the asset",
                asset.size
            )));
        }
        if let Some(expected) = asset.sha256() {
            if expected != sha256 {
                return Err(Failure::Transport(format!(
                    "received bytes with SHA-256 {sha256}, GitHub lists {expected} for the asset"
                )));
            }
        }
        Ok((tmp, Downloaded { sha256, bytes }))
    }

    /// Retry `call` on rate limits, 5xx and transport errors, with exponential backoff
    /// bounded by the policy. Only ever used for idempotent requests.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> std::result::Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut delay = self.policy.first_delay;
        let mut attempt = 1u32;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(f) if f.retryable() && attempt < self.policy.attempts.max(1) => {
                    let wait = f.requested_wait().unwrap_or(delay);
                    if wait > self.policy.max_wait {
                        return Err(f.note(format!(
                            "GitHub asked to wait {}s before retrying, more than the {}s this command waits",
                            wait.as_secs(),
                            self.policy.max_wait.as_secs()
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                Err(f) if f.retryable() && attempt > 1 => {
                    return Err(f.note(format!("gave up after {attempt} attempts")));
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// One HTTP exchange; a non-2xx answer becomes a `Failure::Status` with GitHub's message.
    async fn send(
        &self,
        client: &Octocrab,
        method: Method,
        uri: &str,
        payload: Payload,
    ) -> std::result::Result<Response<RespBody>, Failure> {
        self.check_destination(uri).map_err(Failure::Local)?;
        let accept = match payload {
            Payload::Download => "application/octet-stream",
            _ => "application/vnd.github+json",
        };
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, accept)
            .header("X-GitHub-Api-Version", "2022-11-28");
        let request = match payload {
            Payload::Empty | Payload::Download => builder
                .header(header::CONTENT_LENGTH, "0")
                .body(OctoBody::empty()),
            Payload::Json(s) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(OctoBody::from(s)),
            Payload::File(body, size) => builder
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size.to_string())
                .body(OctoBody::new(body)),
        }
        .map_err(|e| {
            Failure::Local(Error::failure(format!(
                "cannot build the request for {uri}: {e}"
            )))
        })?;
        let response = client.execute(request).await.map_err(|e| {
            Failure::Transport(describe_octocrab_error(&e)).redacted(&self.redactor)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = match Limited::new(response.into_body(), MAX_ERROR_ANSWER_BYTES)
            .collect()
            .await
        {
            Ok(c) => c.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Err(Failure::from_response(status, &headers, &body).redacted(&self.redactor))
    }
}

type RespBody = http_body_util::combinators::BoxBody<Bytes, octocrab::Error>;

/// What a paged listing kept, and whether it stopped at its page limit on a full page (so
/// more may follow that it never saw).
struct Listed<T> {
    items: Vec<T>,
    cut_off: bool,
}

/// Of the releases with one tag, a published one wins over drafts, then the oldest draft.
fn pick_release(mut found: Vec<Release>) -> Option<Release> {
    found.sort_by_key(|r| (r.draft, r.id));
    found.into_iter().next()
}

enum Payload {
    Empty,
    Download,
    Json(String),
    File(FileBody, u64),
}

async fn read_json<T: DeserializeOwned>(
    resp: Response<RespBody>,
) -> std::result::Result<T, Failure> {
    let bytes = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                Failure::Local(Error::failure(format!(
                    "GitHub's answer was longer than {} MiB, far more than any real answer; check github.api_url",
                    MAX_ANSWER_BYTES >> 20
                )))
            } else {
                Failure::Transport(format!("reading the response: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::Local(Error::failure(format!(
            "unexpected response from GitHub ({e}): {}",
            truncate(&String::from_utf8_lossy(&bytes), 300)
        )))
    })
}

fn build_octocrab(base: &str, upload: &str, token: &str, repository: &str) -> Result<Octocrab> {
    let bad = |e: octocrab::Error| {
        Error::input(format!("github.api_url '{base}' cannot be used: {e}")).help(format!(
            "check the github: block of the runtime profile (repository {repository})"
        ))
    };
    Octocrab::builder()
        .base_uri(base)
        .map_err(bad)?
        .upload_uri(upload)
        .map_err(bad)?
        .personal_token(token.to_string())
        // No retry layer: octocrab is built without its `retry` feature, because its layer
        // would also replay POSTs at once; our own loop retries idempotent calls only.
        .set_connect_timeout(Some(Duration::from_secs(15)))
        .set_read_timeout(Some(Duration::from_secs(120)))
        .set_write_timeout(Some(Duration::from_secs(120)))
        .build()
        .map_err(bad)
}

/// Where uploads go: uploads.github.com for github.com, the API's own origin otherwise
/// (GitHub Enterprise Server serves `/api/uploads` on the same host; tests use one server).
fn upload_origin(api_url: &str) -> Result<String> {
    let uri: http::Uri = api_url
        .parse()
        .map_err(|e| Error::input(format!("github.api_url '{api_url}' is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (_, Some(a)) if a.as_str() == "api.github.com" => {
            Ok("https://uploads.github.com".to_string())
        }
        (Some(s), Some(a)) => Ok(format!("{s}://{a}")),
        _ => Err(Error::input(format!(
            "github.api_url '{api_url}' has no scheme or host"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::github::failure::github_message;

    #[test]
    fn asset_names() {
        for ok in ["a.zip", "SHA256SUMS", "t1__wo__s1__d.zip", "billing.jsonl"] {
            assert!(validate_asset_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b.zip", "a&b", ".hidden", "x/y", "ä.zip"] {
            assert!(validate_asset_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_origins() {
        assert_eq!(
            upload_origin("https://api.github.com").unwrap(),
            "https://uploads.github.com"
        );
        assert_eq!(
            upload_origin("https://ghe.example/api/v3").unwrap(),
            "https://ghe.example"
        );
        assert_eq!(
            upload_origin("http://127.0.0.1:4567").unwrap(),
            "http://127.0.0.1:4567"
        );
    }

    #[test]
    fn messages_and_retry_classes() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"ReleaseAsset","code":"already_exists","field":"name"}]}"#;
        assert_eq!(
            github_message(body),
            "Validation Failed [already_exists (name)]"
        );
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        let f = Failure::from_response(StatusCode::FORBIDDEN, &h, b"{}");
        assert!(f.retryable());
        assert_eq!(f.requested_wait(), Some(Duration::from_secs(3)));
        let f = Failure::from_response(StatusCode::FORBIDDEN, &http::HeaderMap::new(), b"{}");
        assert!(!f.retryable());
        let f = Failure::from_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &http::HeaderMap::new(),
            b"{}",
        );
        assert!(!f.retryable());
        assert!(
            Failure::from_response(StatusCode::BAD_GATEWAY, &http::HeaderMap::new(), b"")
                .retryable()
        );
    }

    #[test]
    fn digests() {
        let mut a = Asset {
            id: 1,
            name: "x".into(),
            size: 1,
            state: "uploaded".into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            browser_download_url: String::new(),
        };
        assert_eq!(a.sha256(), Some("a".repeat(64).as_str()));
        a.digest = Some("md5:abc".into());
        assert_eq!(a.sha256(), None);
    }
}
