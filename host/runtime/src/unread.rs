//! Request bodies nobody reads: the rest of a body an app left unread, or the body of a
//! request refused before it reached an app. Answering with such a body unread makes the
//! server close the connection, and a client still writing its body may see a reset instead
//! of the answer; so these bodies are read to their end first, bounded in size and time.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Most bytes read from a body nobody wants; a larger one closes the connection.
pub const MAX_BYTES: usize = 64 << 10;

/// How long a body nobody wants is read: long enough for a small body in flight, short
/// enough that a client (maybe a stranger with no valid token) holds nothing for long.
pub const MAX_TIME: Duration = Duration::from_secs(1);

/// A request body handed to an app; what is left of it when the app lets go is drained on
/// a task of its own.
pub(crate) struct LeftUnread<B: Body<Data = Bytes> + Send + 'static>(Option<Pin<Box<B>>>);

impl<B: Body<Data = Bytes> + Send + 'static> LeftUnread<B> {
    pub(crate) fn new(body: B) -> Self {
        LeftUnread(Some(Box::pin(body)))
    }
}

impl<B: Body<Data = Bytes> + Send + 'static> Body for LeftUnread<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.0.as_mut() {
            Some(body) => body.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |body| body.size_hint())
    }
}

impl<B: Body<Data = Bytes> + Send + 'static> Drop for LeftUnread<B> {
    fn drop(&mut self) {
        if let Some(body) = self.0.take()
            && !body.is_end_stream()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads and drops a body nobody wants: to its end, an error, [`MAX_BYTES`] or
/// [`MAX_TIME`], whichever comes first.
pub async fn drain<B: Body<Data = Bytes>>(body: B) {
    let _ = tokio::time::timeout(MAX_TIME, read_to_end(body)).await;
}

async fn read_to_end<B: Body<Data = Bytes>>(body: B) {
    let mut body = std::pin::pin!(body);
    let mut seen = 0usize;
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(data.len());
            if seen > MAX_BYTES {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    /// A body whose frames come from a channel; reports when it is read to its end.
    fn channel_body() -> (
        tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
        impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        (tx, StreamBody::new(stream))
    }

    #[tokio::test]
    async fn the_rest_is_read_after_the_app_lets_go() {
        let (tx, body) = channel_body();
        let mut body = LeftUnread::new(body);
        tx.send(Ok(Frame::data(Bytes::from_static(b"head"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().as_ref(), b"head");
        drop(body);
        // More than the channel holds: each send succeeds only if something still reads.
        for _ in 0..16 {
            tx.send(Ok(Frame::data(Bytes::from_static(b"rest"))))
                .await
                .expect("the rest of the body is still read");
        }
    }

    #[tokio::test]
    async fn a_large_rest_is_given_up() {
        let (tx, body) = channel_body();
        drop(LeftUnread::new(body));
        let chunk = Bytes::from(vec![0u8; MAX_BYTES / 2]);
        let mut sent = 0;
        // The drain stops after MAX_BYTES: the channel closes under the sender.
        while tx.send(Ok(Frame::data(chunk.clone()))).await.is_ok() {
            sent += chunk.len();
            assert!(sent <= 8 * MAX_BYTES, "the drain never gave up");
        }
        assert!(sent > MAX_BYTES);
    }
}
