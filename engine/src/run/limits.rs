//! The process limits a replay needs: locked memory for the cores' io_uring rings, and
//! open files for its connections and WATCHes (raised to the hard limit, as Go programs do,
//! and checked against the plan before anything is sent).

use super::WatchConnections;

/// Raises this process's soft RLIMIT_MEMLOCK to its hard limit: each glommio executor
/// locks memory for io_uring and refuses to start below 512 KiB (containers often
/// default to 64 KiB soft). Best effort: a failure shows up as the executor's error.
pub(super) fn raise_memlock_soft_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (as Go programs do) and returns the
/// resulting soft limit (`None` if unknown).
pub(super) fn raise_nofile_soft_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(lim.rlim_cur)
}

/// File descriptors a run needs beyond its connections: stdio, the timeline, each core's
/// io_uring and eventfds, the preflight's connection, the report.
pub(super) const NOFILE_RESERVE: u64 = 64;

/// Fewest concurrent streams an HTTP/2 server is assumed to allow when WATCHes share
/// connections (Go's servers and the kube-apiserver allow more): it sizes the descriptor
/// check only, before any server has told its limit.
pub(super) const ASSUMED_STREAMS_PER_CONNECTION: u64 = 100;

/// Descriptors `watches` WATCHes need under `mode`: one per WATCH with a connection of its own,
/// one per [`ASSUMED_STREAMS_PER_CONNECTION`] of those that share (`sharing`: how many may
/// share under kperf's rule, connsPerRunner × runners). Over HTTP/1.1 every WATCH owns a
/// connection whatever the mode; that is only known after the first connect, which then fails
/// with the system's own error if the limit is reached.
pub(super) fn watch_descriptors(watches: u64, mode: WatchConnections, sharing: u64) -> u64 {
    let shared = match mode {
        WatchConnections::Own => 0,
        WatchConnections::Shared => watches,
        WatchConnections::Kperf => watches.min(sharing),
    };
    (watches - shared) + shared.div_ceil(ASSUMED_STREAMS_PER_CONNECTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_descriptors_count_a_socket_per_own_watch_and_one_per_hundred_shared() {
        assert_eq!(watch_descriptors(50_000, WatchConnections::Own, 16), 50_000);
        assert_eq!(watch_descriptors(50_000, WatchConnections::Shared, 16), 500);
        // kperf's rule: 16 share (one connection), the other 49,984 own one each.
        assert_eq!(
            watch_descriptors(50_000, WatchConnections::Kperf, 16),
            49_985
        );
        assert_eq!(watch_descriptors(0, WatchConnections::Shared, 16), 0);
    }
}
