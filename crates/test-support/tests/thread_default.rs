//! `logs::set_thread_default` keeps a thread's events even when another thread, with no
//! subscriber of its own, reaches the same callsite first.

use nilecare_test_support::logs::{LogBuffer, set_thread_default};

fn probe(n: u32) {
    tracing::info!(n, "probe event");
}

#[test]
fn a_callsite_first_reached_on_a_silent_thread_still_logs_on_this_one() {
    let logs = LogBuffer::new();
    let _guard = set_thread_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    // Another thread reaches the callsite first: it has no subscriber, so it must stay silent
    // without deciding for this thread.
    std::thread::spawn(|| probe(1)).join().unwrap();
    probe(2);

    let text = logs.text();
    assert_eq!(text.matches("probe event").count(), 1, "{text}");
    assert!(text.contains("n=2"), "{text}");
}
