//! [`SnapshotData`]: what openraft reads a snapshot from when it sends one, and writes a
//! received one into.
//!
//! A snapshot being sent is exported on demand: its image is written to an unlinked file by a
//! thread of its own (see `state_machine`), and the first seek or read waits until that file
//! is complete (openraft seeks to the end first, to learn the size). Dropping the value before
//! that stops the export and frees the file; a complete export may be read again by the next
//! transfer (see `state_machine::ExportCache`).

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Whether an export finished; sent once by the exporting thread.
pub(crate) type ExportDone = io::Result<()>;

/// A snapshot's bytes, as openraft moves them.
pub struct SnapshotData {
    /// `None` for a snapshot that carries only its meta (what a build returns).
    file: Option<tokio::fs::File>,
    /// The part file a received snapshot is being written to.
    received: Option<PathBuf>,
    /// The export still writing `file`, if any.
    export: Option<Export>,
    /// A seek asked for while the export was still running.
    seek: Option<SeekFrom>,
}

struct Export {
    /// Tells the exporting thread to write the image (dropped unsent: it never starts).
    go: Option<std::sync::mpsc::Sender<()>>,
    done: oneshot::Receiver<ExportDone>,
}

impl SnapshotData {
    /// A snapshot with no bytes here: reading it is an error.
    pub(crate) fn meta_only() -> SnapshotData {
        SnapshotData {
            file: None,
            received: None,
            export: None,
            seek: None,
        }
    }

    /// An empty part file at `path` that a snapshot from the leader is written into.
    pub(crate) fn receiving(file: std::fs::File, path: PathBuf) -> SnapshotData {
        SnapshotData {
            file: Some(tokio::fs::File::from_std(file)),
            received: Some(path),
            ..SnapshotData::meta_only()
        }
    }

    /// An image that a thread writes into `file` (a handle on the same unlinked file) once
    /// `go` is sent, reporting on `done`.
    pub(crate) fn exporting(
        file: std::fs::File,
        go: std::sync::mpsc::Sender<()>,
        done: oneshot::Receiver<ExportDone>,
    ) -> SnapshotData {
        SnapshotData {
            file: Some(tokio::fs::File::from_std(file)),
            export: Some(Export { go: Some(go), done }),
            ..SnapshotData::meta_only()
        }
    }

    /// A complete export, read again by another transfer (`file` has its own offset).
    pub(crate) fn exported(file: std::fs::File) -> SnapshotData {
        SnapshotData {
            file: Some(tokio::fs::File::from_std(file)),
            ..SnapshotData::meta_only()
        }
    }

    /// Flushes a received snapshot and returns the path of its part file.
    pub(crate) async fn finish_receiving(mut self) -> io::Result<PathBuf> {
        if let Some(file) = self.file.as_mut() {
            // tokio's File may still hold the last chunk's write.
            tokio::io::AsyncWriteExt::flush(file).await?;
        }
        self.received
            .take()
            .ok_or_else(|| io::Error::other("not a received snapshot"))
    }

    fn file(&mut self) -> io::Result<&mut tokio::fs::File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("this snapshot carries only its meta"))
    }

    /// Starts the export if it has not started, and waits for it to finish.
    fn poll_exported(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(export) = self.export.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if let Some(go) = export.go.take() {
            // A closed channel means the thread is gone: `done` reports why.
            let _ = go.send(());
        }
        let outcome = ready!(Pin::new(&mut export.done).poll(cx));
        self.export = None;
        Poll::Ready(match outcome {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the snapshot export thread ended")),
        })
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_exported(cx))?;
        Pin::new(this.file()?).poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        if this.export.is_some() {
            this.seek = Some(position);
            return Ok(());
        }
        Pin::new(this.file()?).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        ready!(this.poll_exported(cx))?;
        if let Some(position) = this.seek.take() {
            Pin::new(this.file()?).start_seek(position)?;
        }
        Pin::new(this.file()?).poll_complete(cx)
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.received.is_none() {
            return Poll::Ready(Err(io::Error::other("only a received snapshot is written")));
        }
        Pin::new(this.file()?).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().file.as_mut() {
            Some(file) => Pin::new(file).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().file.as_mut() {
            Some(file) => Pin::new(file).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    fn unlinked(dir: &std::path::Path, name: &str) -> (std::fs::File, std::fs::File) {
        let path = dir.join(name);
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let other = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (file, other)
    }

    #[tokio::test]
    async fn an_export_starts_at_the_first_seek_and_is_read_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let (theirs, mine) = unlinked(dir.path(), "a.part");
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let writer = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            let mut out = theirs;
            out.write_all(b"0123456789").unwrap();
            done_tx.send(Ok(())).unwrap();
        });
        let mut data = SnapshotData::exporting(mine, go_tx, done_rx);
        assert_eq!(data.seek(SeekFrom::End(0)).await.unwrap(), 10);
        data.seek(SeekFrom::Start(4)).await.unwrap();
        let mut rest = String::new();
        data.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "456789");
        writer.join().unwrap();
    }

    #[tokio::test]
    async fn a_failed_export_fails_the_read_and_a_dropped_one_never_starts() {
        let dir = tempfile::tempdir().unwrap();
        let (_theirs, mine) = unlinked(dir.path(), "b.part");
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        done_tx.send(Err(io::Error::other("disk full"))).unwrap();
        let mut data = SnapshotData::exporting(mine, go_tx, done_rx);
        let err = data.seek(SeekFrom::End(0)).await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(go_rx.recv().is_ok());

        let (_theirs, mine) = unlinked(dir.path(), "c.part");
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let (_done_tx, done_rx) = oneshot::channel::<ExportDone>();
        drop(SnapshotData::exporting(mine, go_tx, done_rx));
        assert!(go_rx.recv().is_err(), "an unread export must not start");
    }

    #[tokio::test]
    async fn a_meta_only_snapshot_cannot_be_read_or_written() {
        let mut data = SnapshotData::meta_only();
        assert!(data.seek(SeekFrom::End(0)).await.is_err());
        assert!(
            tokio::io::AsyncWriteExt::write_all(&mut data, b"x")
                .await
                .is_err()
        );
    }
}
