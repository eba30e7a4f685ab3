//! Request messages of one ADS call, read from its HTTP body: gRPC's length-prefixed
//! framing, decoded with prost. Unlike tonic's reader, the buffer is let go whenever no
//! message is pending, so a stream does not keep the capacity of the largest request
//! it ever sent (a subscription to thousands of names) for as long as it lives.

use std::marker::PhantomData;
use std::pin::Pin;

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use tonic::Status;

/// The gRPC message header: a compression flag and a big-endian length.
const HEADER: usize = 5;

pub struct Inbound<M> {
    body: Pin<Box<dyn http_body::Body<Data = bytes::Bytes, Error = Status> + Send>>,
    buf: BytesMut,
    max: usize,
    ended: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Inbound<M> {
    /// Reads from `body`; a message over `max` bytes fails the call.
    pub fn new<B>(body: B, max: usize) -> Inbound<M>
    where
        B: http_body::Body + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let body = body
            .map_frame(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining())))
            .map_err(|e| Status::from_error(e.into()));
        Inbound {
            body: Box::pin(body),
            buf: BytesMut::new(),
            max,
            ended: false,
            _message: PhantomData,
        }
    }

    /// The next message, `None` once the client ended its side, or the error.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        loop {
            if let Some(message) = self.take()? {
                return Ok(Some(message));
            }
            if self.ended {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(Status::internal("the request stream ended mid-message")),
                };
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => return Err(status),
                None => self.ended = true,
            }
        }
    }

    /// Decodes the message at the front of the buffer, if it is complete.
    fn take(&mut self) -> Result<Option<M>, Status> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(Status::unimplemented(
                "coalmine does not accept compressed requests",
            ));
        }
        let len = u32::from_be_bytes(self.buf[1..HEADER].try_into().expect("4 bytes")) as usize;
        if len > self.max {
            return Err(Status::resource_exhausted(format!(
                "a request of {len} bytes is over the limit of {} bytes",
                self.max
            )));
        }
        if self.buf.len() < HEADER + len {
            self.buf.reserve(HEADER + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(HEADER);
        let bytes = self.buf.split_to(len).freeze();
        if self.buf.is_empty() {
            // Nothing pending: let the allocation go with the message.
            self.buf = BytesMut::new();
        }
        M::decode(bytes)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("cannot decode a request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes};
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use http_body_util::StreamBody;
    use prost::Message;

    use super::*;

    fn framed(m: &DiscoveryRequest) -> Vec<u8> {
        let body = m.encode_to_vec();
        let mut out = vec![0];
        out.put_u32(body.len() as u32);
        out.extend(body);
        out
    }

    fn body_of(chunks: Vec<Vec<u8>>) -> impl http_body::Body<Data = Bytes, Error = std::io::Error> {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(c))));
        StreamBody::new(futures::stream::iter(frames))
    }

    fn req(names: &[&str]) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: "t".into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn messages_split_and_joined_across_frames_come_out_whole() {
        let (a, b) = (framed(&req(&["x"])), framed(&req(&["y", "z"])));
        let mut joined = a.clone();
        joined.extend(&b[..3]);
        let chunks = vec![
            a[..2].to_vec(),
            a[2..].to_vec(),
            joined[a.len()..].to_vec(),
            b[3..].to_vec(),
        ];
        let mut inbound = Inbound::<DiscoveryRequest>::new(body_of(chunks), 1024);
        assert_eq!(inbound.message().await.unwrap(), Some(req(&["x"])));
        assert_eq!(inbound.message().await.unwrap(), Some(req(&["y", "z"])));
        assert_eq!(inbound.buf.capacity(), 0, "nothing pending, nothing kept");
        assert_eq!(inbound.message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_compressed_and_truncated_requests_fail() {
        let big = framed(&req(&["a-rather-long-name"]));
        let mut inbound = Inbound::<DiscoveryRequest>::new(body_of(vec![big.clone()]), 4);
        let e = inbound.message().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        let mut compressed = big.clone();
        compressed[0] = 1;
        let mut inbound = Inbound::<DiscoveryRequest>::new(body_of(vec![compressed]), 1024);
        assert_eq!(
            inbound.message().await.unwrap_err().code(),
            tonic::Code::Unimplemented
        );
        let mut inbound = Inbound::<DiscoveryRequest>::new(body_of(vec![big[..7].to_vec()]), 1024);
        assert_eq!(
            inbound.message().await.unwrap_err().code(),
            tonic::Code::Internal
        );
    }
}
