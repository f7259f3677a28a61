//! The change feed as its followers read it: `GET /watch?since=R` streams JSON lines
//! `{"revision", "op", "type", "uuid", "object"}` (`op` is `put` or `delete`). [`FeedLines`]
//! turns the byte chunks of that stream into [`FeedEvent`]s; sans-IO, shared by every role
//! that follows the feed over HTTP (the schema transformer, the control node).

use serde_json::Value;

use crate::StoredObj;

/// One change: the object as stored after it, or `None` when it was deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Revision of the change.
    pub revision: u64,
    /// Uuid of the object.
    pub uuid: String,
    /// The object as stored, `None` for a delete.
    pub object: Option<StoredObj>,
}

/// Splits stream chunks into lines and parses each into a [`FeedEvent`]. A line that is
/// not a change (not JSON, no revision or uuid) is skipped; a partial line waits for the
/// next chunk.
///
/// Consumed lines are not removed from the front of the buffer one by one (that moves the
/// rest of a large chunk once per line, quadratic in the lines of a chunk): a read offset
/// advances instead, and the consumed prefix is dropped once, when the next chunk arrives.
/// The search for a newline also resumes where the last one stopped.
#[derive(Debug, Default)]
pub struct FeedLines {
    buf: Vec<u8>,
    /// Start of the first unconsumed line.
    start: usize,
    /// Bytes from `start` on already searched for a newline without finding one.
    scanned: usize,
}

impl FeedLines {
    /// Appends a chunk received from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete change, if a whole line has arrived.
    pub fn next_event(&mut self) -> Option<FeedEvent> {
        loop {
            let from = self.start + self.scanned;
            let Some(off) = self.buf.get(from..)?.iter().position(|b| *b == b'\n') else {
                self.scanned = self.buf.len() - self.start;
                return None;
            };
            let end = from + off;
            let line = self.buf.get(self.start..end)?;
            let ev = parse_line(line);
            self.start = end + 1;
            self.scanned = 0;
            if ev.is_some() {
                return ev;
            }
        }
    }
}

fn parse_line(line: &[u8]) -> Option<FeedEvent> {
    let mut ev = serde_json::from_slice::<Value>(line).ok()?;
    let revision = ev["revision"].as_u64()?;
    let uuid = ev["uuid"].as_str()?.to_string();
    let object = if ev["op"] == "delete" {
        None
    } else {
        // moved out, not copied (`ev` is an object: it has a revision)
        serde_json::from_value::<StoredObj>(ev["object"].take()).ok()
    };
    Some(FeedEvent {
        revision,
        uuid,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_junk_skipped() {
        let mut f = FeedLines::default();
        f.push(b"not json\n{\"revision\":7,\"op\":\"delete\",\"type\":\"project\",");
        assert_eq!(f.next_event(), None, "the second line is not complete yet");
        f.push(b"\"uuid\":\"u1\",\"object\":null}\n{\"op\":\"put\"}\n");
        let ev = f.next_event().expect("a complete delete line");
        assert_eq!((ev.revision, ev.uuid.as_str(), ev.object), (7, "u1", None));
        assert_eq!(
            f.next_event(),
            None,
            "a line without revision/uuid is skipped"
        );
    }

    #[test]
    fn many_lines_in_one_chunk_then_a_line_split_byte_by_byte() {
        let mut f = FeedLines::default();
        let mut chunk = String::new();
        for r in 1..=1000 {
            chunk.push_str(&format!(
                "{{\"revision\":{r},\"op\":\"delete\",\"uuid\":\"u{r}\"}}\n"
            ));
        }
        f.push(chunk.as_bytes());
        let revs: Vec<u64> = std::iter::from_fn(|| f.next_event())
            .map(|e| e.revision)
            .collect();
        assert_eq!(revs, (1..=1000).collect::<Vec<_>>());
        let line = b"{\"revision\":1001,\"op\":\"delete\",\"uuid\":\"last\"}\n";
        for (i, b) in line.iter().enumerate() {
            f.push(std::slice::from_ref(b));
            let ev = f.next_event();
            assert_eq!(ev.is_some(), i + 1 == line.len(), "byte {i}");
            if let Some(ev) = ev {
                assert_eq!((ev.revision, ev.uuid.as_str()), (1001, "last"));
            }
        }
        assert_eq!(f.next_event(), None);
    }
}
