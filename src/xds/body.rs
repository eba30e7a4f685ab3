//! The response side of an ADS stream as a plain HTTP body: each message is written
//! once into a buffer of its exact size, handed to HTTP/2, and freed once sent.
//!
//! tonic's own encoder keeps one growing buffer per stream, which stays as large as
//! the largest message that stream ever sent (the first full CDS/EDS answer); with
//! thousands of proxies that pinned buffer, not the config, would set the memory.
//! Here a stream holds no buffer between messages.

use bytes::{BufMut, Bytes};
use futures::Stream;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use tokio::sync::mpsc;
use tonic::Status;

use super::codec::WireResponse;

/// gRPC's message prefix: a compression flag and the length.
const PREFIX: usize = 5;

/// Frames for the responses arriving on `rx`: one data frame per message, then the
/// trailers (`grpc-status` 0 when the channel closes, or the status sent).
pub fn frames<R: WireResponse>(
    rx: mpsc::Receiver<Result<R, Status>>,
) -> impl Stream<Item = Result<Frame<Bytes>, Status>> + Send + 'static {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Ok(resp)) => Some((Ok(Frame::data(message(&resp))), Some(rx))),
            Some(Err(status)) => Some((Ok(Frame::trailers(trailers(&status))), None)),
            None => Some((Ok(Frame::trailers(trailers(&Status::ok("")))), None)),
        }
    })
}

/// One length-prefixed gRPC message, in a buffer of its exact size.
pub fn message<R: WireResponse>(resp: &R) -> Bytes {
    let len = resp.encoded_len();
    let mut buf = Vec::with_capacity(PREFIX + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    resp.encode_raw(&mut buf);
    debug_assert_eq!(buf.len(), PREFIX + len, "encoded_len must be exact");
    Bytes::from(buf)
}

fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from(status.code() as i32));
    if !status.message().is_empty() {
        if let Ok(v) = HeaderValue::from_str(&status.message().replace(['\r', '\n'], " ")) {
            map.insert("grpc-message", v);
        }
    }
    map
}
