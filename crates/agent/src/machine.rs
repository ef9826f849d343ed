//! What the agent learns about its machine: resources, hostname, and the address masters
//! see it at.

use std::io;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::path::Path;

use domain::{Ranges, Resources};
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

/// Ports offered when `--resources` names none (Mesos's default range).
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

/// The machine's resources: usable cores, memory in MiB, the space available on the work
/// dir's own filesystem in MiB, and ports 31000–32000.
pub fn detect_resources(work_dir: &Path) -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mem = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .map_or(0, |s| s.total_memory() / (1024 * 1024)) as f64;
    Resources {
        cpus,
        mem,
        disk: disk_mib(work_dir).unwrap_or(0) as f64,
        ports: Ranges::single(DEFAULT_PORTS.0, DEFAULT_PORTS.1),
    }
}

/// Space of the filesystem that holds `dir` itself (statvfs of the directory, so a work dir
/// on its own mount is measured, not its parent's or the root filesystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    /// Bytes an unprivileged process may still write.
    pub available: u64,
    /// Size of the filesystem in bytes.
    pub total: u64,
}

/// The space of the filesystem holding `dir`.
// `c_ulong` and `fsblkcnt_t` are `u64` only on 64-bit targets.
#[allow(clippy::useless_conversion)]
pub fn fs_space(dir: &Path) -> io::Result<FsSpace> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    let unit = u64::from(st.fragment_size());
    Ok(FsSpace {
        available: u64::from(st.blocks_available()).saturating_mul(unit),
        total: u64::from(st.blocks()).saturating_mul(unit),
    })
}

/// Space available on the work dir's own filesystem, in MiB.
fn disk_mib(dir: &Path) -> Option<u64> {
    match fs_space(dir) {
        Ok(space) => Some(space.available / (1024 * 1024)),
        Err(e) => {
            tracing::warn!(
                "cannot measure the filesystem of {}: {e}; offering no disk",
                dir.display()
            );
            None
        }
    }
}

/// The machine's hostname.
pub fn hostname() -> Option<String> {
    System::host_name().ok().filter(|h| !h.is_empty())
}

/// The local address of the route to `master` (`HOST:PORT`): the address that master
/// would see this agent at. No packet is sent (a UDP "connect" only picks the route).
pub fn route_ip(master: &str) -> io::Result<IpAddr> {
    let target = master.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{master} resolves to no address"),
        )
    })?;
    let bind: IpAddr = if target.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    let socket = UdpSocket::bind((bind, 0))?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_has_something_to_offer() {
        let r = detect_resources(Path::new("."));
        assert!(r.cpus >= 1.0);
        assert!(r.mem > 0.0);
        assert_eq!(r.ports.count(), 1001);
    }

    #[test]
    fn disk_is_measured_on_the_directory_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let space = fs_space(tmp.path()).unwrap();
        assert!(
            space.total > 0 && space.available <= space.total,
            "{space:?}"
        );
        assert!(fs_space(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn loopback_masters_are_reached_from_loopback() {
        assert_eq!(route_ip("127.0.0.1:8080").unwrap().to_string(), "127.0.0.1");
    }
}
