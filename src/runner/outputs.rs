//! Checks what a step left in its outputs dir: declared outputs exist, nothing escapes via
//! symlinks, and each file is recorded with its size and SHA-256.
use super::FileRecord;
use crate::contract::{ModuleContract, OutputType};
use crate::digest::sha256_file;
use std::path::Path;

/// Refuse any symlink under `dir`: a module could otherwise point later steps, packages or
/// deliveries at files outside its own folder.
pub fn find_symlink(dir: &Path) -> Option<String> {
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.path_is_symlink() {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            return Some(rel.display().to_string());
        }
    }
    None
}

/// Record every declared file/dir output; Err(message) names what is missing.
pub fn collect(contract: &ModuleContract, outputs_dir: &Path) -> Result<Vec<FileRecord>, String> {
    if let Some(link) = find_symlink(outputs_dir) {
        return Err(format!(
            "the module left a symlink in its outputs: {link}; outputs must be regular files"
        ));
    }
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for out in &contract.outputs {
        let rel = match out.ty {
            OutputType::Value => continue,
            _ => out.path.clone().unwrap_or_else(|| out.id.clone()),
        };
        let path = outputs_dir.join(&rel);
        match out.ty {
            OutputType::File if path.is_file() => match sha256_file(&path) {
                Ok((sha, bytes)) => records.push(FileRecord {
                    id: out.id.clone(),
                    path: rel,
                    bytes,
                    sha256: sha,
                }),
                Err(e) => missing.push(format!("{} ({})", rel, e.message)),
            },
            OutputType::Dir if path.is_dir() => {
                let mut files: Vec<_> = walkdir::WalkDir::new(&path)
                    .follow_links(false)
                    .sort_by_file_name()
                    .into_iter()
                    .flatten()
                    .filter(|e| e.file_type().is_file())
                    .collect();
                files.sort_by(|a, b| a.path().cmp(b.path()));
                for f in files {
                    let sub = f.path().strip_prefix(outputs_dir).unwrap_or(f.path());
                    let sub = sub
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    match sha256_file(f.path()) {
                        Ok((sha, bytes)) => records.push(FileRecord {
                            id: out.id.clone(),
                            path: sub,
                            bytes,
                            sha256: sha,
                        }),
                        Err(e) => missing.push(format!("{sub} ({})", e.message)),
                    }
                }
            }
            _ => missing.push(rel),
        }
    }
    if missing.is_empty() {
        Ok(records)
    } else {
        Err(format!("declared outputs missing: {}", missing.join(", ")))
    }
}
