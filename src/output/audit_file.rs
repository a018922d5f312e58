//! Puts an audit file in line order at the end of an audit, as `resume::compact` does a
//! run's results file: the records of one row (one per field) stay together, in field order.
//! Uses `output::reader`'s scanner to find the records; the file is replaced atomically (a
//! temp file, synced, renamed).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::output::reader::{ResumeError, Scanner, Span};

/// One row's records: its line and where they sit in the file.
#[derive(Clone, Copy, Debug)]
struct Block {
    line: u64,
    start: u64,
    len: u64,
}

/// Rewrites the audit file at `path` with its rows in line order; a file already in order is
/// left as it is. An unreadable record leaves the file untouched (an error), so nothing is lost.
pub fn compact(path: &Path) -> std::io::Result<()> {
    let blocks = blocks(path)?;
    if blocks.windows(2).all(|w| w[0].line < w[1].line) {
        return Ok(());
    }
    let mut sorted = blocks;
    sorted.sort_by_key(|b| b.line); // stable: a row's own order is kept
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".compact-{}", std::process::id()));
        PathBuf::from(name)
    };
    let copied = copy_blocks(path, &tmp, &sorted);
    match copied.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Pass 1: the rows' blocks in file order (consecutive records with the same line are a block),
/// framed by `output::reader`'s scanner, as every reader of these files is.
fn blocks(path: &Path) -> std::io::Result<Vec<Block>> {
    let mut record = csv::ByteRecord::new();
    let mut scan = Scanner::open(path, &mut record).map_err(io_error)?;
    let mut blocks: Vec<Block> = Vec::new();
    while let Some(found) = scan.next(&mut record).map_err(io_error)? {
        let Span { start, len } = found.span;
        let line = std::str::from_utf8(record.get(0).unwrap_or_default())
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| {
                std::io::Error::other(format!("a record at byte {start} has no line number"))
            })?;
        match blocks.last_mut() {
            Some(b) if b.line == line && b.start + b.len == start => b.len = start + len - b.start,
            _ => blocks.push(Block { line, start, len }),
        }
    }
    Ok(blocks)
}

/// The reader's error as the I/O error it is (its message names the file).
fn io_error(e: ResumeError) -> std::io::Error {
    match e {
        ResumeError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Pass 2: the header, then each block in the given order, into `tmp` (synced).
fn copy_blocks(path: &Path, tmp: &Path, blocks: &[Block]) -> std::io::Result<()> {
    let mut source = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let mut header = Vec::new();
    source.read_until(b'\n', &mut header)?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, File::create(tmp)?);
    out.write_all(&header)?;
    let mut record = Vec::new();
    for b in blocks {
        source.seek(std::io::SeekFrom::Start(b.start))?;
        record.resize(usize::try_from(b.len).map_err(std::io::Error::other)?, 0);
        source.read_exact(&mut record)?;
        if !record.ends_with(b"\n") {
            record.push(b'\n');
        }
        out.write_all(&record)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_line_order_with_their_fields_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let text = "line,field\n5,a\n5,b\n2,c\n\"9\",\"multi\nline\"\n3,d\n3,e\n";
        std::fs::write(&path, text).unwrap();
        compact(&path).unwrap();
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            got,
            "line,field\n2,c\n3,d\n3,e\n5,a\n5,b\n\"9\",\"multi\nline\"\n"
        );
    }
}
