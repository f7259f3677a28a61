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
#[derive(Debug, Default)]
pub struct FeedLines {
    buf: Vec<u8>,
}

impl FeedLines {
    /// Appends a chunk received from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete change, if a whole line has arrived.
    pub fn next_event(&mut self) -> Option<FeedEvent> {
        loop {
            let nl = self.buf.iter().position(|b| *b == b'\n')?;
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            if let Some(ev) = parse_line(&line) {
                return Some(ev);
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
}
