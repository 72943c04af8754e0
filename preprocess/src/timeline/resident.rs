//! A timeline read into transparent huge pages, for replay.
//!
//! A replay reads every record and target once, in time order across dozens of shards:
//! over a 4 KiB-page file map nearly every read is a TLB miss, and a page walk under a
//! hypervisor costs more than the cache miss it precedes (~0.3 µs of CPU per request in an
//! unpaced replay; bench/RESULTS.md). Reading the file into 2 MiB pages costs one copy,
//! ~0.03 µs per request, at open.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memmap2::{Advice, Mmap, MmapMut};

/// Smallest file worth copying: below one huge page there is no TLB to save.
pub const MIN_LEN: u64 = 2 << 20;

/// The largest share of the memory the kernel reports available that a copy may take: a
/// copy cannot be paged out like a file map's clean pages, so a big timeline stays mapped.
const MAX_SHARE_OF_AVAILABLE: u64 = 4;

/// Why a timeline is or is not held in huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// Read into transparent huge pages.
    HugePages,
    /// Mapped from the file: smaller than [`MIN_LEN`].
    MappedSmall,
    /// Mapped from the file: larger than a quarter of the available memory.
    MappedLarge,
    /// Mapped from the file: transparent huge pages are off, or not on this system.
    MappedNoHugePages,
    /// Mapped from the file: the copy failed (no memory, or reading failed).
    MappedCopyFailed,
}

/// Reads `file` (`len` bytes) into an anonymous read-only map backed by huge pages, if
/// the system has them and the copy is worth its memory; otherwise says why not.
pub fn load(file: &mut File, len: u64) -> Result<Mmap, Residency> {
    if len < MIN_LEN {
        return Err(Residency::MappedSmall);
    }
    if !huge_pages_available(Path::new("/sys/kernel/mm/transparent_hugepage/enabled")) {
        return Err(Residency::MappedNoHugePages);
    }
    match mem_available(Path::new("/proc/meminfo")) {
        Some(avail) if len <= avail / MAX_SHARE_OF_AVAILABLE => {}
        _ => return Err(Residency::MappedLarge),
    }
    copy(file, len).ok_or(Residency::MappedCopyFailed)
}

fn copy(file: &mut File, len: u64) -> Option<Mmap> {
    let mut map = MmapMut::map_anon(usize::try_from(len).ok()?).ok()?;
    // Before the first touch, so the faults that follow take whole huge pages.
    map.advise(Advice::HugePage).ok()?;
    file.read_exact(&mut map).ok()?;
    // A file that grew since its length was read is outside what the checks cover.
    let mut probe = [0u8; 1];
    if file.read(&mut probe).ok()? != 0 {
        return None;
    }
    map.make_read_only().ok()
}

/// Whether transparent huge pages can back an `madvise`d map (`always` or `madvise`).
fn huge_pages_available(setting: &Path) -> bool {
    std::fs::read_to_string(setting)
        .map(|s| s.contains("[always]") || s.contains("[madvise]"))
        .unwrap_or(false)
}

/// `MemAvailable` in bytes.
fn mem_available(meminfo: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(meminfo).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_thp_setting_and_available_memory() {
        let dir = tempfile::tempdir().unwrap();
        let setting = dir.path().join("enabled");
        for (text, on) in [
            ("always [madvise] never\n", true),
            ("[always] madvise never\n", true),
            ("always madvise [never]\n", false),
        ] {
            std::fs::write(&setting, text).unwrap();
            assert_eq!(huge_pages_available(&setting), on, "{text}");
        }
        assert!(!huge_pages_available(&dir.path().join("missing")));

        let meminfo = dir.path().join("meminfo");
        std::fs::write(
            &meminfo,
            "MemTotal:       24683648 kB\nMemFree:        19791204 kB\nMemAvailable:   24133120 kB\n",
        )
        .unwrap();
        assert_eq!(mem_available(&meminfo), Some(24_133_120 * 1024));
        std::fs::write(&meminfo, "MemTotal: 1 kB\n").unwrap();
        assert_eq!(mem_available(&meminfo), None);
    }

    #[test]
    fn a_copy_holds_the_files_bytes_and_a_small_file_stays_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let bytes: Vec<u8> = (0..MIN_LEN + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let mut file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        match load(&mut file, len) {
            Ok(map) => assert!(map[..] == bytes[..], "the copy differs from the file"),
            // Only where the system cannot: never because of the file.
            Err(r) => assert!(
                matches!(r, Residency::MappedNoHugePages | Residency::MappedLarge),
                "{r:?}"
            ),
        }
        // A file that is longer than the length given is not copied short.
        let mut file = File::open(&path).unwrap();
        assert!(copy(&mut file, len - 1).is_none());
        let mut file = File::open(&path).unwrap();
        assert_eq!(
            load(&mut file, MIN_LEN - 1).err(),
            Some(Residency::MappedSmall)
        );
    }
}
