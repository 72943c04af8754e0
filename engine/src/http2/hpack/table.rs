//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2, §4), shared by the
//! decoder (its own table) and the encoder (its model of the peer's).

use std::collections::VecDeque;

/// Entries 1 to 61 of the index space, at 0 to 60.
pub(super) static STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Per-entry overhead counted in the table size (§4.1).
pub(super) const ENTRY_OVERHEAD: usize = 32;

/// The static entries named `name`: `(index of the first, count)`, indexes from 1. A match
/// on the length first keeps this to a few comparisons instead of a scan of 61 names.
pub(super) fn static_name(name: &[u8]) -> Option<(usize, usize)> {
    let one = |i| Some((i, 1));
    match name.len() {
        3 => match name {
            b"age" => one(21),
            b"via" => one(60),
            _ => None,
        },
        4 => match name {
            b"date" => one(33),
            b"etag" => one(34),
            b"from" => one(37),
            b"host" => one(38),
            b"link" => one(45),
            b"vary" => one(59),
            _ => None,
        },
        5 => match name {
            b":path" => Some((4, 2)),
            b"allow" => one(22),
            b"range" => one(50),
            _ => None,
        },
        6 => match name {
            b"accept" => one(19),
            b"cookie" => one(32),
            b"expect" => one(35),
            b"server" => one(54),
            _ => None,
        },
        7 => match name {
            b":method" => Some((2, 2)),
            b":scheme" => Some((6, 2)),
            b":status" => Some((8, 7)),
            b"expires" => one(36),
            b"referer" => one(51),
            b"refresh" => one(52),
            _ => None,
        },
        8 => match name {
            b"if-match" => one(39),
            b"if-range" => one(42),
            b"location" => one(46),
            _ => None,
        },
        10 => match name {
            b":authority" => one(1),
            b"set-cookie" => one(55),
            b"user-agent" => one(58),
            _ => None,
        },
        11 => match name {
            b"retry-after" => one(53),
            _ => None,
        },
        12 => match name {
            b"content-type" => one(31),
            b"max-forwards" => one(47),
            _ => None,
        },
        13 => match name {
            b"accept-ranges" => one(18),
            b"authorization" => one(23),
            b"cache-control" => one(24),
            b"content-range" => one(30),
            b"if-none-match" => one(41),
            b"last-modified" => one(44),
            _ => None,
        },
        14 => match name {
            b"accept-charset" => one(15),
            b"content-length" => one(28),
            _ => None,
        },
        15 => match name {
            b"accept-encoding" => one(16),
            b"accept-language" => one(17),
            _ => None,
        },
        16 => match name {
            b"content-encoding" => one(26),
            b"content-language" => one(27),
            b"content-location" => one(29),
            b"www-authenticate" => one(61),
            _ => None,
        },
        17 => match name {
            b"if-modified-since" => one(40),
            b"transfer-encoding" => one(57),
            _ => None,
        },
        18 => match name {
            b"proxy-authenticate" => one(48),
            _ => None,
        },
        19 => match name {
            b"content-disposition" => one(25),
            b"if-unmodified-since" => one(43),
            b"proxy-authorization" => one(49),
            _ => None,
        },
        25 => match name {
            b"strict-transport-security" => one(56),
            _ => None,
        },
        27 => match name {
            b"access-control-allow-origin" => one(20),
            _ => None,
        },
        _ => None,
    }
}

/// Where an entry's bytes sit in [`DynamicTable::buf`]: the name, then the value.
#[derive(Clone, Copy)]
struct Slot {
    start: usize,
    name_len: usize,
    value_len: usize,
}

/// The dynamic table: entries' bytes appended to one buffer, oldest first, with their slots in
/// a ring. Eviction only moves `head`; the dead prefix is dropped (a `memmove`, no allocation)
/// when the buffer would otherwise grow, so its capacity settles near twice the table size.
pub(super) struct DynamicTable {
    buf: Vec<u8>,
    /// Start of the oldest live entry's bytes in `buf`.
    head: usize,
    /// Oldest at the front, newest at the back.
    slots: VecDeque<Slot>,
    /// Sum of the entries' sizes (name + value + 32).
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub(super) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            buf: Vec::new(),
            head: 0,
            slots: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Entries in the table.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Sum of the entries' sizes as RFC 7541 §4.1 counts them.
    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Entry `i`, 0 being the newest (index 62 of the index space).
    pub(super) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let at = self.slots.len().checked_sub(i + 1)?;
        let slot = self.slots[at];
        let name_end = slot.start + slot.name_len;
        Some((
            &self.buf[slot.start..name_end],
            &self.buf[name_end..name_end + slot.value_len],
        ))
    }

    /// Entries from the newest, as indexes 62, 63, … name them.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.slots.iter().rev().map(|slot| {
            let name_end = slot.start + slot.name_len;
            (
                &self.buf[slot.start..name_end],
                &self.buf[name_end..name_end + slot.value_len],
            )
        })
    }

    /// Sets the maximum size (a size update, §4.3), evicting the oldest entries past it.
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds an entry as the newest (§4.4), evicting the oldest ones to make room. An entry
    /// bigger than the whole table empties it and is not added: returns false then.
    pub(super) fn insert(&mut self, name: &[u8], value: &[u8]) -> bool {
        let entry = name.len() + value.len() + ENTRY_OVERHEAD;
        if entry > self.max_size {
            self.evict_to(0);
            return false;
        }
        self.evict_to(self.max_size - entry);
        let bytes = name.len() + value.len();
        if self.head > 0 && self.buf.len() + bytes > self.buf.capacity() {
            self.compact();
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(value);
        self.slots.push_back(Slot {
            start,
            name_len: name.len(),
            value_len: value.len(),
        });
        self.size += entry;
        true
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let Some(old) = self.slots.pop_front() else {
                break;
            };
            self.size -= old.name_len + old.value_len + ENTRY_OVERHEAD;
            self.head = old.start + old.name_len + old.value_len;
        }
        if self.slots.is_empty() {
            self.buf.clear();
            self.head = 0;
        }
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops the evicted bytes before `head`, shifting the live ones to the start.
    fn compact(&mut self) {
        let dead = self.head;
        self.buf.copy_within(dead.., 0);
        self.buf.truncate(self.buf.len() - dead);
        for slot in &mut self.slots {
            slot.start -= dead;
        }
        self.head = 0;
    }
}
