//! The prediction log: JSON lines written by one thread, to standard output or to a file rotated by size. Requests
//! only queue a finished line; when the queue is full the line is dropped and counted, never waited for. The writer
//! wakes on its own every few milliseconds and takes the whole queue, so a request never has to wake it (waking a
//! thread per line cost more than the rest of the proxy under load).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TryRecvError, TrySendError};
use std::thread;
use std::time::Duration;

use prometheus::IntCounter;
use serde::Serialize;
use serde_json::Value;

use crate::config::{LogDestination, PredictionLog};

use super::body::Captured;

/// Lines waiting for the writer; beyond this, lines are dropped and counted.
const QUEUE: usize = 65_536;
/// How often the writer takes the queue.
const TICK: Duration = Duration::from_millis(10);

enum Message {
    Line(String),
    Record(Box<dyn Record>),
    Configure(Sink),
    Flush(mpsc::Sender<()>),
}

/// Where lines go and when a file rotates.
#[derive(Debug, Clone, PartialEq)]
struct Sink {
    destination: LogDestination,
    rotate_bytes: u64,
    keep_files: u32,
}

impl From<&PredictionLog> for Sink {
    fn from(c: &PredictionLog) -> Sink {
        Sink { destination: c.destination.clone(), rotate_bytes: c.rotate_bytes, keep_files: c.keep_files }
    }
}

/// The handle requests write through; cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    tx: SyncSender<Message>,
    dropped: IntCounter,
    // False when the destination is `none`: records are not even formatted.
    enabled: Arc<AtomicBool>,
}

impl LogHandle {
    /// Starts the writer thread.
    pub fn start(config: &PredictionLog, dropped: IntCounter) -> LogHandle {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let sink = Sink::from(config);
        thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || Writer::new(sink).run(rx))
            .expect("the prediction log thread starts");
        let enabled = Arc::new(AtomicBool::new(config.destination != LogDestination::None));
        LogHandle { tx, dropped, enabled }
    }

    /// Queues one record as a line.
    pub fn write<T: Serialize>(&self, record: &T) {
        if !self.enabled() {
            return;
        }
        let Ok(line) = serde_json::to_string(record) else { return };
        self.queue(Message::Line(line));
    }

    /// Whether lines are written at all (false when the destination is `none`).
    fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Queues a line or record for the writer; when the queue is full it is dropped and counted, never waited for.
    fn queue(&self, message: Message) {
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Queues a record that the writer thread turns into its line, so that formatting it costs the request path
    /// nothing: the prediction line of every request, whose formatting came before the answer's last bytes went out.
    pub fn write_later<R: Record>(&self, record: R) {
        if self.enabled() {
            self.queue(Message::Record(Box::new(record)));
        }
    }

    /// Switches to a new destination or rotation (after a configuration change).
    pub fn configure(&self, config: &PredictionLog) {
        self.enabled.store(config.destination != LogDestination::None, Ordering::Relaxed);
        let _ = self.tx.send(Message::Configure(Sink::from(config)));
    }

    /// Waits until every queued line is written and flushed (at shutdown, and in tests).
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(5));
        }
    }
}

enum Out {
    None,
    Stdout(BufWriter<io::Stdout>),
    File { path: PathBuf, file: BufWriter<File>, size: u64 },
}

struct Writer {
    sink: Sink,
    out: Out,
}

impl Writer {
    fn new(sink: Sink) -> Writer {
        let out = open(&sink);
        Writer { sink, out }
    }

    fn run(mut self, rx: mpsc::Receiver<Message>) {
        loop {
            thread::sleep(TICK);
            // Take the whole queue, then flush once for the batch.
            let mut wrote = false;
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        wrote = true;
                        self.handle(m);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            if wrote {
                self.flush();
            }
        }
    }

    fn handle(&mut self, m: Message) {
        match m {
            Message::Line(line) => self.line(&line),
            Message::Record(record) => self.line(&record.line()),
            Message::Configure(sink) => {
                if sink != self.sink {
                    self.flush();
                    self.out = open(&sink);
                    self.sink = sink;
                }
            }
            Message::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn line(&mut self, line: &str) {
        let len = line.len() as u64 + 1;
        if let Out::File { size, .. } = &self.out
            && *size > 0
            && *size + len > self.sink.rotate_bytes
        {
            self.rotate();
        }
        let result = match &mut self.out {
            Out::None => Ok(()),
            Out::Stdout(w) => w.write_all(line.as_bytes()).and_then(|()| w.write_all(b"\n")),
            Out::File { file, size, .. } => {
                *size += len;
                file.write_all(line.as_bytes()).and_then(|()| file.write_all(b"\n"))
            }
        };
        if let Err(e) = result {
            eprintln!("champion-router: the prediction log cannot be written: {e}");
        }
    }

    fn flush(&mut self) {
        let _ = match &mut self.out {
            Out::None => Ok(()),
            Out::Stdout(w) => w.flush(),
            Out::File { file, .. } => file.flush(),
        };
    }

    /// `path` → `path.1` → … → `path.<keep>`; the oldest is removed.
    fn rotate(&mut self) {
        self.flush();
        let Out::File { path, .. } = &self.out else { return };
        let path = path.clone();
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
        let keep = self.sink.keep_files;
        if keep == 0 {
            let _ = fs::remove_file(&path);
        } else {
            let _ = fs::remove_file(numbered(keep));
            for n in (1..keep).rev() {
                let _ = fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = fs::rename(&path, numbered(1));
        }
        self.out = open(&self.sink);
    }
}

fn open(sink: &Sink) -> Out {
    match &sink.destination {
        LogDestination::None => Out::None,
        LogDestination::Stdout => Out::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout())),
        LogDestination::File(path) => {
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent() {
                let _ = fs::create_dir_all(dir);
            }
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => {
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    Out::File { path, file: BufWriter::with_capacity(64 * 1024, f), size }
                }
                Err(e) => {
                    eprintln!("champion-router: the prediction log {} cannot be opened: {e}", path.display());
                    Out::None
                }
            }
        }
    }
}

/// What the writer thread formats into a line ([`LogHandle::write_later`]).
pub trait Record: Send + 'static {
    /// The line, one JSON object without its newline.
    fn line(&self) -> String;
}

/// One JSON object built field by field, for the line every request logs. serde_json's serializer escapes every
/// string a byte at a time through its formatter, and the key of every field too, which took more instructions than
/// anything else the router does per request (callgrind, docs/router-benchmark.md); here a string that needs no
/// escaping (the usual IDs, names and paths) is copied whole, and anything else goes through serde_json.
pub struct Line {
    out: Vec<u8>,
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl Line {
    /// An empty object.
    pub fn new() -> Line {
        let mut out = Vec::with_capacity(320);
        out.push(b'{');
        Line { out }
    }

    fn key(&mut self, key: &'static str) {
        debug_assert!(!needs_escape(key), "{key:?}");
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string field.
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Line {
        self.key(key);
        if needs_escape(value) {
            let _ = serde_json::to_writer(&mut self.out, value);
        } else {
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        }
        self
    }

    /// A string field, left out when `None`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Line {
        if let Some(v) = value {
            self.str(key, v);
        }
        self
    }

    /// A field of any serializable value (numbers, arrays, documents), written by serde_json.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> &mut Line {
        self.key(key);
        if serde_json::to_writer(&mut self.out, value).is_err() {
            self.out.extend_from_slice(b"null");
        }
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push(b'}');
        // Only whole UTF-8 strings and serde_json's output went in.
        String::from_utf8(self.out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Whether a JSON string needs escapes: a quote, a backslash or a control character. Eight bytes at a time, with the
/// usual bit tricks (a byte's high bit is set in `v - 0x01…01 & !v & 0x80…80` exactly when some byte is zero, and with
/// `0x20…20` instead when some byte is below 0x20); bytes from 0x80 up (UTF-8 sequences) never need escaping.
fn needs_escape(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH != 0;
    let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut chunks = s.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        if below(v, 0x20) || below(v ^ (ONES * u64::from(b'"')), 1) || below(v ^ (ONES * u64::from(b'\\')), 1) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

/// A logged body: the JSON document when the copy is whole JSON, else the text of its first bytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedBody {
    /// The body.
    pub body: Value,
    /// The body was cut to the size cap (or did not arrive whole).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl LoggedBody {
    /// The logged form of a copy, cut to `limit` bytes.
    pub fn new(c: &Captured, limit: usize) -> LoggedBody {
        let whole = c.complete && !c.truncated && c.bytes.len() <= limit;
        if whole && let Ok(v) = serde_json::from_slice::<Value>(&c.bytes) {
            return LoggedBody { body: v, truncated: false };
        }
        let cut = &c.bytes[..c.bytes.len().min(limit)];
        LoggedBody { body: Value::String(String::from_utf8_lossy(cut).into_owned()), truncated: !whole }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("champion-router-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_go_to_the_file_and_rotate_by_size() {
        let dir = temp_dir("rotate");
        let path = dir.join("p.jsonl");
        let config = PredictionLog {
            destination: LogDestination::File(path.display().to_string()),
            rotate_bytes: 100,
            keep_files: 2,
            ..PredictionLog::default()
        };
        let log = LogHandle::start(&config, IntCounter::new("d", "d").unwrap());
        for i in 0..12 {
            // 33 bytes a line with its newline: three lines a file.
            log.write(&serde_json::json!({"line": i, "pad": "xxxxxxxxxxxx"}));
        }
        log.flush();
        let read = |p: &PathBuf| fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        assert_eq!(current.lines().count(), 3, "{current}");
        assert!(current.contains(r#""line":11"#));
        assert!(read(&dir.join("p.jsonl.1")).contains(r#""line":8"#));
        assert!(read(&dir.join("p.jsonl.2")).contains(r#""line":5"#));
        assert!(!dir.join("p.jsonl.3").exists(), "only keepFiles rotated files are kept");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_are_the_json_serde_would_write() {
        let mut line = Line::new();
        line.str("type", "prediction")
            .str("plain", "0190-abc/v1:predict?x=1")
            .str("escaped", "a \"quoted\" \\ path\nwith\tcontrol \u{1} and ünïcode")
            .opt_str("absent", None)
            .opt_str("present", Some("yes"))
            .value("status", &200u16)
            .value("latencyMs", &0.0f64)
            .value("ms", &1.234f64)
            .value("shadows", &["a", "b"][..])
            .value("body", &serde_json::json!({"k": [1, "two"]}));
        let text = line.finish();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let want = serde_json::json!({
            "type": "prediction",
            "plain": "0190-abc/v1:predict?x=1",
            "escaped": "a \"quoted\" \\ path\nwith\tcontrol \u{1} and ünïcode",
            "present": "yes",
            "status": 200,
            "latencyMs": 0.0,
            "ms": 1.234,
            "shadows": ["a", "b"],
            "body": {"k": [1, "two"]},
        });
        assert_eq!(parsed, want, "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(Line::new().finish(), "{}");
    }

    #[test]
    fn the_escape_check_finds_every_special_byte_at_every_place() {
        for len in 0..20 {
            let plain = "a".repeat(len);
            assert!(!needs_escape(&plain), "{plain:?}");
            for at in 0..len {
                for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
                    let mut s: Vec<char> = plain.chars().collect();
                    s[at] = special;
                    let s: String = s.into_iter().collect();
                    assert!(needs_escape(&s), "{s:?}");
                }
                for fine in [' ', '~', '\u{7f}', 'é', '€', '#', '!', '['] {
                    let mut s: Vec<char> = plain.chars().collect();
                    s[at] = fine;
                    let s: String = s.into_iter().collect();
                    assert!(!needs_escape(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn bodies_are_json_when_whole_and_cut_text_otherwise() {
        let c = |b: &'static [u8], complete, truncated| Captured { bytes: Bytes::from_static(b), complete, truncated };
        let whole = LoggedBody::new(&c(br#"{"a":1}"#, true, false), 100);
        assert_eq!((whole.body, whole.truncated), (serde_json::json!({"a": 1}), false));
        let cut = LoggedBody::new(&c(br#"{"a":1}"#, true, false), 3);
        assert_eq!((cut.body, cut.truncated), (Value::String(r#"{"a"#.into()), true));
        let text = LoggedBody::new(&c(b"plain", true, false), 100);
        assert_eq!((text.body, text.truncated), (Value::String("plain".into()), false));
    }
}
