//! The node link: a peer's bytes read as frames (`frame::read`) of each message type the link
//! carries; every value decoded is encoded again and must decode to the same value.

use crate::exec::run;
use std::fmt::Debug;
use tern_raft::link::frame;
use tern_raft::link::rpc::{Answer, Hello, Request, Tagged, Welcome};

/// Fuzz target: input = what a peer sends on a link (frames of any of the four types).
pub fn link_frame(data: &[u8]) {
    frames::<Tagged<Request>>(data);
    frames::<Tagged<Answer>>(data);
    frames::<Hello>(data);
    frames::<Welcome>(data);
}

/// Reads frames of `T` until the stream ends or one fails, round-tripping each.
fn frames<T>(data: &[u8]) -> usize
where
    T: serde::de::DeserializeOwned + serde::Serialize + Debug,
{
    let mut stream = data;
    let mut count = 0;
    while let Ok(Some(value)) = run(frame::read::<_, T>(&mut stream)) {
        count += 1;
        let encoded = frame::encode(&value).expect("a decoded value encodes");
        let again: T = run(frame::read(&mut encoded.as_slice()))
            .expect("an encoded value decodes")
            .expect("an encoded value is one frame");
        assert_eq!(
            format!("{value:?}"),
            format!("{again:?}"),
            "the round trip changed it"
        );
    }
    count
}
