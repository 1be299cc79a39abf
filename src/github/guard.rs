//! What a GitHub client may do: which releases it may write, by the purpose it was made for,
//! and which URLs its token may travel to. Pure checks; the client calls them before sending.
use crate::error::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The token comes from this variable only (SPEC §2); it never appears in output.
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";

/// Why a client exists. Fixed when the client is made, so a delivery or the publisher holds a
/// client that cannot write the state release whatever tag reaches it (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `state pull`: reads the state release, writes nothing.
    StatePull,
    /// `state push`: writes the state release only, and never publishes it (it stays a draft).
    StatePush,
    /// `platform publish`: writes artifact releases only.
    Publish,
    /// `deliver_github_release`: writes artifact releases only.
    Delivery,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::StatePull => "state pull",
            Purpose::StatePush => "state push",
            Purpose::Publish => "publish",
            Purpose::Delivery => "deliver_github_release",
        }
    }
}

/// The release-writing calls of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    CreateRelease,
    UploadAsset,
    DeleteAsset,
    RenameAsset,
    PublishRelease,
}

impl WriteOp {
    fn as_str(self) -> &'static str {
        match self {
            WriteOp::CreateRelease => "create",
            WriteOp::UploadAsset => "upload an asset to",
            WriteOp::DeleteAsset => "delete an asset of",
            WriteOp::RenameAsset => "rename an asset of",
            WriteOp::PublishRelease => "publish",
        }
    }
}

/// May a client made for `purpose` do `op` on the release `tag`, given the profile's
/// `state_tag`? Tags are compared ASCII case-insensitively: GitHub does not keep two tags
/// that differ only in case apart reliably, so neither does this check.
pub fn check_write(purpose: Purpose, state_tag: &str, tag: &str, op: WriteOp) -> Result<()> {
    let is_state = tag.eq_ignore_ascii_case(state_tag);
    let why = match purpose {
        Purpose::StatePull => Some("state pull only reads".to_string()),
        Purpose::StatePush if !is_state => Some(format!(
            "state push writes the state release '{state_tag}' only"
        )),
        Purpose::StatePush if op == WriteOp::PublishRelease => {
            Some("the state release stays a draft, so that its assets can be replaced".to_string())
        }
        Purpose::StatePush => None,
        Purpose::Publish | Purpose::Delivery if is_state => Some(format!(
            "'{tag}' is the state release (github.state_tag), which only `state push` writes"
        )),
        Purpose::Publish | Purpose::Delivery => None,
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::input(format!(
            "refused: {} may not {} release '{tag}': {why}",
            purpose.as_str(),
            op.as_str()
        ))
        .help("release tags come from the runtime profile's github.release_tag and github.state_tag; nothing else chooses them")),
    }
}

/// The token may only travel over https, or in clear to this machine (a test server).
/// `url` is absolute; `what` names it in the error.
pub fn check_token_url(url: &str, what: &str) -> Result<()> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| Error::input(format!("{what} '{url}' is not a URL: {e}")))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(Error::input(format!("{what} '{url}' names no host")));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(Error::input(format!(
            "{what} '{url}' is http://: the GitHub token would cross the network in clear text"
        ))
        .help("use https:// (https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server); http:// is accepted only for a loopback host (127.0.0.0/8, ::1, localhost), as tests use")),
        _ => Err(Error::input(format!("{what} '{url}' is not an https:// URL")).help(
            "use https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server",
        )),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1, exactly: a name that merely resolves to this machine
/// does not count, since resolution is not ours to check.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || bare
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| ip == Ipv6Addr::LOCALHOST)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_state_push_writes_the_state_release() {
        use Purpose::*;
        use WriteOp::*;
        let state = "billing-state-v1";
        for op in [
            CreateRelease,
            UploadAsset,
            DeleteAsset,
            RenameAsset,
            PublishRelease,
        ] {
            for p in [StatePull, Publish, Delivery] {
                for tag in [state, "BILLING-STATE-V1"] {
                    assert!(
                        check_write(p, state, tag, op).is_err(),
                        "{p:?} {op:?} {tag}"
                    );
                }
            }
            assert!(check_write(StatePull, state, "artifacts-a-b-r1", op).is_err());
            assert!(check_write(StatePush, state, "artifacts-a-b-r1", op).is_err());
            assert!(check_write(Publish, state, "artifacts-a-b-r1", op).is_ok());
            assert!(check_write(Delivery, state, "artifacts-a-b-r1", op).is_ok());
        }
        for op in [CreateRelease, UploadAsset, DeleteAsset, RenameAsset] {
            assert!(check_write(StatePush, state, state, op).is_ok());
        }
        let err = check_write(StatePush, state, state, PublishRelease).unwrap_err();
        assert!(err.message.contains("stays a draft"), "{err}");
    }

    #[test]
    fn the_token_goes_over_https_or_to_loopback_only() {
        for ok in [
            "https://api.github.com",
            "https://ghe.example/api/v3",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:1/x",
            "http://[::1]:9000",
        ] {
            assert!(check_token_url(ok, "u").is_ok(), "{ok}");
        }
        for bad in [
            "http://api.github.com",
            "http://10.0.0.1",
            "http://[::ffff:127.0.0.1]:80",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "ftp://example.com",
            "api.github.com",
            "/relative",
        ] {
            let err = check_token_url(bad, "github.api_url").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }
}
