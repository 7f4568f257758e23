//! Bytes on the POP3 wire: cutting input into command lines under a length limit, and writing
//! a message as a dot-stuffed multi-line response (RFC 1939 §3).

/// An incremental line splitter. Lines end in CRLF (a bare LF is accepted too, as other POP
/// servers accept it); a line over the limit is reported once and skipped to its end, so one
/// bad line never disturbs the next command.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    max: usize,
    discarding: bool,
}

/// One item from [`LineBuffer::next_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its line ending.
    Complete(Vec<u8>),
    /// A line longer than the limit was dropped.
    TooLong,
}

impl LineBuffer {
    /// A splitter for lines of at most `max` octets including the line ending.
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next line, if a complete one (or an over-long one) is buffered.
    pub fn next_line(&mut self) -> Option<Line> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if line.len() > self.max {
                        return Some(Line::TooLong);
                    }
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(Line::Complete(line));
                }
                None => {
                    if self.buf.len() > self.max {
                        self.buf.clear();
                        if !self.discarding {
                            self.discarding = true;
                            return Some(Line::TooLong);
                        }
                    }
                    return None;
                }
            }
        }
    }
}

/// Writes `message` as a multi-line response body: CRLF line endings, lines starting with `.`
/// doubled, and the terminating `.` line. With `body_lines`, writes the header, the blank line
/// and at most that many body lines (TOP).
pub fn dot_stuff(message: &[u8], body_lines: Option<usize>, out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 50 + 8);
    let mut in_body = false;
    let mut body_written = 0usize;
    let mut rest = message;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_body && let Some(max) = body_lines {
            if body_written >= max {
                break;
            }
            body_written += 1;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if !in_body && line.is_empty() {
            in_body = true;
        }
        rest = next;
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_limits() {
        let mut b = LineBuffer::new(10);
        b.push(b"STAT\r\nLIST 1\nRE");
        assert_eq!(b.next_line(), Some(Line::Complete(b"STAT".to_vec())));
        assert_eq!(b.next_line(), Some(Line::Complete(b"LIST 1".to_vec())));
        assert_eq!(b.next_line(), None);
        b.push(b"TR 1\r\n");
        assert_eq!(b.next_line(), Some(Line::Complete(b"RETR 1".to_vec())));
        b.push(&[b'x'; 30]);
        assert_eq!(b.next_line(), Some(Line::TooLong));
        b.push(&[b'x'; 30]);
        assert_eq!(b.next_line(), None, "reported once");
        b.push(b"xx\r\nNOOP\r\n");
        assert_eq!(b.next_line(), Some(Line::Complete(b"NOOP".to_vec())));
        b.push(b"0123456789abc\r\nQUIT\r\n");
        assert_eq!(b.next_line(), Some(Line::TooLong));
        assert_eq!(b.next_line(), Some(Line::Complete(b"QUIT".to_vec())));
    }

    #[test]
    fn stuffing_and_top() {
        let msg = b"Subject: x\r\nFrom: a\r\n\r\n.hidden\r\nline2\nline3\r\n";
        let mut out = Vec::new();
        dot_stuff(msg, None, &mut out);
        assert_eq!(
            out,
            b"Subject: x\r\nFrom: a\r\n\r\n..hidden\r\nline2\r\nline3\r\n.\r\n".to_vec()
        );
        let mut top = Vec::new();
        dot_stuff(msg, Some(1), &mut top);
        assert_eq!(
            top,
            b"Subject: x\r\nFrom: a\r\n\r\n..hidden\r\n.\r\n".to_vec()
        );
        let mut headers = Vec::new();
        dot_stuff(msg, Some(0), &mut headers);
        assert_eq!(headers, b"Subject: x\r\nFrom: a\r\n\r\n.\r\n".to_vec());
        let mut unterminated = Vec::new();
        dot_stuff(b"a\r\nb", None, &mut unterminated);
        assert_eq!(unterminated, b"a\r\nb\r\n.\r\n".to_vec());
    }
}
