//! Files named on the command line (app definitions, inventories, topologies): only regular
//! files, and only so much of them, so a directory, `/dev/zero` or a FIFO gets a message
//! instead of a hang or a read that never ends.

use std::io::Read;
use std::path::Path;

/// The most an app definition file may hold: what the API accepts in one request body.
pub const MAX_APP_FILE: u64 = 1024 * 1024;

/// The most an inventory or topology file may hold.
pub const MAX_OTHER_FILE: u64 = 16 * 1024 * 1024;

/// Reads `path` as UTF-8 text if it is a regular file of at most `max` bytes; `what` names it
/// in messages ("app definition").
pub fn read_text(path: &Path, what: &str, max: u64) -> Result<String, String> {
    let shown = path.display();
    // Checked before opening: opening a FIFO blocks until someone writes to it.
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{what} {shown} is {}, not a regular file; give the path of a file",
            kind(&meta.file_type())
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{what} {shown} is larger than {max} bytes ({} KiB), the most drover reads from one; make it smaller",
            max / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("{what} {shown} is not UTF-8 text: {e}"))
}

/// Reads `path` as JSON, with the checks of [`read_text`].
pub fn read_json(path: &Path, what: &str, max: u64) -> Result<serde_json::Value, String> {
    let text = read_text(path, what, max)?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

/// What a file that is not a regular file is, in words.
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_devices_and_big_files_are_refused_with_what_they_are() {
        let e = read_text(Path::new("/"), "app definition", MAX_APP_FILE).unwrap_err();
        assert!(e.contains("a directory"), "{e}");
        let e = read_text(Path::new("/dev/zero"), "app definition", MAX_APP_FILE).unwrap_err();
        assert!(e.contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 11]).unwrap();
        let e = read_text(&big, "app definition", 10).unwrap_err();
        assert!(e.contains("larger than 10 bytes"), "{e}");
        std::fs::write(&big, b"{\"id\": \"/a\"}").unwrap();
        assert_eq!(read_json(&big, "app definition", 100).unwrap()["id"], "/a");
    }
}
