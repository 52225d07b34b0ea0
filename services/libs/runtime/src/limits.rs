//! Limits on what one caller may ask of the gRPC host, as one tower layer in front of the
//! handlers (after authentication, so it knows who calls):
//!
//! - **request size**: a request body larger than `grpc.max_request_bytes` is refused
//!   with `RESOURCE_EXHAUSTED` as soon as that many bytes arrived, before a handler sees
//!   it (tonic's own per-message limit, 4 MiB, stays behind it);
//! - **write rate**: every call of a write RPC (its [`Class`] in
//!   [`RPC_ACCESS`](crate::auth::RPC_ACCESS)) takes a token from its
//!   caller's bucket (`grpc.write_rate_per_second`, up to `grpc.write_burst` saved up); an
//!   empty bucket answers `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` saying when
//!   the next token is due;
//! - **streams**: a caller may hold at most `grpc.max_streams_per_caller` server streams
//!   (`StreamInbox`, health `Watch`, reflection, `ImportProfiles`) open at once; one more
//!   is `RESOURCE_EXHAUSTED` until one of them ends;
//! - **write streams** ([`Class::WriteStream`]: `ImportProfiles`, a client stream of
//!   writes): opening one takes one write token and one stream slot, and the request size
//!   limit applies to each of its messages instead of the whole stream, which may carry
//!   any number of them. What one message may hold is bounded by its handler (an import
//!   chunk is at most 1,000 profiles), and the handler reads messages only as fast as it
//!   writes them (two chunks at a time), so one stream writes at the server's pace.
//!
//! The caller is the [`Principal`] the authentication layer put into the request
//! ([`Principal::key`]); a request without one (no authentication, or a public RPC such as
//! `UnsubscribeByToken`) counts under the one shared key [`ANONYMOUS_KEY`].

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower_service::Service;

use crate::auth::Principal;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The key of calls that carry no principal.
pub const ANONYMOUS_KEY: &str = "anonymous";

/// tonic's own limit on one decoded message; `grpc.max_request_bytes` may not exceed it
/// (a larger value would be dead: tonic refuses such a message first, as `OUT_OF_RANGE`).
pub const TONIC_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What this layer enforces: the `[grpc]` keys of the same names
/// ([`crate::config::GrpcConfig::limits`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsConfig {
    /// Largest request body, in bytes (all of a call's messages with their 5-byte frames).
    pub max_request_bytes: usize,
    /// Write calls per second a caller's bucket refills with; 0 turns the limit off.
    pub write_rate_per_second: f64,
    /// Write calls a caller may make at once after being idle (the bucket's size).
    pub write_burst: u32,
    /// Server streams one caller may hold open at once.
    pub max_streams_per_caller: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            write_rate_per_second: 50.0,
            write_burst: 100,
            max_streams_per_caller: 8,
        }
    }
}

impl LimitsConfig {
    /// Checks the values; the error names the key (`grpc.write_burst`) and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1024..=TONIC_MAX_MESSAGE_BYTES).contains(&self.max_request_bytes) {
            return Err((
                "grpc.max_request_bytes",
                format!("must be between 1024 and {TONIC_MAX_MESSAGE_BYTES}"),
            ));
        }
        if !self.write_rate_per_second.is_finite() || self.write_rate_per_second < 0.0 {
            return Err((
                "grpc.write_rate_per_second",
                "must be 0 (off) or a positive number".into(),
            ));
        }
        if self.write_burst == 0 {
            return Err(("grpc.write_burst", "must be at least 1".into()));
        }
        if self.max_streams_per_caller == 0 {
            return Err(("grpc.max_streams_per_caller", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// What an RPC costs its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reads: bounded by page sizes and the request size only.
    Read,
    /// Changes state (or sends something): takes a token from the caller's bucket.
    Write,
    /// A server stream held open: counts against the caller's stream cap.
    Stream,
    /// A client stream of writes: takes a write token when it opens, counts against the
    /// stream cap while open, and its request size limit applies to each message.
    WriteStream,
}

impl Class {
    /// Whether it changes state (audited, and costs a write token).
    pub fn is_write(self) -> bool {
        matches!(self, Class::Write | Class::WriteStream)
    }

    /// Whether it is a streaming RPC (holds one of the caller's stream slots).
    pub fn is_stream(self) -> bool {
        matches!(self, Class::Stream | Class::WriteStream)
    }
}

/// The streaming RPCs every server answers besides Zhida's own (open to anyone when
/// authentication allows): they count against the stream cap too.
pub const INFRASTRUCTURE_STREAMS: &[&str] = &[
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The class of `path`: Zhida's RPCs as [`RPC_ACCESS`](crate::auth::RPC_ACCESS) classes
/// them, the [`INFRASTRUCTURE_STREAMS`]; anything else (health `Check`, unknown paths,
/// which the router answers `UNIMPLEMENTED`) is a read.
pub fn class(path: &str) -> Class {
    if INFRASTRUCTURE_STREAMS.contains(&path) {
        return Class::Stream;
    }
    crate::auth::RPC_ACCESS
        .iter()
        .find(|(rpc, _, _)| *rpc == path)
        .map_or(Class::Read, |(_, _, class)| *class)
}

/// A token bucket: `burst` tokens, refilled at `rate` per second. Time is passed in, so
/// it is tested without sleeping.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens at `now`.
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes one token at `now`, or says how long until one is there.
    pub fn take(&mut self, now: Instant, rate: f64, burst: u32) -> Result<(), Duration> {
        self.refill(now, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }

    /// Whether it is full again at `now` (a caller idle long enough: it may be forgotten).
    pub fn is_full(&self, now: Instant, rate: f64, burst: u32) -> bool {
        let mut bucket = self.clone();
        bucket.refill(now, rate, burst);
        bucket.tokens >= f64::from(burst)
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: u32) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        self.updated = self.updated.max(now);
    }
}

/// Buckets kept before full ones (idle callers) are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// The state shared by every connection: buckets and open streams per caller.
#[derive(Debug)]
struct State {
    config: LimitsConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
    streams: Mutex<HashMap<String, u32>>,
}

impl State {
    /// Takes a write token for `key` at `now`, or the status to answer.
    fn write(&self, key: &str, now: Instant) -> Result<(), Status> {
        let LimitsConfig {
            write_rate_per_second: rate,
            write_burst: burst,
            ..
        } = self.config;
        if rate == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| !bucket.is_full(now, rate, burst));
        }
        let bucket = buckets
            .entry(key.to_string())
            .or_insert_with(|| Bucket::full(burst, now));
        bucket.take(now, rate, burst).map_err(|wait| {
            // Whole milliseconds, rounded up, so a client that waits as told finds a token.
            let wait = Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64);
            Status::with_error_details(
                Code::ResourceExhausted,
                format!(
                    "{key} made more than {burst} write calls at once or {rate} a second; retry in {} ms",
                    wait.as_millis()
                ),
                ErrorDetails::with_retry_info(Some(wait)),
            )
        })
    }

    /// Opens a stream for `key`: a guard that closes it when dropped, or the status to
    /// answer when the caller holds its cap already.
    fn open_stream(self: &Arc<Self>, key: &str) -> Result<StreamGuard, Status> {
        let max = self.config.max_streams_per_caller;
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let open = streams.entry(key.to_string()).or_insert(0);
        if *open >= max {
            return Err(Status::resource_exhausted(format!(
                "{key} already holds {max} open streams, the most a caller may; close one first"
            )));
        }
        *open += 1;
        Ok(StreamGuard {
            state: self.clone(),
            key: key.to_string(),
        })
    }

    #[cfg(test)]
    fn open_streams(&self, key: &str) -> u32 {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(key).copied().unwrap_or(0)
    }
}

/// One open stream of a caller; dropping it (the response body ended or the client went
/// away) gives the slot back.
#[derive(Debug)]
struct StreamGuard {
    state: Arc<State>,
    key: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.state.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = streams.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.key);
            }
        }
    }
}

/// Wraps the router; see the module docs. Clones share the buckets and stream counts.
#[derive(Clone, Debug)]
pub struct LimitsLayer {
    state: Arc<State>,
}

impl LimitsLayer {
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            state: Arc::new(State {
                config,
                buckets: Mutex::default(),
                streams: Mutex::default(),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limits {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limits<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> Service<http::Request<Body>> for Limits<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let key = request
            .extensions()
            .get::<Principal>()
            .map_or_else(|| ANONYMOUS_KEY.to_string(), Principal::key);
        let class = class(request.uri().path());
        let admitted = match class {
            Class::Read => Ok(None),
            Class::Write => self.state.write(&key, Instant::now()).map(|()| None),
            Class::Stream => self.state.open_stream(&key).map(Some),
            Class::WriteStream => self
                .state
                .write(&key, Instant::now())
                .and_then(|()| self.state.open_stream(&key).map(Some)),
        };
        let max = self.state.config.max_request_bytes;
        let per_message = class == Class::WriteStream;
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let guard = match admitted {
                Ok(guard) => guard,
                Err(status) => {
                    tracing::info!(caller = key, reason = status.message(), "call refused");
                    return Ok(status.into_http());
                }
            };
            let request = request.map(|body| {
                Body::new(if per_message {
                    Capped::per_message(body, max)
                } else {
                    Capped::new(body, max)
                })
            });
            let response = inner.call(request).await?;
            Ok(match guard {
                Some(guard) => response.map(|body| {
                    Body::new(Guarded {
                        body,
                        _guard: guard,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A request body that fails with `RESOURCE_EXHAUSTED` once more than `max` bytes came
/// (in all, or in one gRPC message when `messages` follows them).
struct Capped {
    body: Body,
    max: usize,
    seen: usize,
    messages: Option<Messages>,
}

impl Capped {
    fn new(body: Body, max: usize) -> Self {
        Self {
            body,
            max,
            seen: 0,
            messages: None,
        }
    }

    /// Caps each gRPC message at `max` bytes (its 5-byte prefix included), not the body.
    fn per_message(body: Body, max: usize) -> Self {
        Self {
            messages: Some(Messages::default()),
            ..Self::new(body, max)
        }
    }

    /// Counts `data`; the status to answer when it went over the cap.
    fn count(&mut self, data: &[u8]) -> Option<Status> {
        let Some(messages) = &mut self.messages else {
            self.seen = self.seen.saturating_add(data.len());
            return (self.seen > self.max).then(|| {
                Status::resource_exhausted(format!(
                    "the request is larger than {} bytes, the most this server accepts",
                    self.max
                ))
            });
        };
        let length = messages.too_long(data, self.max)?;
        self.seen = self.max + 1;
        Some(Status::resource_exhausted(format!(
            "a message of {length} bytes: one message of this stream may be at most {} bytes",
            self.max
        )))
    }
}

/// Where a stream of gRPC messages (each a 5-byte prefix: flag and big-endian length,
/// then the message) stands across body frames.
#[derive(Debug, Default)]
struct Messages {
    prefix: [u8; 5],
    /// Bytes of the current prefix read so far.
    prefix_read: usize,
    /// Bytes of the current message still to come.
    left: usize,
}

impl Messages {
    /// Follows `data`; the length (prefix included) of the first message it starts that is
    /// longer than `max`, if any.
    fn too_long(&mut self, mut data: &[u8], max: usize) -> Option<usize> {
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_read).min(data.len());
            self.prefix[self.prefix_read..self.prefix_read + n].copy_from_slice(&data[..n]);
            self.prefix_read += n;
            data = &data[n..];
            if self.prefix_read == 5 {
                self.prefix_read = 0;
                let [_, a, b, c, d] = self.prefix;
                self.left = u32::from_be_bytes([a, b, c, d]) as usize;
                if self.left.saturating_add(5) > max {
                    return Some(self.left.saturating_add(5));
                }
            }
        }
        None
    }
}

impl HttpBody for Capped {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.seen > this.max {
            return Poll::Ready(None);
        }
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Some(status) = this.count(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.seen > self.max || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that holds its stream's slot until it ends or is dropped.
struct Guarded {
    body: Body,
    _guard: StreamGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn a_bucket_lets_a_burst_through_then_one_call_per_refill() {
        let start = Instant::now();
        let mut bucket = Bucket::full(3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start, 2.0, 3), Ok(()));
        }
        // Empty: the next token is due in 1/rate.
        assert_eq!(bucket.take(start, 2.0, 3), Err(Duration::from_millis(500)));
        let later = start + Duration::from_millis(250);
        assert_eq!(bucket.take(later, 2.0, 3), Err(Duration::from_millis(250)));
        let refilled = start + Duration::from_millis(500);
        assert_eq!(bucket.take(refilled, 2.0, 3), Ok(()));
        assert!(bucket.take(refilled, 2.0, 3).is_err());
    }

    #[test]
    fn a_bucket_saves_up_no_more_than_its_burst_and_time_never_runs_back() {
        let start = Instant::now();
        let mut bucket = Bucket::full(2, start);
        let hour = start + Duration::from_secs(3600);
        assert!(bucket.is_full(hour, 1.0, 2));
        assert_eq!(bucket.take(hour, 1.0, 2), Ok(()));
        assert_eq!(bucket.take(hour, 1.0, 2), Ok(()));
        assert!(
            bucket.take(hour, 1.0, 2).is_err(),
            "burst is 2, not an hour's worth"
        );
        assert!(!bucket.is_full(hour, 1.0, 2));
        // An earlier instant (another thread's `now`) adds nothing and takes nothing back.
        assert!(bucket.take(start, 1.0, 2).is_err());
        assert_eq!(bucket.take(hour + Duration::from_secs(1), 1.0, 2), Ok(()));
    }

    fn state(config: LimitsConfig) -> Arc<State> {
        LimitsLayer::new(config).state
    }

    #[test]
    fn each_caller_has_its_own_bucket_and_a_refusal_says_when_to_retry() {
        let state = state(LimitsConfig {
            write_rate_per_second: 4.0,
            write_burst: 2,
            ..LimitsConfig::default()
        });
        let now = Instant::now();
        assert!(state.write("department:区科委", now).is_ok());
        assert!(state.write("department:区科委", now).is_ok());
        let status = state
            .write("department:区科委", now)
            .expect_err("burst spent");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().starts_with("department:区科委 "),
            "{}",
            status.message()
        );
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(250)));
        assert!(
            state.write("subject:c-1", now).is_ok(),
            "another caller is not affected"
        );
        assert!(
            state
                .write("department:区科委", now + Duration::from_millis(250))
                .is_ok()
        );
    }

    #[test]
    fn a_zero_rate_turns_the_write_limit_off() {
        let state = state(LimitsConfig {
            write_rate_per_second: 0.0,
            write_burst: 1,
            ..LimitsConfig::default()
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert!(state.write(ANONYMOUS_KEY, now).is_ok());
        }
    }

    #[test]
    fn idle_callers_are_forgotten_once_there_are_many() {
        let state = state(LimitsConfig {
            write_rate_per_second: 1.0,
            write_burst: 1,
            ..LimitsConfig::default()
        });
        let now = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            state
                .write(&format!("subject:{i}"), now)
                .expect("first call");
        }
        let later = now + Duration::from_secs(2);
        state.write("subject:new", later).expect("first call");
        let buckets = state.buckets.lock().expect("lock");
        assert_eq!(buckets.len(), 1, "only the caller just seen is kept");
    }

    #[test]
    fn a_caller_holds_at_most_its_cap_of_streams_and_a_closed_one_frees_a_slot() {
        let state = state(LimitsConfig {
            max_streams_per_caller: 2,
            ..LimitsConfig::default()
        });
        let first = state.open_stream("subject:c-1").expect("first");
        let _second = state.open_stream("subject:c-1").expect("second");
        let status = state.open_stream("subject:c-1").expect_err("third");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(state.open_stream("subject:c-2").is_ok(), "another caller");
        drop(first);
        assert_eq!(state.open_streams("subject:c-1"), 1);
        let _third = state.open_stream("subject:c-1").expect("a slot was freed");
        assert_eq!(state.open_streams("subject:c-1"), 2);
    }

    #[test]
    fn an_import_stream_caps_each_message_not_the_stream() {
        let frame = |length: u32| {
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.extend(std::iter::repeat_n(7u8, length as usize));
            bytes
        };
        let mut messages = Messages::default();
        // Many messages under the cap, split across body frames anywhere (here: in the
        // middle of prefixes and of messages), pass however much they add up to.
        let stream: Vec<u8> = (0..50).flat_map(|_| frame(95)).collect();
        for piece in stream.chunks(7) {
            assert_eq!(messages.too_long(piece, 100), None);
        }
        let mut over = frame(96);
        over.truncate(3);
        assert_eq!(
            messages.too_long(&over[..3], 100),
            None,
            "the prefix is not complete"
        );
        assert_eq!(messages.too_long(&[0, 96], 100), Some(101));
    }

    #[test]
    fn every_rpc_of_every_service_has_a_class_and_the_streams_are_exactly_the_streaming_rpcs() {
        let pool = prost_reflect::DescriptorPool::decode(zhida_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut rpcs = Vec::new();
        let mut streaming = Vec::new();
        for service in pool.services() {
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                if method.is_server_streaming() || method.is_client_streaming() {
                    streaming.push(path.clone());
                }
                rpcs.push(path);
            }
        }
        rpcs.sort();
        let mut table: Vec<String> = crate::auth::RPC_ACCESS
            .iter()
            .map(|(path, _, _)| path.to_string())
            .collect();
        table.sort();
        assert_eq!(table, rpcs, "RPC_ACCESS must name every Zhida RPC once");
        let mut streams: Vec<&str> = crate::auth::RPC_ACCESS
            .iter()
            .filter(|(_, _, class)| class.is_stream())
            .map(|(path, _, _)| *path)
            .collect();
        streams.sort_unstable();
        streaming.sort();
        assert_eq!(
            streams, streaming,
            "a streaming RPC must be classed Stream or WriteStream"
        );
        assert_eq!(
            class("/zhida.profile.v1.ProfileService/ImportProfiles"),
            Class::WriteStream
        );
        assert_eq!(
            class("/grpc.health.v1.Health/Watch"),
            Class::Stream,
            "infrastructure streams count too"
        );
        assert_eq!(
            class("/zhida.notification.v1.InboxService/MarkRead"),
            Class::Write
        );
        assert_eq!(class("/grpc.health.v1.Health/Check"), Class::Read);
    }

    #[test]
    fn limits_are_validated_naming_the_key() {
        assert_eq!(LimitsConfig::default().validate(), Ok(()));
        let bad = |config: LimitsConfig| config.validate().expect_err("invalid").0;
        let default = LimitsConfig::default();
        for (config, key) in [
            (
                LimitsConfig {
                    max_request_bytes: TONIC_MAX_MESSAGE_BYTES + 1,
                    ..default
                },
                "grpc.max_request_bytes",
            ),
            (
                LimitsConfig {
                    write_rate_per_second: f64::NAN,
                    ..default
                },
                "grpc.write_rate_per_second",
            ),
            (
                LimitsConfig {
                    write_burst: 0,
                    ..default
                },
                "grpc.write_burst",
            ),
            (
                LimitsConfig {
                    max_streams_per_caller: 0,
                    ..default
                },
                "grpc.max_streams_per_caller",
            ),
        ] {
            assert_eq!(bad(config), key);
        }
    }
}
