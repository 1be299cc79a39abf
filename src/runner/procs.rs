//! Linux process facts read from /proc (children, start times, command lines) and the
//! signal, wait and poll calls the supervisor, the zygote and the launcher share; no policy
//! lives here.
#![allow(unsafe_code)]
use std::path::Path;
use std::time::Duration;

/// Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(String::from).collect())
}

/// Start time of a process (clock ticks after boot, field 22 of /proc/PID/stat): with the
/// pid it names one process for good, since pids are reused.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Where a process's argv strings are in its memory (arg_start, arg_end: fields 48 and 49
/// of /proc/PID/stat): the area /proc/PID/cmdline shows.
pub fn arg_area(pid: i32) -> Option<(u64, u64)> {
    let f = stat_fields(pid)?;
    Some((f.get(45)?.parse().ok()?, f.get(46)?.parse().ok()?))
}

/// Whether `pid` is the process that started at `start` and has not exited (a zombie has).
pub fn is_running(pid: i32, start: u64) -> bool {
    stat_fields(pid).is_some_and(|f| {
        f.first().is_some_and(|s| s != "Z" && s != "X")
            && f.get(19).and_then(|s| s.parse::<u64>().ok()) == Some(start)
    })
}

/// argv of a process, as raw arguments.
pub fn cmdline(pid: i32) -> Vec<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The live children of process `pid` (every thread's), from /proc/PID/task/*/children;
/// without CONFIG_PROC_CHILDREN, from a scan of every process's parent.
pub fn children(pid: i32) -> Vec<i32> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let mut out = Vec::new();
    let mut readable = false;
    for task in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            readable = true;
            out.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse::<i32>().ok()),
            );
        }
    }
    if !readable {
        out = scan_children(pid);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn scan_children(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            stat_fields(*p)
                .and_then(|f| f.get(1)?.parse::<i32>().ok())
                .is_some_and(|ppid| ppid == pid)
        })
        .collect()
}

/// SIGKILL one process (`pid` > 0) or a process group (`pid` < -1); gone already is fine.
/// The path the kernel knows an existing folder by (links resolved), read back from an
/// `O_PATH` descriptor: what `canonicalize` gives, in three system calls instead of one
/// `readlink` per component. None without /proc (the caller falls back).
pub fn real_path(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .ok()?;
    let p = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
    // A folder deleted meanwhile reads back as "<path> (deleted)": not a path to name.
    p.is_absolute()
        .then_some(p)
        .filter(|p| !p.as_os_str().as_encoded_bytes().ends_with(b" (deleted)"))
}

/// Raise this thread's nice value by `by` (Linux: per thread; what it starts inherits
/// it). Best effort: a system that refuses leaves the priority as it was.
pub fn lower_thread_priority(by: i32) {
    // SAFETY: gettid has no arguments; setpriority changes this thread's nice value only.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, by);
    }
}

pub fn kill(pid: i32, signal: i32) {
    if pid == 0 || pid == -1 {
        return; // 0 and -1 mean "my group" and "everyone": never what a caller wants here.
    }
    // SAFETY: kill(2) takes plain integers and shares no memory.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A signal set holding `signals` (none: the empty set).
pub fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// How `waitpid` answered.
pub enum Reaped {
    /// A child ended: its pid and raw wait status.
    Child(i32, i32),
    /// Children exist, none has ended (only with `nohang`).
    None,
    /// No child at all.
    NoChildren,
}

/// waitpid(`pid`, `nohang`): `pid` -1 is any child. Retries on EINTR.
pub fn wait_child(pid: i32, nohang: bool) -> Reaped {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local integer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r > 0 {
            return Reaped::Child(r, status);
        }
        if r == 0 {
            return Reaped::None;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            _ => return Reaped::NoChildren,
        }
    }
}

/// Indices (into `fds`) that are readable or closed, waiting at most `wait` (capped at 1 s,
/// so the caller's deadlines are checked).
pub fn poll_readable(fds: &[i32], open: &[bool], wait: Duration) -> Vec<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .zip(open)
        .map(|(fd, o)| libc::pollfd {
            fd: if *o { *fd } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = i32::try_from(wait.min(Duration::from_secs(1)).as_millis()).unwrap_or(1000);
    // SAFETY: `pfds` is a valid array of pollfd for the length passed.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Vec::new();
    }
    pfds.iter()
        .enumerate()
        .filter(|(_, p)| p.fd >= 0 && p.revents != 0)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_path_resolves_links_like_canonicalize() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let via = d.path().join("link/../link");
        assert_eq!(real_path(&via), Some(std::fs::canonicalize(&via).unwrap()));
        assert_eq!(real_path(&d.path().join("missing")), None);
    }
}
