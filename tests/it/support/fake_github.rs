//! A stateful fake of GitHub's Releases REST API (and of the workflow-run lookup that
//! publish.yml makes) on a loopback wiremock server, with injectable failures (a failed Nth
//! or named upload, 429/5xx GETs, 5xx POSTs, failed renames, a held upload answer) and a call log.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::check::sha256_hex;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "test-token-123";

#[derive(Debug, Clone)]
pub struct FakeAsset {
    pub id: u64,
    pub name: String,
    pub state: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeRelease {
    pub id: u64,
    pub tag_name: String,
    pub draft: bool,
    pub assets: Vec<FakeAsset>,
    /// The Markdown body, as created (artifact releases carry their owner line).
    pub body: String,
}

/// An injected answer: status, extra headers.
#[derive(Debug, Clone)]
pub struct Injected {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Injected {
    /// A retryable answer that says "retry now".
    pub fn retry_now(status: u16) -> Self {
        Injected {
            status,
            headers: vec![("retry-after".into(), "0".into())],
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub base: String,
    /// `owner/name` used in the URLs the fake hands out.
    pub repo: String,
    next_id: u64,
    /// In creation order; listed newest first, as GitHub does.
    pub releases: Vec<FakeRelease>,
    /// Compact labels of every request: "list releases", "upload a.zip", ...
    pub calls: Vec<String>,
    /// The Nth upload (1-based, counting every upload) fails with this status; with
    /// `leave_starter` it leaves an incomplete asset behind, as GitHub can on a 502.
    pub fail_upload: Option<(usize, u16, bool)>,
    /// The next upload whose asset name starts with this fails with this status (once);
    /// with `leave_starter` it leaves an incomplete asset behind.
    pub fail_upload_of: Option<(String, u16, bool)>,
    pub uploads_seen: usize,
    /// The next `n` PATCHes of the name of an asset whose name starts with this are answered
    /// 500 (the client retries them, so 4 make it give up).
    pub fail_rename_of: Option<(String, usize)>,
    /// A snapshot of the release's asset names after each call, when set: what a reader
    /// listing the release at any moment could have seen.
    pub record_names: bool,
    pub names_seen: Vec<Vec<String>>,
    /// The next GETs (API routes) are answered with these instead.
    pub fail_gets: VecDeque<Injected>,
    /// The next POSTs that create a release are answered with these instead.
    pub fail_creates: VecDeque<u16>,
    /// Create the release but answer 502, as when a response is lost.
    pub lose_create_response: bool,
    /// Report no `digest` on assets (older servers).
    pub omit_digest: bool,
    /// The next upload of this asset name is stored with one byte flipped, same size.
    pub corrupt_upload: Option<String>,
    /// Store each upload, then hold its answer this long (a server that took the bytes and
    /// keeps the client waiting).
    pub delay_uploads: Option<std::time::Duration>,
    /// Hand out upload URLs on this origin instead of the fake's own (a hostile answer).
    pub upload_base: Option<String>,
    /// Answer a request without the right token 401 with a body that echoes the
    /// Authorization header it got (a server whose error text a client must not copy).
    pub echo_authorization: bool,
    /// The Authorization headers of the requests answered 401, as they arrived.
    pub refused_authorizations: Vec<String>,
    /// Every API call is answered 401 with a message quoting the request's Authorization
    /// header, as some proxies and front ends do.
    pub echo_every_authorization: bool,
    /// The answer to the next call whose label starts with this is held this long (a slow
    /// download or listing, while another process works on the same directory); once.
    pub delay_next: Option<(String, std::time::Duration)>,
    /// `GET /repos/o/n/actions/runs/{id}` answers, by run id (publish.yml's provenance check).
    pub workflow_runs: std::collections::BTreeMap<u64, serde_json::Value>,
    /// Release listings are answered with this many bytes of JSON (a hostile or broken server).
    pub huge_listing: Option<usize>,
}

pub struct FakeGithub {
    pub server: MockServer,
    pub state: Arc<Mutex<FakeState>>,
    // Keeps the runtime that registered the mock alive for the server's lifetime.
    _rt: tokio::runtime::Runtime,
}

impl FakeGithub {
    /// Start a fake for `acme/artifacts` on loopback. Call it outside any tokio runtime.
    pub fn start() -> FakeGithub {
        Self::start_for("acme/artifacts")
    }

    pub fn start_for(repo: &str) -> FakeGithub {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(MockServer::builder().start());
        let state = Arc::new(Mutex::new(FakeState {
            base: server.uri(),
            repo: repo.to_string(),
            next_id: 1,
            ..Default::default()
        }));
        rt.block_on(
            Mock::given(any())
                .respond_with(Responder(state.clone()))
                .mount(&server),
        );
        FakeGithub {
            server,
            state,
            _rt: rt,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    pub fn release(&self, tag: &str) -> Option<FakeRelease> {
        self.state()
            .releases
            .iter()
            .find(|r| r.tag_name == tag)
            .cloned()
    }

    /// Add a release with the given assets (all `uploaded` unless named in `starters`).
    pub fn seed_release(
        &self,
        tag: &str,
        draft: bool,
        assets: &[(&str, &[u8])],
        starters: &[&str],
    ) -> u64 {
        let mut st = self.state();
        let id = st.take_id();
        let mut list = Vec::new();
        for (name, data) in assets {
            let aid = st.take_id();
            let starter = starters.contains(name);
            list.push(FakeAsset {
                id: aid,
                name: name.to_string(),
                state: if starter { "starter" } else { "uploaded" }.to_string(),
                data: if starter { Vec::new() } else { data.to_vec() },
            });
        }
        st.releases.push(FakeRelease {
            id,
            tag_name: tag.to_string(),
            draft,
            assets: list,
            body: String::new(),
        });
        id
    }

    /// Add `n` published releases without assets, tagged `<prefix><i>`, newer than any before
    /// (a repository where every run made its own release).
    pub fn seed_releases(&self, prefix: &str, n: usize) {
        let mut st = self.state();
        for i in 0..n {
            let id = st.take_id();
            st.releases.push(FakeRelease {
                id,
                tag_name: format!("{prefix}{i}"),
                draft: false,
                assets: Vec::new(),
                body: String::new(),
            });
        }
    }

    /// How many releases carry this tag (drafts included).
    pub fn releases_tagged(&self, tag: &str) -> usize {
        self.state()
            .releases
            .iter()
            .filter(|r| r.tag_name == tag)
            .count()
    }

    /// Replace the body of the release `tag` (e.g. to give a seeded release its owner line).
    pub fn set_body(&self, tag: &str, body: &str) {
        let mut st = self.state();
        let r = st.releases.iter_mut().find(|r| r.tag_name == tag).unwrap();
        r.body = body.to_string();
    }

    /// Store the next upload of `name` with its first byte flipped (its size unchanged), as a
    /// transfer corrupted on the server's side would be.
    pub fn corrupt_next_upload(&self, name: &str) {
        self.state().corrupt_upload = Some(name.to_string());
    }

    /// Hold the answer to the next call whose label starts with `prefix` for `wait`.
    pub fn delay_next(&self, prefix: &str, wait: std::time::Duration) {
        self.state().delay_next = Some((prefix.to_string(), wait));
    }

    /// Wait (up to 60 s) until a call whose label starts with `prefix` has arrived (since the
    /// last `clear_calls`).
    pub fn wait_for_call(&self, prefix: &str) {
        let start = std::time::Instant::now();
        while !self.calls().iter().any(|c| c.starts_with(prefix)) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "no call {prefix:?} arrived: {:?}",
                self.calls()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Every call that changes a release: creating, uploading, deleting, publishing.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| {
                ["create", "upload", "delete", "publish", "update", "rename"]
                    .iter()
                    .any(|w| c.starts_with(w))
            })
            .collect()
    }

    /// Put `data` as the uploaded asset `name` of the release `tag` (replacing any asset of
    /// that name), as anyone with write access to the release can: no API call is logged.
    pub fn put_asset(&self, tag: &str, name: &str, data: &[u8]) {
        let mut st = self.state();
        let id = st.take_id();
        let release = st
            .releases
            .iter_mut()
            .find(|r| r.tag_name == tag)
            .expect("no such release");
        release.assets.retain(|a| a.name != name);
        release.assets.push(FakeAsset {
            id,
            name: name.to_string(),
            state: "uploaded".into(),
            data: data.to_vec(),
        });
    }

    /// Remove the asset `name` of the release `tag`, if any.
    pub fn remove_asset(&self, tag: &str, name: &str) {
        let mut st = self.state();
        if let Some(r) = st.releases.iter_mut().find(|r| r.tag_name == tag) {
            r.assets.retain(|a| a.name != name);
        }
    }

    /// The bytes of an asset of the release `tag`.
    pub fn asset_data(&self, tag: &str, name: &str) -> Option<Vec<u8>> {
        self.release(tag)?
            .assets
            .into_iter()
            .find(|a| a.name == name && a.state == "uploaded")
            .map(|a| a.data)
    }
}

struct Responder(Arc<Mutex<FakeState>>);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let seen = st.calls.len();
        let mut answer = st.handle(req);
        let delayed = st.delay_next.as_ref().and_then(|(prefix, wait)| {
            let hit = st.calls[seen..]
                .iter()
                .any(|c| c.starts_with(prefix.as_str()));
            hit.then_some(*wait)
        });
        if let Some(wait) = delayed {
            st.delay_next = None;
            answer = answer.set_delay(wait);
        }
        if st.record_names {
            let names = st
                .releases
                .iter()
                .flat_map(|r| r.assets.iter().map(|a| format!("{} ({})", a.name, a.state)))
                .collect();
            st.names_seen.push(names);
        }
        answer
    }
}

fn message(status: u16, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "message": msg,
        "documentation_url": "https://docs.github.com/rest",
    }))
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl FakeState {
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn release_json(&self, r: &FakeRelease) -> serde_json::Value {
        let (base, repo) = (&self.base, &self.repo);
        let uploads = self.upload_base.as_deref().unwrap_or(base);
        serde_json::json!({
            "id": r.id,
            "tag_name": r.tag_name,
            "name": r.tag_name,
            "draft": r.draft,
            "body": r.body,
            "prerelease": false,
            "immutable": !r.draft,
            "upload_url": format!("{uploads}/uploads/repos/{repo}/releases/{}/assets{{?name,label}}", r.id),
            "html_url": format!("{base}/{repo}/releases/tag/{}", r.tag_name),
            "assets": r.assets.iter().map(|a| self.asset_json(r, a)).collect::<Vec<_>>(),
        })
    }

    fn asset_json(&self, r: &FakeRelease, a: &FakeAsset) -> serde_json::Value {
        let (base, repo) = (&self.base, &self.repo);
        let folder = if r.draft {
            format!("untagged-{}", r.id)
        } else {
            r.tag_name.clone()
        };
        let digest = if self.omit_digest || a.state != "uploaded" {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(format!("sha256:{}", sha256_hex(&a.data)))
        };
        let mut json = serde_json::json!({
            "id": a.id,
            "name": a.name,
            "label": "",
            "state": a.state,
            "size": a.data.len(),
            "digest": digest,
            "content_type": "application/octet-stream",
            "url": format!("{base}/repos/{repo}/releases/assets/{}", a.id),
            "browser_download_url": format!("{base}/{repo}/releases/download/{folder}/{}", a.name),
        });
        if self.omit_digest {
            // Older servers have no such field at all.
            json.as_object_mut().unwrap().remove("digest");
        }
        json
    }

    fn find_asset(&self, aid: u64) -> Option<(usize, usize)> {
        for (ri, r) in self.releases.iter().enumerate() {
            if let Some(ai) = r.assets.iter().position(|a| a.id == aid) {
                return Some((ri, ai));
            }
        }
        None
    }

    fn handle(&mut self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_string();
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = req.method.as_str().to_string();

        // Downloads are served by a storage host in real life: no token needed, no API shape.
        if let ["downloads", aid] = segs.as_slice() {
            self.calls.push("storage download".into());
            let Some((ri, ai)) = aid.parse().ok().and_then(|id| self.find_asset(id)) else {
                return message(404, "Not Found");
            };
            let data = self.releases[ri].assets[ai].data.clone();
            return ResponseTemplate::new(200).set_body_bytes(data);
        }

        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if self.echo_every_authorization {
            self.calls.push(format!("echoed {method} {path}"));
            return message(401, &format!("Bad credentials (sent: {auth})"));
        }
        if auth != format!("Bearer {TOKEN}") {
            self.calls.push(format!("unauthorized {method} {path}"));
            self.refused_authorizations.push(auth.to_string());
            if self.echo_authorization {
                return message(401, &format!("Bad credentials: you sent '{auth}'"));
            }
            return message(401, "Bad credentials");
        }

        if method == "GET" {
            if let Some(inj) = self.fail_gets.pop_front() {
                self.calls
                    .push(format!("injected {} on GET {path}", inj.status));
                let mut t = message(inj.status, "injected failure");
                for (k, v) in &inj.headers {
                    t = t.insert_header(k.as_str(), v.as_str());
                }
                return t;
            }
        }

        match (method.as_str(), segs.as_slice()) {
            ("GET", ["repos", _, _, "releases"]) => {
                self.calls.push("list releases".into());
                if let Some(n) = self.huge_listing {
                    // One long string in a well-formed array: only its length is wrong.
                    let body = format!("[\"{}\"]", "x".repeat(n));
                    return ResponseTemplate::new(200).set_body_raw(body, "application/json");
                }
                let per_page: usize = query(req, "per_page")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30);
                let page: usize = query(req, "page").and_then(|v| v.parse().ok()).unwrap_or(1);
                let slice: Vec<serde_json::Value> = self
                    .releases
                    .iter()
                    .rev()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|r| self.release_json(r))
                    .collect();
                ResponseTemplate::new(200).set_body_json(slice)
            }
            ("POST", ["repos", _, _, "releases"]) => {
                self.calls.push("create release".into());
                if let Some(status) = self.fail_creates.pop_front() {
                    return message(status, "injected failure");
                }
                let body: serde_json::Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(_) => return message(400, "Problems parsing JSON"),
                };
                let tag = body["tag_name"].as_str().unwrap_or_default().to_string();
                if self.releases.iter().any(|r| r.tag_name == tag && !r.draft) {
                    return ResponseTemplate::new(422).set_body_json(serde_json::json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
                    }));
                }
                let id = self.take_id();
                let r = FakeRelease {
                    id,
                    tag_name: tag,
                    draft: body["draft"].as_bool().unwrap_or(false),
                    assets: Vec::new(),
                    body: body["body"].as_str().unwrap_or_default().to_string(),
                };
                let json = self.release_json(&r);
                self.releases.push(r);
                if self.lose_create_response {
                    self.lose_create_response = false;
                    return message(502, "Bad Gateway");
                }
                ResponseTemplate::new(201).set_body_json(json)
            }
            // As on GitHub: published releases only (a draft has no tag yet).
            ("GET", ["repos", _, _, "releases", "tags", tag]) => {
                self.calls.push(format!("get release by tag {tag}"));
                match self
                    .releases
                    .iter()
                    .find(|r| r.tag_name == *tag && !r.draft)
                {
                    Some(r) => ResponseTemplate::new(200).set_body_json(self.release_json(r)),
                    None => message(404, "Not Found"),
                }
            }
            ("GET", ["repos", _, _, "releases", "assets", aid]) => {
                let Some((ri, ai)) = aid.parse().ok().and_then(|id| self.find_asset(id)) else {
                    return message(404, "Not Found");
                };
                let accept = req
                    .headers
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let name = self.releases[ri].assets[ai].name.clone();
                if accept == "application/octet-stream" {
                    self.calls.push(format!("download {name}"));
                    let base = self.base.clone();
                    return ResponseTemplate::new(302)
                        .insert_header("location", format!("{base}/downloads/{aid}").as_str());
                }
                self.calls.push(format!("get asset {name}"));
                let json = self.asset_json(&self.releases[ri], &self.releases[ri].assets[ai]);
                ResponseTemplate::new(200).set_body_json(json)
            }
            ("PATCH", ["repos", _, _, "releases", "assets", aid]) => {
                let Some((ri, ai)) = aid.parse().ok().and_then(|id| self.find_asset(id)) else {
                    return message(404, "Not Found");
                };
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let old = self.releases[ri].assets[ai].name.clone();
                let Some(name) = body["name"].as_str().map(str::to_string) else {
                    self.calls.push(format!("update asset {old}"));
                    let json = self.asset_json(&self.releases[ri], &self.releases[ri].assets[ai]);
                    return ResponseTemplate::new(200).set_body_json(json);
                };
                self.calls.push(format!("rename {old} to {name}"));
                if let Some((prefix, n)) = self.fail_rename_of.as_mut() {
                    if *n > 0 && old.starts_with(prefix.as_str()) {
                        *n -= 1;
                        return message(500, "injected failure");
                    }
                }
                let taken = self.releases[ri]
                    .assets
                    .iter()
                    .any(|a| a.name == name && a.id != self.releases[ri].assets[ai].id);
                if taken {
                    return ResponseTemplate::new(422).set_body_json(serde_json::json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
                    }));
                }
                self.releases[ri].assets[ai].name = name;
                let json = self.asset_json(&self.releases[ri], &self.releases[ri].assets[ai]);
                ResponseTemplate::new(200).set_body_json(json)
            }
            ("DELETE", ["repos", _, _, "releases", "assets", aid]) => {
                let Some((ri, ai)) = aid.parse().ok().and_then(|id| self.find_asset(id)) else {
                    self.calls.push("delete missing asset".into());
                    return message(404, "Not Found");
                };
                if !self.releases[ri].draft {
                    self.calls.push("delete refused".into());
                    return message(422, "Cannot delete assets of an immutable release.");
                }
                let a = self.releases[ri].assets.remove(ai);
                self.calls.push(format!("delete {}", a.name));
                ResponseTemplate::new(204)
            }
            ("GET", ["repos", _, _, "releases", rid]) => {
                self.calls.push("get release".into());
                match self.releases.iter().find(|r| rid.parse() == Ok(r.id)) {
                    Some(r) => ResponseTemplate::new(200).set_body_json(self.release_json(r)),
                    None => message(404, "Not Found"),
                }
            }
            ("PATCH", ["repos", _, _, "releases", rid]) => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let Some(ri) = self.releases.iter().position(|r| rid.parse() == Ok(r.id)) else {
                    return message(404, "Not Found");
                };
                if body["draft"] == serde_json::Value::Bool(false) {
                    self.calls.push("publish release".into());
                    self.releases[ri].draft = false;
                } else {
                    self.calls.push("update release".into());
                }
                let json = self.release_json(&self.releases[ri]);
                ResponseTemplate::new(200).set_body_json(json)
            }
            ("GET", ["repos", _, _, "releases", rid, "assets"]) => {
                self.calls.push("list assets".into());
                let per_page: usize = query(req, "per_page")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30);
                let page: usize = query(req, "page").and_then(|v| v.parse().ok()).unwrap_or(1);
                match self.releases.iter().find(|r| rid.parse() == Ok(r.id)) {
                    Some(r) => {
                        let list: Vec<_> = r
                            .assets
                            .iter()
                            .skip((page - 1) * per_page)
                            .take(per_page)
                            .map(|a| self.asset_json(r, a))
                            .collect();
                        ResponseTemplate::new(200).set_body_json(list)
                    }
                    None => message(404, "Not Found"),
                }
            }
            ("POST", ["uploads", "repos", _, _, "releases", rid, "assets"]) => {
                self.upload(req, rid)
            }
            ("GET", ["repos", _, _, "actions", "runs", rid]) => {
                self.calls.push(format!("get workflow run {rid}"));
                match rid.parse().ok().and_then(|id| self.workflow_runs.get(&id)) {
                    Some(run) => ResponseTemplate::new(200).set_body_json(run.clone()),
                    None => message(404, "Not Found"),
                }
            }
            _ => {
                self.calls.push(format!("unknown {method} {path}"));
                message(404, "Not Found")
            }
        }
    }

    fn upload(&mut self, req: &Request, rid: &str) -> ResponseTemplate {
        let name = query(req, "name").unwrap_or_default();
        self.calls.push(format!("upload {name}"));
        self.uploads_seen += 1;
        let Some(ri) = self.releases.iter().position(|r| rid.parse() == Ok(r.id)) else {
            return message(404, "Not Found");
        };
        let declared = req
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared != Some(req.body.len()) {
            return message(400, "Content-Length is required and must match the body");
        }
        let named = self
            .fail_upload_of
            .as_ref()
            .filter(|(prefix, _, _)| name.starts_with(prefix.as_str()))
            .map(|(_, status, starter)| (self.uploads_seen, *status, *starter));
        if named.is_some() {
            self.fail_upload_of = None;
        }
        if let Some((n, status, leave_starter)) = named.or(self.fail_upload) {
            if n == self.uploads_seen {
                if leave_starter {
                    let id = self.take_id();
                    self.releases[ri].assets.push(FakeAsset {
                        id,
                        name: name.clone(),
                        state: "starter".into(),
                        data: Vec::new(),
                    });
                }
                return message(status, "injected upload failure");
            }
        }
        if !self.releases[ri].draft {
            return message(422, "Cannot upload assets to an immutable release.");
        }
        if self.releases[ri].assets.iter().any(|a| a.name == name) {
            return ResponseTemplate::new(422).set_body_json(serde_json::json!({
                "message": "Validation Failed",
                "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
            }));
        }
        let mut data = req.body.clone();
        if self.corrupt_upload.as_ref() == Some(&name) && !data.is_empty() {
            self.corrupt_upload = None;
            data[0] ^= 0x01;
        }
        let id = self.take_id();
        let asset = FakeAsset {
            id,
            name,
            state: "uploaded".into(),
            data,
        };
        let json = self.asset_json(&self.releases[ri], &asset);
        self.releases[ri].assets.push(asset);
        let answer = ResponseTemplate::new(201).set_body_json(json);
        match self.delay_uploads {
            Some(d) => answer.set_delay(d),
            None => answer,
        }
    }
}
