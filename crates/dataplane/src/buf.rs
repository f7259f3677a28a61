//! `PacketBuf`: one frame in a reusable byte buffer with headroom in front,
//! so encapsulation prepends headers without moving the payload (the role of
//! TF's `vr_packet` head room).

/// Headroom reserved in front of a loaded frame: enough for the largest
/// encapsulation we add (Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 + inner
/// Ethernet 14 = 64) with margin.
pub const DEFAULT_HEADROOM: usize = 128;

/// A frame at `data[start..]`, with `start` bytes of headroom before it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PacketBuf {
    data: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("headroom", &self.start)
            .field("len", &self.len())
            .finish()
    }
}

impl PacketBuf {
    /// An empty buffer able to hold `frame_capacity` bytes after the default
    /// headroom without reallocating.
    pub fn with_capacity(frame_capacity: usize) -> Self {
        let mut data = Vec::with_capacity(DEFAULT_HEADROOM + frame_capacity);
        data.resize(DEFAULT_HEADROOM, 0);
        PacketBuf {
            data,
            start: DEFAULT_HEADROOM,
        }
    }

    /// A buffer holding a copy of `frame` after the default headroom.
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut b = Self::with_capacity(frame.len());
        b.load(frame);
        b
    }

    /// Replace the contents with a copy of `frame`, restoring the default
    /// headroom (reuses the allocation: the shell's per-packet path).
    pub fn load(&mut self, frame: &[u8]) {
        // The headroom's old bytes need no zeroing: they are overwritten
        // before they become part of a frame.
        self.start = DEFAULT_HEADROOM;
        let end = DEFAULT_HEADROOM + frame.len();
        if self.data.len() >= end {
            // The common case in a receive loop (frames of similar sizes):
            // shorten to the new frame and overwrite in place.
            self.data.truncate(end);
            if let Some(dst) = self.data.get_mut(DEFAULT_HEADROOM..) {
                dst.copy_from_slice(frame);
            }
            return;
        }
        if self.data.len() >= DEFAULT_HEADROOM {
            self.data.truncate(DEFAULT_HEADROOM);
        } else {
            self.data.resize(DEFAULT_HEADROOM, 0);
        }
        self.data.extend_from_slice(frame);
    }

    /// The frame.
    pub fn frame(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or(&[])
    }

    /// The frame, writable.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let start = self.start;
        self.data.get_mut(start..).unwrap_or(&mut [])
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.data.len().saturating_sub(self.start)
    }

    /// No frame bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes available in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Grow the frame by `n` bytes at the front (for a new outer header) and
    /// return them. When the headroom is too small the buffer is shifted
    /// (one copy) to make room.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> &mut [u8] {
        if n > self.start {
            self.grow_headroom(n);
        }
        self.start -= n;
        let start = self.start;
        &mut self.data[start..start + n]
    }

    #[cold]
    fn grow_headroom(&mut self, n: usize) {
        let extra = n - self.start + DEFAULT_HEADROOM;
        self.data.splice(0..0, std::iter::repeat_n(0u8, extra));
        self.start += extra;
    }

    /// Remove `n` bytes from the front of the frame (decapsulation). Returns
    /// false (and changes nothing) when the frame is shorter than `n`.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    /// Shorten the frame to `len` bytes (trailing padding).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.data.truncate(self.start + len);
        }
    }

    /// Bytes from absolute offset `start` (a headroom value seen earlier) to
    /// the end: the frame as it was before later `pull_front`s.
    pub(crate) fn bytes_from(&self, start: usize) -> &[u8] {
        self.data.get(start..).unwrap_or(&[])
    }

    /// Move the frame start back to absolute offset `start` (undo
    /// `pull_front`s; the bytes in between were not modified).
    pub(crate) fn rewind(&mut self, start: usize) {
        if start <= self.data.len() {
            self.start = start;
        }
    }

    /// The frame as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.frame().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_replaces_the_frame_whatever_came_before() {
        let mut b = PacketBuf::with_capacity(16);
        b.load(&[1, 2, 3, 4]);
        assert_eq!(b.frame(), &[1, 2, 3, 4]);
        // Shorter after longer (overwritten in place), after a push_front.
        b.push_front(2).copy_from_slice(&[8, 9]);
        b.load(&[5, 6]);
        assert_eq!((b.frame(), b.headroom()), (&[5u8, 6][..], DEFAULT_HEADROOM));
        // Longer after shorter (grown), empty.
        b.load(&[7; 40]);
        assert_eq!(b.frame(), &[7; 40]);
        b.load(&[]);
        assert!(b.is_empty());
        b.load(&[3]);
        assert_eq!(b.frame(), &[3]);
    }

    #[test]
    fn push_and_pull_keep_payload() {
        let mut b = PacketBuf::from_frame(&[1, 2, 3]);
        b.push_front(2).copy_from_slice(&[9, 8]);
        assert_eq!(b.frame(), &[9, 8, 1, 2, 3]);
        assert!(b.pull_front(2));
        assert_eq!(b.frame(), &[1, 2, 3]);
        assert!(!b.pull_front(4));
        // Beyond the headroom: shifted, still correct.
        let big = vec![7u8; DEFAULT_HEADROOM + 10];
        b.push_front(big.len()).copy_from_slice(&big);
        assert_eq!(b.len(), big.len() + 3);
        assert_eq!(&b.frame()[big.len()..], &[1, 2, 3]);
        b.truncate(2);
        assert_eq!(b.frame(), &[7, 7]);
    }
}
