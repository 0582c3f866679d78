//! How messages are stored on a real redis-server: large payloads gzip-compressed above the
//! broker's threshold and delivered whole; entries that cannot be decoded (corrupt gzip, an
//! unknown encoding) go to the dead-letter stream, never to a handler, and the rest keep flowing.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use nilecare_messaging::{Broker, Consumer, Message, Outcome, Publisher};
use nilecare_test_support::{RedisServer, Reply};
use support::{Seen, record_and_ack, redis_broker};

/// The fields of the newest entry of `stream`, as stored.
fn newest_fields(server: &RedisServer, stream: &str) -> Vec<(String, Vec<u8>)> {
    let Reply::Array(Some(entries)) =
        server.command(&["XREVRANGE", stream, "+", "-", "COUNT", "1"])
    else {
        panic!("no entries in {stream}");
    };
    let Reply::Array(Some(entry)) = &entries[0] else {
        panic!("not an entry");
    };
    let Reply::Array(Some(flat)) = &entry[1] else {
        panic!("no fields");
    };
    flat.chunks(2)
        .map(|pair| match (&pair[0], &pair[1]) {
            (Reply::Bulk(Some(k)), Reply::Bulk(Some(v))) => {
                (String::from_utf8(k.clone()).unwrap(), v.clone())
            }
            other => panic!("unexpected field {other:?}"),
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_are_stored_compressed_and_delivered_whole() {
    let server = RedisServer::start();
    let broker = redis_broker(&server).await.compress_above(1024);
    let notes = "blood pressure normal, follow-up in two weeks; ".repeat(400);
    let large = Message::new("visit.recorded", &serde_json::json!({"notes": notes})).unwrap();
    let small = Message::new("visit.recorded", &serde_json::json!({"notes": "ok"})).unwrap();
    let publisher = Publisher::new(broker.clone());

    publisher.publish("visits", &large).await.unwrap();
    let stored = newest_fields(&server, "nilecare:msg:{visits}");
    assert_eq!(field(&stored, "z"), Some(&b"gzip"[..]));
    let stored_len = field(&stored, "p").unwrap().len();
    assert!(
        stored_len * 10 < large.payload_bytes().len(),
        "{stored_len} bytes stored for {}",
        large.payload_bytes().len()
    );
    publisher.publish("visits", &small).await.unwrap();
    let stored = newest_fields(&server, "nilecare:msg:{visits}");
    assert_eq!(field(&stored, "z"), None, "small payloads are stored as is");
    assert_eq!(field(&stored, "p"), Some(small.payload_bytes().as_ref()));

    // A consumer on a handle without the threshold reads both whole.
    let seen = Seen::default();
    let (s, got) = (
        seen.clone(),
        std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let g = got.clone();
    let consumer = Consumer::builder(redis_broker(&server).await, "visits", "records")
        .poll(Duration::from_millis(50))
        .run(move |m: Message| {
            s.record(&m);
            g.lock().unwrap().push(m.payload_bytes().clone());
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    assert!(seen.until(|s| s.len() >= 2).await);
    consumer.shutdown().await;
    let got = got.lock().unwrap();
    assert_eq!(got[0], large.payload_bytes());
    assert_eq!(got[1], small.payload_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_entries_go_to_the_dead_letter_stream() {
    let server = RedisServer::start();
    let broker = redis_broker(&server).await;
    let raw = |id: &str, z: &str, p: &[u8]| {
        let mut args: Vec<Vec<u8>> = ["XADD", "nilecare:msg:{labs}", "*", "v", "1", "id", id]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        for a in ["type", "lab.result", "at", "1", "h", "{}", "z", z, "p"] {
            args.push(a.as_bytes().to_vec());
        }
        args.push(p.to_vec());
        server.command(&args);
    };
    raw(
        "corrupt",
        "gzip",
        b"\x1f\x8b\x08\x00 this is not deflate data",
    );
    raw("brotli", "br", b"whatever");
    Publisher::new(broker.clone())
        .publish(
            "labs",
            &Message::new("lab.result", &1)
                .unwrap()
                .with_id("good")
                .unwrap(),
        )
        .await
        .unwrap();

    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "labs", "g").poll(Duration::from_millis(50)),
    )
    .await;
    assert!(seen.until(|s| !s.is_empty()).await);
    assert!(
        nilecare_test_support::eventually(Duration::from_secs(5), || async {
            broker.dead_letters("labs", "g", 10).await.unwrap().len() == 2
        })
        .await
    );
    consumer.shutdown().await;
    let ids: Vec<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["good"], "no handler saw an undecodable entry");
    let dead = broker.dead_letters("labs", "g", 10).await.unwrap();
    let errors: Vec<&str> = dead.iter().map(|d| d.error.as_str()).collect();
    assert!(errors.iter().any(|e| e.contains("corrupt")), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown payload encoding")),
        "{errors:?}"
    );
    assert!(dead.iter().all(|d| d.message.is_none()));
}
