//! A request body that streams a file from disk with its exact length, for release uploads.
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Uploads are read from disk in chunks of this size, so memory does not grow with the file.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A request body that streams a file from disk with an exact length, so hyper sends
/// `Content-Length` (GitHub's upload endpoint needs it) without buffering the file.
pub(super) struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Box<[u8]>,
    path: PathBuf,
}

impl FileBody {
    pub(super) fn new(file: tokio::fs::File, size: u64, path: PathBuf) -> Self {
        FileBody {
            file,
            remaining: size,
            buf: vec![0u8; UPLOAD_CHUNK].into_boxed_slice(),
            path,
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        use tokio::io::AsyncRead;
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let filled = rb.filled();
                if filled.is_empty() {
                    // The length was promised in Content-Length; a shorter file is an error,
                    // not a silently truncated asset.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{} shrank while it was being uploaded", this.path.display()),
                    ))));
                }
                this.remaining -= filled.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
