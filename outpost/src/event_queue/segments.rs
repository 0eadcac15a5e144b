//! The queue on disk: numbered append-only segment files of JSON lines (`00000000000000000001.log`,
//! ...) in one private directory, and a `cursor` file saying how far delivery got. The writer
//! appends whole lines and fsyncs once per batch; the reader takes complete lines only, so a
//! line torn by a crash is never read (the writer cuts it off when it reopens the head segment).
//! Segments wholly delivered are deleted. Plain synchronous I/O: callers run it off the async
//! workers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A segment is closed and the next begun once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 1 << 20;
/// The cursor file's name.
const CURSOR_FILE: &str = "cursor";
/// Segment files end with this.
const SEGMENT_SUFFIX: &str = ".log";

/// How far delivery got: everything before `offset` in segment `segment` (and every earlier
/// segment) is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

/// The file name of segment `seq`.
fn segment_name(seq: u64) -> String {
    format!("{seq:020}{SEGMENT_SUFFIX}")
}

/// The segment numbers in `dir`, ascending.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(SEGMENT_SUFFIX)
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push(seq);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Opens (creating, mode 0600) `path` for appending.
fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true).read(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates `dir` (mode 0700) if needed.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The appending side.
#[derive(Debug)]
pub struct SegmentWriter {
    dir: PathBuf,
    seq: u64,
    file: File,
    size: u64,
}

impl SegmentWriter {
    /// Opens the newest segment of `dir` (or the first), cutting off a line a crash left torn.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let seq = list_segments(dir)?.last().copied().unwrap_or(1);
        let path = dir.join(segment_name(seq));
        let mut file = open_private(&path, true)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - whole,
                "cutting off an event a crash left half written"
            );
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        sync_dir(dir);
        Ok(Self {
            dir: dir.to_owned(),
            seq,
            file,
            size: whole as u64,
        })
    }

    /// The segment being appended to.
    pub fn head(&self) -> u64 {
        self.seq
    }

    /// Appends `lines` (each ending in `\n`) and fsyncs them: one write and one fsync for the
    /// whole batch. Starts the next segment first when the current one is full.
    pub fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        if self.size >= SEGMENT_BYTES {
            let next = self.seq + 1;
            let file = open_private(&self.dir.join(segment_name(next)), true)?;
            sync_dir(&self.dir);
            self.file = file;
            self.seq = next;
            self.size = 0;
        }
        let written = self
            .file
            .write_all(lines)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            // Never leave half a batch to merge with the next line.
            let _ = self.file.set_len(self.size);
            return Err(error);
        }
        self.size += lines.len() as u64;
        Ok(())
    }
}

/// The delivering side: reads from the cursor on, and moves it on.
#[derive(Debug)]
pub struct SegmentReader {
    dir: PathBuf,
    cursor: Cursor,
}

/// Complete lines read from the queue, and where the cursor goes once they are delivered.
#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<Vec<u8>>,
    pub next: Option<Cursor>,
}

impl SegmentReader {
    /// Opens `dir` at its saved cursor (or the start of the oldest segment).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let segments = list_segments(dir)?;
        let oldest = segments.first().copied().unwrap_or(1);
        let saved = std::fs::read_to_string(dir.join(CURSOR_FILE))
            .ok()
            .and_then(|text| {
                let (segment, offset) = text.trim().split_once(' ')?;
                Some(Cursor {
                    segment: segment.parse().ok()?,
                    offset: offset.parse().ok()?,
                })
            });
        let cursor = match saved {
            Some(cursor) if segments.contains(&cursor.segment) => cursor,
            Some(cursor) if cursor.segment > oldest => Cursor {
                // Its segment is gone: start at the next one that exists.
                segment: segments
                    .iter()
                    .copied()
                    .find(|s| *s > cursor.segment)
                    .unwrap_or(cursor.segment),
                offset: 0,
            },
            _ => Cursor {
                segment: oldest,
                offset: 0,
            },
        };
        Ok(Self {
            dir: dir.to_owned(),
            cursor,
        })
    }

    /// Where delivery stands.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Reads up to `max` complete lines from the cursor on. `head` is the segment the writer
    /// appends to: a segment before it is complete, so at its end reading moves on to the next.
    pub fn read(&self, max: usize, head: u64) -> std::io::Result<Batch> {
        let mut at = self.cursor;
        let mut batch = Batch::default();
        loop {
            let path = self.dir.join(segment_name(at.segment));
            let mut bytes = Vec::new();
            match File::open(&path) {
                Ok(mut file) => {
                    file.seek(SeekFrom::Start(at.offset))?;
                    file.read_to_end(&mut bytes)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let mut used = 0usize;
            while batch.lines.len() < max {
                let Some(end) = bytes
                    .get(used..)
                    .and_then(|rest| rest.iter().position(|b| *b == b'\n').map(|i| used + i))
                else {
                    break;
                };
                if let Some(line) = bytes.get(used..end)
                    && !line.is_empty()
                {
                    batch.lines.push(line.to_vec());
                }
                used = end + 1;
            }
            at.offset += used as u64;
            batch.next = Some(at);
            if batch.lines.len() >= max || at.segment >= head {
                return Ok(batch);
            }
            // A closed segment read to its end: go on with the next.
            at = Cursor {
                segment: at.segment + 1,
                offset: 0,
            };
        }
    }

    /// Records that everything before `next` is delivered: saves the cursor (atomically) and
    /// deletes segments wholly before it. Returns the bytes freed.
    pub fn commit(&mut self, next: Cursor) -> std::io::Result<u64> {
        if next <= self.cursor {
            return Ok(0);
        }
        let tmp = self.dir.join("cursor.tmp");
        {
            let mut out = open_private(&tmp, false)?;
            out.write_all(format!("{} {}\n", next.segment, next.offset).as_bytes())?;
            out.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(CURSOR_FILE))?;
        let mut freed = 0;
        for seq in list_segments(&self.dir)? {
            if seq >= next.segment {
                break;
            }
            let path = self.dir.join(segment_name(seq));
            freed += std::fs::metadata(&path).map_or(0, |m| m.len());
            std::fs::remove_file(&path)?;
        }
        sync_dir(&self.dir);
        self.cursor = next;
        Ok(freed)
    }
}

/// Bytes held by the segments of `dir`.
pub fn bytes_on_disk(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for seq in list_segments(dir)? {
        total += std::fs::metadata(dir.join(segment_name(seq)))?.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(batch: &Batch) -> Vec<String> {
        batch
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn appended_lines_are_read_once_across_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SegmentWriter::open(dir.path()).expect("open");
        writer.append(b"a\nb\n").expect("append");
        writer.append(b"c\n").expect("append");
        let mut reader = SegmentReader::open(dir.path()).expect("open");
        let batch = reader.read(2, writer.head()).expect("read");
        assert_eq!(lines(&batch), ["a", "b"]);
        reader.commit(batch.next.expect("next")).expect("commit");
        drop(reader);
        let reader = SegmentReader::open(dir.path()).expect("reopen");
        let batch = reader.read(10, writer.head()).expect("read");
        assert_eq!(lines(&batch), ["c"], "the cursor survives reopening");
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_never_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SegmentWriter::open(dir.path()).expect("open");
        writer.append(b"whole\nhal").expect("append");
        let reader = SegmentReader::open(dir.path()).expect("open");
        assert_eq!(lines(&reader.read(10, 1).expect("read")), ["whole"]);
        drop(writer);
        let mut writer = SegmentWriter::open(dir.path()).expect("reopen");
        writer.append(b"next\n").expect("append");
        assert_eq!(lines(&reader.read(10, 1).expect("read")), ["whole", "next"]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(segment_name(1)))
                .expect("meta")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SegmentWriter::open(dir.path()).expect("open");
        let big = vec![b'x'; usize::try_from(SEGMENT_BYTES).expect("size")];
        let mut line = big.clone();
        line.push(b'\n');
        writer.append(&line).expect("append");
        writer.append(b"second\n").expect("append");
        assert_eq!(writer.head(), 2);
        let mut reader = SegmentReader::open(dir.path()).expect("open");
        let batch = reader.read(10, writer.head()).expect("read");
        assert_eq!(batch.lines.len(), 2);
        assert_eq!(batch.lines[1], b"second");
        let freed = reader.commit(batch.next.expect("next")).expect("commit");
        assert_eq!(freed, SEGMENT_BYTES + 1);
        assert_eq!(list_segments(dir.path()).expect("list"), [2]);
        assert_eq!(bytes_on_disk(dir.path()).expect("size"), 7);
    }
}
