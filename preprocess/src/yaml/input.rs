//! Bytes to chars for the event parser, with the limits that must sit below it: invalid
//! UTF-8, I/O errors, and too many bytes without an event (a parser accumulates a whole scalar
//! before it emits it).

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;

/// Why the character input stopped early.
#[derive(Debug)]
pub(crate) enum InputError {
    /// Reading failed (file, network, gzip).
    Io(io::Error),
    /// The bytes at this offset are not UTF-8 (or not UTF-16, after a UTF-16 byte-order mark).
    NotUtf8 { offset: u64 },
    /// More than `limit` bytes passed without the parser producing an event.
    ScalarTooLarge { limit: usize, offset: u64 },
}

/// State shared between the [`CharInput`] (owned by the parser) and the loader.
#[derive(Debug)]
pub(crate) struct InputState {
    error: RefCell<Option<InputError>>,
    /// Events seen so far; the input compares it at its checkpoints.
    events: Cell<u64>,
    limit: usize,
}

impl InputState {
    pub(crate) fn new(limit: usize) -> Rc<InputState> {
        Rc::new(InputState {
            error: RefCell::new(None),
            events: Cell::new(0),
            limit,
        })
    }

    /// Called for every event: the bytes that produced it were one token's worth.
    pub(crate) fn event_seen(&self) {
        self.events.set(self.events.get().wrapping_add(1));
    }

    /// The error that stopped the input, if any (taken once).
    pub(crate) fn take_error(&self) -> Option<InputError> {
        self.error.borrow_mut().take()
    }

    pub(crate) fn has_error(&self) -> bool {
        self.error.borrow().is_some()
    }
}

/// A UTF-8 decoding `Iterator<Item = char>` over a reader, with a fixed buffer.
/// On any failure it records the error in the shared [`InputState`] and ends.
///
/// The scalar limit is checked every `step` bytes against the shared event counter rather
/// than per char (this is the parser's innermost loop), so it is exact to within `step` bytes.
pub(crate) struct CharInput<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes consumed from the reader before `buf[0]`.
    base: u64,
    state: Rc<InputState>,
    done: bool,
    /// Bytes since the last checkpoint.
    unchecked: usize,
    /// Bytes counted since the last event, as of the last checkpoint.
    since_event: usize,
    /// The event counter at the last checkpoint.
    events_at_check: u64,
    step: usize,
    /// `None` until the byte-order mark is checked; then the encoding (libyaml's rule: a
    /// UTF-16 BOM selects UTF-16, anything else is UTF-8).
    encoding: Option<Encoding>,
    /// The line break added after a last line of spaces (see [`Self::at_end`]).
    closing_break: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

const INPUT_BUFFER: usize = 64 * 1024;

impl<R: Read> CharInput<R> {
    pub(crate) fn new(inner: R, state: Rc<InputState>) -> Self {
        let step = (state.limit / 4).clamp(1, 4096);
        CharInput {
            inner,
            buf: vec![0u8; INPUT_BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            state,
            done: false,
            unchecked: 0,
            since_event: 0,
            events_at_check: 0,
            step,
            encoding: None,
            closing_break: false,
        }
    }

    /// Whether the input ends, as far as read, on a line of spaces with no line break
    /// after it (`buf[..pos]` still holds the bytes before the end: nothing is compacted
    /// until `fill` runs).
    fn ends_on_spaces(&self) -> bool {
        let read = &self.buf[..self.pos];
        let spaces = read.iter().rev().take_while(|&&b| b == b' ').count();
        if spaces == 0 {
            return false;
        }
        match read.len().checked_sub(spaces + 1) {
            Some(at) => matches!(read[at], b'\n' | b'\r'),
            None => self.base == 0,
        }
    }

    /// The end of the input: `None`, or first a line break after a last line of spaces.
    /// yaml.v2 (libyaml) reads such a line as an empty line, which a block literal's
    /// clipping drops; the event parser would add a line break for it instead. With the
    /// break, both read it as the empty line it is. Elsewhere it changes nothing.
    fn at_end(&mut self, ends_on_spaces: bool) -> Option<char> {
        self.done = true;
        if ends_on_spaces && !self.closing_break {
            self.closing_break = true;
            self.done = false;
            return Some('\n');
        }
        None
    }

    fn fail(&mut self, e: InputError) -> Option<char> {
        self.done = true;
        *self.state.error.borrow_mut() = Some(e);
        None
    }

    /// Makes at least `need` bytes available at `pos`; returns false at end of input.
    fn fill(&mut self, need: usize) -> Result<bool, io::Error> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end < need {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Counts the bytes since the last checkpoint towards the current token, or restarts the
    /// count when an event was emitted in between.
    #[cold]
    fn checkpoint(&mut self) -> bool {
        let events = self.state.events.get();
        if events != self.events_at_check {
            self.events_at_check = events;
            self.since_event = self.unchecked;
        } else {
            self.since_event += self.unchecked;
        }
        self.unchecked = 0;
        self.since_event <= self.state.limit
    }

    /// Looks at the first two bytes once: a UTF-16 byte-order mark switches decoding.
    fn detect_encoding(&mut self) -> Result<Encoding, io::Error> {
        let mut encoding = Encoding::Utf8;
        if self.fill(2)? {
            match (self.buf[self.pos], self.buf[self.pos + 1]) {
                (0xff, 0xfe) => encoding = Encoding::Utf16Le,
                (0xfe, 0xff) => encoding = Encoding::Utf16Be,
                _ => {}
            }
            if encoding != Encoding::Utf8 {
                self.pos += 2;
            }
        }
        self.encoding = Some(encoding);
        Ok(encoding)
    }

    fn next_utf16(&mut self, big_endian: bool) -> Option<char> {
        let offset = self.base + self.pos as u64;
        let unit = |this: &mut Self| -> Result<Option<u16>, io::Error> {
            if !this.fill(2)? {
                return Ok(None);
            }
            let pair = [this.buf[this.pos], this.buf[this.pos + 1]];
            this.pos += 2;
            Ok(Some(if big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }))
        };
        let first = match unit(self) {
            Ok(Some(u)) => u,
            Ok(None) if self.pos == self.end => {
                self.done = true;
                return None;
            }
            Ok(None) => return self.fail(InputError::NotUtf8 { offset }),
            Err(e) => return self.fail(InputError::Io(e)),
        };
        let mut units = [first, 0];
        let mut len = 1;
        if (0xd800..0xdc00).contains(&first) {
            match unit(self) {
                Ok(Some(u)) => units[1] = u,
                Ok(None) => return self.fail(InputError::NotUtf8 { offset }),
                Err(e) => return self.fail(InputError::Io(e)),
            }
            len = 2;
        }
        match char::decode_utf16(units[..len].iter().copied()).next() {
            Some(Ok(c)) => {
                self.count(len * 2, offset)?;
                Some(c)
            }
            _ => self.fail(InputError::NotUtf8 { offset }),
        }
    }

    fn next_slow(&mut self) -> Option<char> {
        if self.done {
            return None;
        }
        let encoding = match self.encoding {
            Some(e) => e,
            None => match self.detect_encoding() {
                Ok(e) => e,
                Err(e) => return self.fail(InputError::Io(e)),
            },
        };
        match encoding {
            Encoding::Utf8 => {}
            Encoding::Utf16Le => return self.next_utf16(false),
            Encoding::Utf16Be => return self.next_utf16(true),
        }
        let ends_on_spaces = self.pos == self.end && self.ends_on_spaces();
        match self.fill(1) {
            Ok(true) => {}
            Ok(false) => return self.at_end(ends_on_spaces),
            Err(e) => return self.fail(InputError::Io(e)),
        }
        let first = self.buf[self.pos];
        let width = match first {
            0x00..=0x7f => 1,
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let offset = self.base + self.pos as u64;
        if width == 0 {
            return self.fail(InputError::NotUtf8 { offset });
        }
        match self.fill(width) {
            Ok(true) => {}
            Ok(false) => return self.fail(InputError::NotUtf8 { offset }),
            Err(e) => return self.fail(InputError::Io(e)),
        }
        let c = match std::str::from_utf8(&self.buf[self.pos..self.pos + width]) {
            Ok(s) => s.chars().next(),
            Err(_) => None,
        };
        let Some(c) = c else {
            return self.fail(InputError::NotUtf8 { offset });
        };
        self.pos += width;
        self.count(width, offset)?;
        Some(c)
    }

    #[inline]
    fn count(&mut self, width: usize, offset: u64) -> Option<()> {
        self.unchecked += width;
        if self.unchecked >= self.step && !self.checkpoint() {
            self.fail(InputError::ScalarTooLarge {
                limit: self.state.limit,
                offset,
            });
            return None;
        }
        Some(())
    }
}

impl<R: Read> Iterator for CharInput<R> {
    type Item = char;

    #[inline]
    fn next(&mut self) -> Option<char> {
        if let Some(&b) = self.buf.get(self.pos) {
            if self.pos < self.end
                && b < 0x80
                && !self.done
                && self.encoding == Some(Encoding::Utf8)
            {
                self.pos += 1;
                let offset = self.base + self.pos as u64 - 1;
                self.count(1, offset)?;
                return Some(b as char);
            }
        }
        self.next_slow()
    }
}
