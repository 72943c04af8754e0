//! Header block encoding (RFC 7541 §6), with raw strings only.

use super::table::{static_name, DynamicTable, ENTRY_OVERHEAD, STATIC};
use super::{write_int, write_string};

/// The table size HTTP/2 starts with and the most this encoder uses, whatever the peer allows:
/// a client's repeated headers fit easily, and a bigger model only costs lookups.
const DEFAULT_TABLE_SIZE: usize = 4096;

/// How a field may be stored by the peer's decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// May enter the dynamic table (repeated headers: :authority, user-agent, accept,
    /// content-type).
    Index,
    /// Literal without indexing (:path and other per-request values).
    NoIndex,
    /// Never indexed, by us or by any intermediary (credentials: RFC 7541 §7.1.3).
    Never,
}

/// Encodes our header blocks, keeping a model of the peer's dynamic table.
pub struct Encoder {
    /// What the peer's table holds once it has decoded everything written so far.
    pub(super) table: DynamicTable,
    /// The smallest size the table went through since the last block, when it changed: the
    /// next block must announce it, then the final size (§4.2).
    pending_min: Option<usize>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a peer with the HTTP/2 default table size (4096).
    pub fn new() -> Encoder {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            pending_min: None,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: the encoder uses min(n, 4096), evicting
    /// as needed, and the next block starts with a dynamic table size update when the size it
    /// uses changed.
    pub fn set_peer_table_size(&mut self, n: usize) {
        let size = n.min(DEFAULT_TABLE_SIZE);
        if size == self.table.max_size() {
            return;
        }
        self.table.set_max_size(size);
        self.pending_min = Some(self.pending_min.map_or(size, |min| min.min(size)));
    }

    /// Starts a header block in `out` (emits a pending size update).
    pub fn begin_block(&mut self, out: &mut Vec<u8>) {
        let Some(min) = self.pending_min.take() else {
            return;
        };
        // The peer must evict what our model evicted at the smallest size (§4.2).
        let size = self.table.max_size();
        if min < size {
            write_int(out, 0x20, 5, min);
        }
        write_int(out, 0x20, 5, size);
    }

    /// Appends one field. Uses the static table's full match (e.g. :method GET, :scheme https)
    /// or the dynamic table's when there is one, else a literal with the static or dynamic
    /// table's name index when the name is there, else a literal name. `Index` fields not found
    /// are inserted (literal with incremental indexing) if they fit. `Never` fields are always
    /// literals, so that no index reveals a credential matched an earlier one.
    pub fn field(&mut self, name: &[u8], value: &[u8], indexing: Indexing, out: &mut Vec<u8>) {
        let mut name_index = 0;
        if let Some((first, count)) = static_name(name) {
            name_index = first;
            if indexing != Indexing::Never {
                let entries = &STATIC[first - 1..first - 1 + count];
                if let Some(i) = entries.iter().position(|&(_, v)| v == value) {
                    write_int(out, 0x80, 7, first + i);
                    return;
                }
            }
        }
        if indexing != Indexing::Never || name_index == 0 {
            for (i, (n, v)) in self.table.iter().enumerate() {
                if n != name {
                    continue;
                }
                let index = STATIC.len() + 1 + i;
                if indexing != Indexing::Never && v == value {
                    write_int(out, 0x80, 7, index);
                    return;
                }
                if name_index == 0 {
                    name_index = index;
                    if indexing == Indexing::Never {
                        break;
                    }
                }
            }
        }
        let fits = name.len() + value.len() + ENTRY_OVERHEAD <= self.table.max_size();
        let (flags, prefix) = match indexing {
            Indexing::Index if fits => (0x40, 6),
            // Too big for the table: inserting it would only empty the peer's.
            Indexing::Index | Indexing::NoIndex => (0x00, 4),
            Indexing::Never => (0x10, 4),
        };
        write_int(out, flags, prefix, name_index);
        if name_index == 0 {
            write_string(out, name);
        }
        write_string(out, value);
        if flags == 0x40 {
            self.table.insert(name, value);
        }
    }
}
