//! The opener against real files, links, FIFOs and a real rename race, with each resolver.
use super::resolve::Resolver;
use super::*;
use std::io::Read;
use std::os::unix::fs::symlink;

fn resolvers() -> Vec<Resolver> {
    #[cfg(target_os = "linux")]
    return vec![Resolver::Openat2, Resolver::Walk];
    #[cfg(not(target_os = "linux"))]
    return vec![Resolver::Walk];
}

/// What `open_file` does, with the resolver chosen: the bytes, or why not.
fn read_with(b: &Beneath, how: Resolver) -> Result<Vec<u8>, Reason> {
    let file = File::from(b.open(false, how).map_err(|r| r.reason)?);
    let meta = b.meta_of(&file).map_err(|r| r.reason)?;
    b.check_file(meta).map_err(|r| r.reason)?;
    let mut out = Vec::new();
    (&file)
        .read_to_end(&mut out)
        .map_err(|e| Reason::Io(e.to_string()))?;
    Ok(out)
}

/// root/{mine/{a.txt, sub/b.txt}, other/secret.txt}
fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("mine/sub")).unwrap();
    std::fs::create_dir_all(t.path().join("other")).unwrap();
    std::fs::write(t.path().join("mine/a.txt"), "mine").unwrap();
    std::fs::write(t.path().join("mine/sub/b.txt"), "mine too").unwrap();
    std::fs::write(t.path().join("other/secret.txt"), "SECRET").unwrap();
    t
}

#[test]
fn plain_files_open_and_everything_else_is_refused_by_each_resolver() {
    let t = tree();
    let root = t.path();
    symlink("../other/secret.txt", root.join("mine/link.txt")).unwrap();
    symlink("a.txt", root.join("mine/inside.txt")).unwrap();
    symlink("../other", root.join("mine/linkdir")).unwrap();
    symlink("sub", root.join("mine/subalias")).unwrap();
    std::fs::hard_link(root.join("other/secret.txt"), root.join("mine/hard.txt")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("mine/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let cases: &[(&str, Result<&[u8], Reason>)] = &[
        ("mine/a.txt", Ok(b"mine")),
        ("./mine/sub/b.txt", Ok(b"mine too")),
        ("mine/link.txt", Err(Reason::Symlink)),
        ("mine/inside.txt", Err(Reason::Symlink)),
        ("mine/linkdir/secret.txt", Err(Reason::Symlink)),
        ("mine/subalias/b.txt", Err(Reason::Symlink)),
        ("mine/hard.txt", Err(Reason::HardLinked(2))),
        ("mine/fifo", Err(Reason::NotAFile(Kind::Fifo))),
        ("mine/sub", Err(Reason::NotAFile(Kind::Folder))),
        ("mine/nope.txt", Err(Reason::Missing)),
        ("mine/a.txt/x", Err(Reason::NotAFolder)),
        ("mine/../other/secret.txt", Err(Reason::NotPlain)),
        ("/etc/hostname", Err(Reason::NotPlain)),
    ];
    for how in resolvers() {
        for (rel, want) in cases {
            let got = read_with(&Beneath::new(root, rel), how);
            let want = want.clone().map(<[u8]>::to_vec);
            assert_eq!(got, want, "{rel} with {how:?}");
        }
    }
    // The public entry points agree.
    let b = Beneath::new(root, "mine/link.txt");
    assert_eq!(b.open_file().unwrap_err().reason, Reason::Symlink);
    assert!(b
        .open_file()
        .unwrap_err()
        .to_string()
        .contains("mine/link.txt"));
    assert_eq!(
        Beneath::new(root, "mine/inside.txt")
            .metadata()
            .unwrap_err()
            .reason,
        Reason::Symlink
    );
}

#[test]
fn a_swapped_base_component_is_caught_because_the_base_is_opened_beneath_the_root() {
    let t = tree();
    let root = t.path();
    std::fs::create_dir_all(root.join("tenants/a")).unwrap();
    std::fs::write(root.join("tenants/a/x.txt"), "a").unwrap();
    symlink("../other", root.join("tenants/b")).unwrap();
    std::fs::copy(root.join("other/secret.txt"), root.join("other/x.txt")).unwrap();
    for how in resolvers() {
        assert_eq!(
            read_with(&Beneath::new(root, "tenants/a/x.txt"), how),
            Ok(b"a".to_vec())
        );
        assert_eq!(
            read_with(&Beneath::new(root, "tenants/b/x.txt"), how),
            Err(Reason::Symlink),
            "{how:?}"
        );
    }
}

#[test]
fn trees_list_regular_files_and_refuse_a_link_or_fifo_anywhere() {
    let t = tree();
    let root = t.path();
    let mine = Beneath::new(root, "mine");
    let files = mine.list_files().unwrap();
    let rels: Vec<String> = files.iter().map(|f| f.rel.display().to_string()).collect();
    assert_eq!(rels, vec!["a.txt", "sub/b.txt"]);
    assert_eq!(files[1].bytes, 8);

    symlink("../../other/secret.txt", root.join("mine/sub/leak")).unwrap();
    let err = mine.list_files().unwrap_err();
    assert_eq!(err.reason, Reason::Symlink);
    assert!(err.path.ends_with("mine/sub/leak"), "{err}");
    std::fs::remove_file(root.join("mine/sub/leak")).unwrap();

    std::fs::hard_link(root.join("other/secret.txt"), root.join("mine/sub/hard")).unwrap();
    assert_eq!(mine.list_files().unwrap_err().reason, Reason::HardLinked(2));
    std::fs::remove_file(root.join("mine/sub/hard")).unwrap();

    // The tree's root itself may not be a link either.
    symlink("mine", root.join("alias")).unwrap();
    assert_eq!(
        Beneath::new(root, "alias").list_files().unwrap_err().reason,
        Reason::Symlink
    );
    let entries = Beneath::new(root, "").list_dir().unwrap();
    let alias = entries.iter().find(|e| e.name == "alias").unwrap();
    assert_eq!(alias.meta.kind, Kind::Symlink);
}

/// A real race: another thread swaps `assets` (a folder) with a link to another folder as fast
/// as it can while this one opens a file beneath it. Every open returns the right bytes or a
/// refusal, never the other folder's bytes.
#[cfg(target_os = "linux")]
#[test]
fn a_folder_swapped_for_a_link_mid_open_never_yields_the_other_folders_file() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let t = tree();
    let root = t.path().to_path_buf();
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("assets/note.txt"), "mine").unwrap();
    std::fs::write(root.join("other/note.txt"), "SECRET").unwrap();
    symlink("other", root.join("swap")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, root) = (stop.clone(), swaps.clone(), root.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    root.join("assets"),
                    rustix::fs::CWD,
                    root.join("swap"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for how in resolvers() {
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..3000 {
            match read_with(&Beneath::new(&root, "assets/note.txt"), how) {
                Ok(bytes) => {
                    assert_eq!(bytes, b"mine", "{how:?} read through the link");
                    ok += 1;
                }
                // The walk tells a link from a file by a second look, which the swap may
                // also race: any refusal is right.
                Err(Reason::Symlink | Reason::Missing | Reason::NotAFolder) => refused += 1,
                Err(other) => panic!("{how:?}: unexpected {other:?}"),
            }
        }
        assert!(refused > 0, "{how:?}: the race never hit ({ok} opens)");
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_base_opened_once_is_read_through_its_fd_whatever_its_path_becomes() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("rt");
    std::fs::create_dir_all(base.join("step")).unwrap();
    std::fs::write(base.join("step/f"), "first").unwrap();
    let fd = Arc::new(open_base(&base).unwrap());
    let kept = Beneath::new(&base, "step").opened_by(Some(fd));
    let by_path = Beneath::new(&base, "step");
    assert_eq!(kept, by_path, "the same path, however its base is reached");
    // The folder renamed and another put at its path: the kept fd still reads the first.
    std::fs::rename(&base, t.path().join("rt-old")).unwrap();
    std::fs::create_dir_all(base.join("step")).unwrap();
    std::fs::write(base.join("step/f"), "second").unwrap();
    for how in resolvers() {
        assert_eq!(read_with(&kept.join("f"), how).unwrap(), b"first");
        assert_eq!(read_with(&by_path.join("f"), how).unwrap(), b"second");
    }
    // Links beneath it are refused through the fd as through the path.
    symlink(
        t.path().join("rt-old/step/f"),
        t.path().join("rt-old/step/link"),
    )
    .unwrap();
    for how in resolvers() {
        assert_eq!(read_with(&kept.join("link"), how), Err(Reason::Symlink));
    }
    assert_eq!(kept.path(), base.join("step"), "messages name the path");
}

/// A copy that fails part-way (here a read error: the source is a folder) leaves no file
/// behind: a partial asset copy kept the disk full for every tenant.
#[test]
fn a_failed_copy_leaves_no_partial_file() {
    let d = tempfile::tempdir().unwrap();
    let mut src = File::open(d.path()).unwrap();
    let dest = d.path().join("inputs/src/big.bin");
    assert!(copy_opened(&mut src, &dest).is_err());
    assert!(!dest.exists(), "the partial copy is still there");
}
