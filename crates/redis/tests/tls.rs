//! `rediss://` against a real TLS redis-server with a certificate from a CA made in the test:
//! connecting with a custom CA and an ACL user, and the errors of a wrong password, an
//! untrusted certificate and a CA given for a plain URL (each naming the redacted URL, never
//! the password).
#![cfg(feature = "tls")]

use std::time::Duration;

use fred::prelude::*;
use nilecare_redis::{Error, RedisConfig, connect, ping};
use nilecare_test_support::{RedisServer, TestCa};

const PASSWORD: &str = "tls-Pa55word-never-shown";

fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url)
        .expect("test URL parses")
        .with_pool_size(1)
        .with_connect_timeout(Duration::from_secs(2))
        .with_command_timeout(Duration::from_millis(500))
}

fn tls_server(ca: &TestCa) -> RedisServer {
    RedisServer::builder()
        .tls(ca)
        .acl_user("app", PASSWORD)
        .start()
}

#[tokio::test]
async fn connects_over_tls_with_a_custom_ca_and_an_acl_user() {
    let ca = TestCa::new("nilecare test CA");
    let server = tls_server(&ca);
    let url = server.url();
    assert!(url.starts_with("rediss://app:"), "{url}");
    let pool = connect(&config(&url).with_tls_ca_pem(ca.pem().as_bytes()).unwrap())
        .await
        .unwrap();
    ping(&pool).await.unwrap();
    let _: () = pool.set("k", "over tls", None, None, false).await.unwrap();
    assert_eq!(
        server.command(&["GET", "k"]).as_text().as_deref(),
        Some("over tls"),
        "the value reached this server"
    );
    // It really is the ACL user talking.
    let who: String = pool
        .custom(fred::cmd!("ACL"), vec!["WHOAMI"])
        .await
        .unwrap();
    assert_eq!(who, "app");
}

#[tokio::test]
async fn a_wrong_password_is_an_error_naming_the_redacted_url() {
    let ca = TestCa::new("nilecare test CA");
    let server = tls_server(&ca);
    let wrong = "Wr0ng-Pa55word-never-shown";
    let url = server.url().replace(PASSWORD, wrong);
    let error = connect(&config(&url).with_tls_ca_pem(ca.pem().as_bytes()).unwrap())
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(text.contains("rediss://app:***@127.0.0.1"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("wrongpass") || text.contains("password"),
        "the cause is named: {text}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_an_error_naming_the_redacted_url() {
    let ca = TestCa::new("nilecare test CA");
    let server = tls_server(&ca);
    let stranger = TestCa::new("some other CA");
    for config in [
        config(&server.url())
            .with_tls_ca_pem(stranger.pem().as_bytes())
            .unwrap(),
        // Without a CA the system roots decide: they do not know the test CA either.
        config(&server.url()),
    ] {
        let error = connect(&config).await.unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(matches!(error, Error::Connect { .. }), "{text}");
        assert!(text.contains("rediss://app:***@127.0.0.1"), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("certificate"),
            "the cause is named: {text}"
        );
    }
}

#[test]
fn a_ca_for_a_plain_url_or_garbage_pem_is_a_config_error() {
    let names_tls_ca = |e: &Error| {
        matches!(
            e,
            Error::InvalidConfig {
                field: "tls_ca",
                ..
            }
        )
    };
    let ca = TestCa::new("nilecare test CA");
    let error = config("redis://:secret@127.0.0.1:6390")
        .with_tls_ca_pem(ca.pem().as_bytes())
        .unwrap_err();
    assert!(names_tls_ca(&error), "{error}");
    assert!(!error.to_string().contains("secret"), "{error}");
    for garbage in [
        &b""[..],
        b"not pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let error = config("rediss://127.0.0.1:6390")
            .with_tls_ca_pem(garbage)
            .unwrap_err();
        assert!(names_tls_ca(&error), "{error}");
    }
    let error = config("rediss://127.0.0.1:6390")
        .with_tls_ca_file("/nonexistent/ca.pem")
        .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}
