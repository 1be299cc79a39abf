//! This build's identity: its version and its executable, so a derived cache written by another build (whose validation or record types may differ) is never trusted.

/// `<version>+<inode>:<length>:<mtime>` of the running executable.
pub fn id() -> String {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{}:{}:{}.{}", m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
        .unwrap_or_default();
    format!("{}+{exe}", env!("CARGO_PKG_VERSION"))
}
