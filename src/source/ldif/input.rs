//! The reader's one read buffer: the input is read into it in large blocks, and an entry is
//! parsed where it lies, so that its values can be handed out borrowed from it.
//!
//! The buffer keeps its size unless an entry (with the lines before it) does not fit in it; then
//! it doubles until the entry fits. So memory stays bounded by the buffer and the longest entry,
//! whatever the size of the file.

use std::io::{self, Read};

/// The default size of the read buffer: large enough that refills are rare, small enough to
/// stay in the caches of a core.
pub(super) const BUFFER_BYTES: usize = 1 << 20;

pub(super) struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    /// The bytes not consumed yet are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The reader reported the end of its input.
    eof: bool,
    /// An error met after some bytes were read in the same refill: reported at the next refill,
    /// so that what was read before it is parsed first, as reading line by line would.
    pending: Option<io::Error>,
    /// The last byte read so far.
    last: Option<u8>,
}

impl<R: Read> Input<R> {
    pub(super) fn new(reader: R, capacity: usize) -> Self {
        Input { reader, buf: vec![0; capacity.max(1)], pos: 0, end: 0, eof: false, pending: None, last: None }
    }

    /// Sets the size the buffer starts with (before anything is read).
    pub(super) fn set_capacity(&mut self, capacity: usize) {
        if self.end == 0 {
            self.buf = vec![0; capacity.max(1)];
        }
    }

    /// The bytes read and not consumed yet.
    pub(super) fn window(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Where the window starts in the buffer.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// Where the bytes read end in the buffer.
    pub(super) fn end(&self) -> usize {
        self.end
    }

    /// Bytes `from..to` of the buffer, consumed or not (empty if out of range).
    pub(super) fn bytes(&self, from: usize, to: usize) -> &[u8] {
        self.buf.get(from..to.min(self.end)).unwrap_or_default()
    }

    /// Whether the window holds the rest of the input.
    pub(super) fn at_eof(&self) -> bool {
        self.eof && self.pending.is_none()
    }

    /// Whether the whole input was read and its last byte is not a line feed (an empty input
    /// has none to miss).
    pub(super) fn ends_without_line_break(&self) -> bool {
        self.eof && self.last.is_some_and(|b| b != b'\n')
    }

    /// Consumes the first `n` bytes of the window. They stay where they are until the next
    /// [`Self::refill`], so what was borrowed from them stays valid until then.
    pub(super) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads more input after the window: moves the window to the front of the buffer, doubles
    /// the buffer if the window fills it, then reads until the buffer is full or the input ends.
    /// Called only when the window is not enough, so the window grows by at least one byte or
    /// the input is at its end.
    pub(super) fn refill(&mut self) -> io::Result<()> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let before = self.end;
        while self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n.min(self.buf.len() - self.end);
                    self.last = self.end.checked_sub(1).map(|i| self.buf[i]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.end == before => return Err(e),
                Err(e) => {
                    self.pending = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives one byte per call, then fails once if asked to.
    struct Trickle<'a>(&'a [u8], Option<io::Error>);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((&b, rest)) => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                None => self.1.take().map_or(Ok(0), Err),
            }
        }
    }

    #[test]
    fn refills_move_the_window_to_the_front_and_grow_only_when_full() {
        let mut input = Input::new(Trickle(b"abcdefgh", None), 4);
        input.refill().unwrap();
        assert_eq!(input.window(), b"abcd");
        input.consume(3);
        input.refill().unwrap();
        assert_eq!((input.window(), input.buf.len()), (&b"defg"[..], 4));
        input.refill().unwrap();
        assert_eq!((input.window(), input.buf.len()), (&b"defgh"[..], 8));
        assert!(input.at_eof());
    }

    #[test]
    fn a_read_error_comes_after_the_bytes_read_before_it() {
        let mut input = Input::new(Trickle(b"ab", Some(io::Error::other("gone"))), 8);
        input.refill().unwrap();
        assert_eq!(input.window(), b"ab");
        assert!(!input.at_eof());
        assert_eq!(input.refill().unwrap_err().to_string(), "gone");
    }
}
