//! Test helper: a throw-away network namespace that the calling thread enters, deleted on drop.

#![allow(unsafe_code)] // reason: setns(2) for the test thread
#![allow(dead_code, clippy::unwrap_used)]

use std::os::fd::AsRawFd;
use std::process::Command;

/// True when running as root (netns tests skip otherwise).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run `ip` inside namespace `ns`, panicking with its stderr on failure.
pub fn ip(ns: &str, args: &str) {
    let mut full = vec!["-n", ns];
    full.extend(args.split_whitespace());
    let out = Command::new("ip").args(&full).output().unwrap();
    assert!(
        out.status.success(),
        "ip {full:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named netns (`ip netns add`), entered by the current thread; deleted on drop.
pub struct Netns {
    pub name: String,
    orig: std::fs::File,
}

impl Netns {
    pub fn enter(tag: &str) -> Netns {
        let name = format!("fl-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success());
        for k in ["all", "default"] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &name, "sysctl", "-qw"])
                .arg(format!("net.ipv6.conf.{k}.disable_ipv6=1"))
                .status();
        }
        let orig = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        // SAFETY: both descriptors are valid netns files; only this thread changes namespace.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        Netns { name, orig }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // SAFETY: `orig` is the thread's original netns file.
        unsafe { libc::setns(self.orig.as_raw_fd(), libc::CLONE_NEWNET) };
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
