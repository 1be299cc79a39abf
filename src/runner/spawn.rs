//! Starts a module process with `clone(CLONE_VM | CLONE_VFORK)`, as posix_spawn does, not
//! with fork: the supervisor's address space is not copied for a child that only execs (with
//! fork, the copy and its teardown were a fifth of a short step's CPU), and unlike
//! posix_spawn the child still arms its death signal and checks its parent before it execs.
#![allow(unsafe_code)]
use std::ffi::{c_char, c_int, c_void, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// What a module process starts with.
pub struct Module<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    /// Its whole environment.
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    /// Its stdout and stderr (its stdin is /dev/null).
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The child's stack: it runs a handful of system call wrappers, then execs.
const STACK: usize = 64 << 10;

/// Everything the child reads, made before the clone: between clone and exec the child
/// shares this process's memory and may not allocate, lock or unwind.
struct Prepared {
    program: *const c_char,
    argv: Vec<*const c_char>,
    /// `/bin/sh program args...`: what execvp runs for a file without a `#!` line (ENOEXEC).
    shell: *const c_char,
    shell_argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    cwd: *const c_char,
    fds: [RawFd; 3],
    /// One past the highest descriptor to close where the kernel lacks close_range (< 5.9).
    fd_limit: c_int,
    /// The module's signal mask: nothing blocked.
    unblocked: libc::sigset_t,
    parent: libc::pid_t,
    /// The errno of the call that failed in the child (0: it exec'd).
    errno: AtomicI32,
}

/// What a supervisor keeps from one module start to the next: the module's stdin, the
/// child's stack and its own pid (an `open`, a `close`, a 64 KiB allocation — which made the
/// allocator consolidate its free lists — and a `getpid` less per step).
pub struct Spawner {
    stdin: std::fs::File,
    stack: Vec<std::mem::MaybeUninit<u8>>,
    parent: libc::pid_t,
    fd_limit: c_int,
}

impl Spawner {
    pub fn new() -> std::io::Result<Spawner> {
        // Never read before the child writes it: not zeroed (zeroing 64 KiB per step was a
        // fifth of a supervisor's own CPU).
        let mut stack = Vec::with_capacity(STACK);
        // SAFETY: MaybeUninit bytes need no initialisation; the capacity is STACK.
        unsafe { stack.set_len(STACK) };
        Ok(Spawner {
            stdin: std::fs::File::open("/dev/null")?,
            stack,
            // SAFETY: getpid has no arguments.
            parent: unsafe { libc::getpid() },
            fd_limit: fd_limit(),
        })
    }

    /// Start the module; its pid (a child of this process, leader of its own process
    /// group, killed by SIGKILL if this thread ends).
    pub fn spawn(&mut self, m: Module) -> std::io::Result<i32> {
        let strings = Strings::of(&m)?;
        let p = Prepared {
            program: strings.program.as_ptr(),
            argv: pointers(std::iter::once(&strings.program).chain(&strings.args)),
            shell: strings.shell.as_ptr(),
            shell_argv: pointers(
                [&strings.shell, &strings.program]
                    .into_iter()
                    .chain(&strings.args),
            ),
            envp: pointers(&strings.env),
            cwd: strings.cwd.as_ptr(),
            fds: [
                self.stdin.as_raw_fd(),
                m.stdout.as_raw_fd(),
                m.stderr.as_raw_fd(),
            ],
            fd_limit: self.fd_limit,
            unblocked: super::procs::signal_set(&[]),
            parent: self.parent,
            errno: AtomicI32::new(0),
        };
        // The stack grows down from its end, which the ABI wants 16-byte aligned.
        let top = (self.stack.as_mut_ptr() as usize + STACK) & !15;
        let pid = clone_child(&p, top)?;
        drop(strings);
        let errno = p.errno.load(Ordering::SeqCst);
        if errno != 0 {
            super::procs::wait_child(pid, false);
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        Ok(pid)
    }
}

/// Clone the child that runs [`child`] on the stack ending at `top`, and wait (vfork) until
/// it has exec'd or exited; its pid.
fn clone_child(p: &Prepared, top: usize) -> std::io::Result<i32> {
    // SAFETY: the mask is plain data; every signal stays blocked while the child shares
    // this memory (a handler there would run on it), and the old mask comes back after.
    let pid = unsafe {
        let mut all = std::mem::zeroed::<libc::sigset_t>();
        let mut old = super::procs::signal_set(&[]);
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        // SAFETY: `child` reads `p` only, which outlives the call: CLONE_VFORK suspends this
        // process until the child has exec'd or exited; `top` is the end of a stack nothing
        // else uses meanwhile (the spawner's, borrowed mutably by the caller).
        let pid = libc::clone(
            child,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            p as *const Prepared as *mut c_void,
        );
        let clone_error = std::io::Error::last_os_error();
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    Ok(pid)
}

/// The child, until exec: only async-signal-safe system calls on data prepared before.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Prepared` of `spawn`, alive until this child execs or exits.
    let p = unsafe { &*(arg as *const Prepared) };
    // SAFETY: each call takes integers or pointers into `p`; none allocates.
    unsafe {
        // Armed first, then checked: a parent that died before can no longer kill it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail(p, None)
        }
        if libc::getppid() != p.parent {
            fail(p, Some(libc::ESRCH))
        }
        if libc::setpgid(0, 0) != 0 {
            fail(p, None)
        }
        for (target, fd) in p.fds.iter().enumerate() {
            if libc::dup2(*fd, target as c_int) < 0 {
                fail(p, None)
            }
        }
        // Only 0–2 reach the module: whatever the platform's caller left open without
        // close-on-exec (a CI wrapper's token file, a log it writes) would go through the
        // zygote and the supervisor to it otherwise (docs/security.md).
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..p.fd_limit {
                libc::close(fd);
            }
        }
        if libc::chdir(p.cwd) != 0 {
            fail(p, None)
        }
        // This process ignores SIGPIPE (Rust's runtime) and may handle SIGSEGV and SIGBUS;
        // an ignored signal stays ignored across exec, so the module gets the defaults.
        for sig in [libc::SIGPIPE, libc::SIGSEGV, libc::SIGBUS] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &p.unblocked, std::ptr::null_mut());
        libc::execve(p.program, p.argv.as_ptr(), p.envp.as_ptr());
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(p.shell, p.shell_argv.as_ptr(), p.envp.as_ptr());
        }
        fail(p, None)
    }
}

/// One past the highest descriptor this process may hold (its soft limit, at most 1 << 16:
/// the fallback closes them one by one).
fn fd_limit() -> c_int {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let cur = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } {
        0 => lim.rlim_cur,
        _ => 1024,
    };
    c_int::try_from(cur.min(1 << 16)).unwrap_or(1 << 16)
}

/// Leave the child, telling the parent why (the errno, unless given).
fn fail(p: &Prepared, errno: Option<c_int>) -> ! {
    // SAFETY: __errno_location is this thread's errno; _exit ends the child at once.
    unsafe {
        let e = errno.unwrap_or(*libc::__errno_location());
        p.errno
            .store(if e == 0 { libc::EIO } else { e }, Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// The strings `Prepared` points into.
struct Strings {
    program: CString,
    shell: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
}

impl Strings {
    fn of(m: &Module) -> std::io::Result<Strings> {
        let path = m
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let program = resolve(m.program, path)?;
        Ok(Strings {
            program: c_string(program.as_os_str().as_bytes())?,
            shell: c_string(b"/bin/sh")?,
            args: m
                .args
                .iter()
                .map(|a| c_string(a.as_bytes()))
                .collect::<Result<_, _>>()?,
            env: m
                .env
                .iter()
                .map(|(k, v)| c_string(format!("{k}={v}").as_bytes()))
                .collect::<Result<_, _>>()?,
            cwd: c_string(m.cwd.as_os_str().as_bytes())?,
        })
    }
}

/// A null-terminated array of pointers to `strings` (which must outlive it).
fn pointers<'a>(strings: impl IntoIterator<Item = &'a CString>) -> Vec<*const c_char> {
    strings
        .into_iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn c_string(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an argument or variable holds a NUL byte",
        )
    })
}

/// A program named without a `/` is looked up in the module's own PATH, as execvp would with
/// that environment: the first executable regular file.
fn resolve(program: &Path, path: Option<&str>) -> std::io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    path.unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| executable(p))
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Start one module with a spawner of its own.
    fn spawn(m: Module) -> std::io::Result<i32> {
        Spawner::new()?.spawn(m)
    }

    fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> (std::io::Result<i32>, String) {
        let (r, w) = super::super::fdpass::pipe().unwrap();
        let (_er, ew) = super::super::fdpass::pipe().unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pid = spawn(Module {
            program: Path::new(program),
            args: &args,
            env: &env,
            cwd: Path::new("/tmp"),
            stdout: w,
            stderr: ew,
        });
        let mut out = String::new();
        if let Ok(pid) = pid {
            super::super::procs::wait_child(pid, false);
            std::fs::File::from(r).read_to_string(&mut out).unwrap();
        }
        (pid, out)
    }

    #[test]
    fn the_module_gets_its_arguments_environment_folder_and_default_signals() {
        let (pid, out) = run(
            "sh",
            &[
                "-c",
                "echo \"$0 $X $(pwd)\"; grep -E '^(SigIgn|SigBlk)' /proc/self/status",
                "a b",
            ],
            &[("PATH", "/usr/bin:/bin"), ("X", "x=1")],
        );
        assert!(pid.is_ok(), "{pid:?}");
        assert!(out.starts_with("a b x=1 /tmp\n"), "{out}");
        // Nothing blocked, and SIGPIPE not ignored (as this process, a Rust program, does).
        let mask = |name: &str| {
            let line = out
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default();
            u64::from_str_radix(line.rsplit('\t').next().unwrap_or_default(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{out}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn the_module_gets_no_descriptor_above_2_even_one_left_without_close_on_exec() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup of a descriptor this test owns; the copy is not close-on-exec.
        let leaked = unsafe { libc::dup(file.as_raw_fd()) };
        assert!(leaked > 2);
        let probe = format!("[ -e /proc/$$/fd/{leaked} ] && echo open || echo closed");
        let (pid, out) = run("/bin/sh", &["-c", &probe], &[]);
        // SAFETY: the copy made above, closed once.
        unsafe { libc::close(leaked) };
        assert!(pid.is_ok(), "{pid:?}");
        assert_eq!(out, "closed\n");
        // The fallback for kernels without close_range covers the same descriptor.
        assert!(fd_limit() > leaked, "{}", fd_limit());
    }

    #[test]
    fn one_spawner_starts_module_after_module_each_with_its_own_streams() {
        let mut spawner = Spawner::new().unwrap();
        for n in 0..3 {
            let (r, w) = super::super::fdpass::pipe().unwrap();
            let (_er, ew) = super::super::fdpass::pipe().unwrap();
            let args = vec!["-c".to_string(), format!("read x; echo \"${{x}}{n}\"")];
            let pid = spawner
                .spawn(Module {
                    program: Path::new("/bin/sh"),
                    args: &args,
                    env: &[],
                    cwd: Path::new("/tmp"),
                    stdout: w,
                    stderr: ew,
                })
                .unwrap();
            super::super::procs::wait_child(pid, false);
            let mut out = String::new();
            std::fs::File::from(r).read_to_string(&mut out).unwrap();
            // stdin is /dev/null each time: `read` finds nothing.
            assert_eq!(out, format!("{n}\n"));
        }
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error_and_no_child_is_left() {
        let (pid, _) = run("no-such-program-here", &[], &[("PATH", "/nonexistent")]);
        assert_eq!(pid.unwrap_err().kind(), std::io::ErrorKind::NotFound);
        let (pid, _) = run("/nonexistent/prog", &[], &[]);
        assert_eq!(pid.unwrap_err().kind(), std::io::ErrorKind::NotFound);
        let (pid, _) = run("/bin/sh", &["a\0b"], &[]);
        assert_eq!(pid.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_script_without_an_interpreter_line_runs_under_sh() {
        let dir = std::env::temp_dir().join(format!("spawn-noexec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("plain");
        std::fs::write(&script, "echo plain \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (pid, out) = run(script.to_str().unwrap(), &["arg"], &[]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(pid.is_ok(), "{pid:?}");
        assert_eq!(out, "plain arg\n");
    }
}
