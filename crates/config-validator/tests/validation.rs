//! Validation collects every problem, applies defaults by mode, reads .env files with the right
//! precedence, and never shows a secret.

use std::time::Duration;

use nilecare_config_validator::{
    Error, ItemKind, Mode, Origin, ProblemKind, Schema, Secret, Source, Value, Var, fragments,
};

const SECRET: &str = "s3cr3t-VALUE-that-must-never-leak";

fn failing_schema() -> Schema {
    Schema::new()
        .prefix("T_")
        .var(Var::string("REQUIRED"))
        .var(Var::integer("INT"))
        .var(Var::integer("POOL").range(1..=64))
        .var(Var::float("RATIO").range(0.0..=1.0))
        .var(Var::bool("FLAG"))
        .var(Var::port("PORT"))
        .var(Var::url("DB").schemes(["postgres"]))
        .var(Var::url("HOMEPAGE"))
        .var(Var::duration("TIMEOUT"))
        .var(Var::one_of("FORMAT", ["json", "pretty"]))
        .var(Var::list("ORIGINS", ItemKind::Url))
        .var(Var::string("CODE").matches("^[A-Z]{3}$"))
        .var(Var::integer("SHARDS").check(|v| match v {
            Value::Integer(n) if n.count_ones() == 1 => Ok(()),
            _ => Err("must be a power of two".into()),
        }))
        .var(Var::secret("API_KEY").min_len(40))
        .var(Var::custom("PAIR", "a:b", |s: &str| {
            s.split_once(':')
                .map(|(a, b)| Value::List(vec![Value::String(a.into()), Value::String(b.into())]))
                .ok_or("missing `:`")
        }))
}

#[test]
fn every_failure_kind_is_reported_together() {
    let source = Source::from_pairs([
        ("T_INT", "abc"),
        ("T_POOL", "999"),
        ("T_RATIO", "1.5"),
        ("T_FLAG", "maybe"),
        ("T_PORT", "0"),
        ("T_DB", "mysql://db/app"),
        ("T_HOMEPAGE", "not a url"),
        ("T_TIMEOUT", "30"),
        ("T_FORMAT", "xml"),
        ("T_ORIGINS", "https://a.example, nope"),
        ("T_CODE", "abcd"),
        ("T_SHARDS", "6"),
        ("T_API_KEY", SECRET),
        ("T_PAIR", "nocolon"),
    ]);
    let report = failing_schema().load(&source).unwrap_err();
    let expected = [
        ("T_REQUIRED", ProblemKind::Missing),
        ("T_INT", ProblemKind::Invalid),
        ("T_POOL", ProblemKind::OutOfRange),
        ("T_RATIO", ProblemKind::OutOfRange),
        ("T_FLAG", ProblemKind::Invalid),
        ("T_PORT", ProblemKind::OutOfRange),
        ("T_DB", ProblemKind::NotInSet),
        ("T_HOMEPAGE", ProblemKind::Invalid),
        ("T_TIMEOUT", ProblemKind::Invalid),
        ("T_FORMAT", ProblemKind::NotInSet),
        ("T_ORIGINS", ProblemKind::Invalid),
        ("T_CODE", ProblemKind::Invalid),
        ("T_SHARDS", ProblemKind::Rejected),
        ("T_API_KEY", ProblemKind::OutOfRange),
        ("T_PAIR", ProblemKind::Invalid),
    ];
    assert_eq!(report.problems().len(), expected.len(), "{report}");
    for (variable, kind) in expected {
        let p = report
            .problem(variable)
            .unwrap_or_else(|| panic!("{variable} not reported:\n{report}"));
        assert_eq!(p.kind, kind, "{variable}: {p:?}");
        assert!(!p.expected.is_empty());
    }
    let table = report.to_string();
    assert!(
        table.starts_with("configuration is invalid: 15 problems"),
        "{table}"
    );
    for header in ["VARIABLE", "PROBLEM", "EXPECTED", "EXAMPLE"] {
        assert!(table.contains(header));
    }
    assert!(table.contains("\"abc\": not an integer"), "{table}");
    assert!(table.contains("[REDACTED] (33 chars)"), "{table}");
    assert!(!table.contains(SECRET));
    assert!(!format!("{report:?}").contains(SECRET));
}

#[test]
fn the_same_schema_accepts_good_values_with_their_types() {
    let source = Source::from_pairs([
        ("T_REQUIRED", "x"),
        ("T_INT", "-5"),
        ("T_POOL", "64"),
        ("T_RATIO", "0.25"),
        ("T_FLAG", "YES"),
        ("T_PORT", "65535"),
        ("T_DB", "postgres://u:pw@db/app"),
        ("T_HOMEPAGE", "https://nilecare.example"),
        ("T_TIMEOUT", "1m30s"),
        ("T_FORMAT", "JSON"),
        ("T_ORIGINS", "https://a.example , https://b.example"),
        ("T_CODE", "ABC"),
        ("T_SHARDS", "8"),
        ("T_API_KEY", &"k".repeat(40)),
        ("T_PAIR", "a:b"),
    ]);
    let c = failing_schema().load(&source).unwrap();
    assert_eq!(c.get::<i64>("INT").unwrap(), -5);
    assert_eq!(c.get::<u8>("POOL").unwrap(), 64);
    assert_eq!(c.get::<f64>("RATIO").unwrap(), 0.25);
    assert!(c.get::<bool>("FLAG").unwrap());
    assert_eq!(c.get::<u16>("T_PORT").unwrap(), 65535);
    assert_eq!(
        c.get::<Duration>("TIMEOUT").unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(c.get::<String>("FORMAT").unwrap(), "json");
    assert_eq!(c.get::<Vec<url::Url>>("ORIGINS").unwrap().len(), 2);
    assert_eq!(c.get::<Secret>("API_KEY").unwrap().len(), 40);
    assert!(
        !format!("{c:?}").contains("pw@"),
        "URL passwords are masked: {c:?}"
    );

    assert!(matches!(
        c.get::<u8>("INT"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(c.get::<bool>("NOPE"), Err(Error::Unknown { .. })));
}

#[test]
fn defaults_and_dev_defaults_follow_the_mode() {
    let schema = |mode| {
        Schema::new()
            .mode(mode)
            .var(
                Var::string("HOST")
                    .default("0.0.0.0")
                    .dev_default("127.0.0.1"),
            )
            .var(Var::integer("POOL").default(10))
            .var(Var::secret("SIGNING_KEY").dev_default("dev-only-key"))
            .var(Var::string("REGION").optional())
    };
    let dev = schema(Mode::Development).load(&Source::default()).unwrap();
    assert_eq!(dev.get::<String>("HOST").unwrap(), "127.0.0.1");
    assert_eq!(dev.origin("HOST"), Some(Origin::DevDefault));
    assert_eq!(dev.get::<i64>("POOL").unwrap(), 10);
    assert_eq!(dev.origin("POOL"), Some(Origin::Default));
    assert_eq!(dev.get_optional::<String>("REGION").unwrap(), None);
    assert!(matches!(
        dev.get::<String>("REGION"),
        Err(Error::Unset { .. })
    ));

    // Production: the dev-only default does not apply, so the secret is missing.
    let report = schema(Mode::Production)
        .load(&Source::default())
        .unwrap_err();
    assert_eq!(report.problems().len(), 1, "{report}");
    let p = report.problem("SIGNING_KEY").unwrap();
    assert_eq!(p.kind, ProblemKind::Missing);
    assert!(p.message.contains("development only"), "{p:?}");

    let prod = schema(Mode::Production)
        .load(&Source::from_pairs([
            ("SIGNING_KEY", "real"),
            ("HOST", "10.0.0.5"),
        ]))
        .unwrap();
    assert_eq!(prod.get::<String>("HOST").unwrap(), "10.0.0.5");
    assert_eq!(prod.origin("HOST"), Some(Origin::Explicit));

    assert_eq!(
        Mode::from_source(&Source::from_pairs([("APP_ENV", "Development")]), "APP_ENV"),
        Mode::Development
    );
    assert_eq!(
        Mode::from_source(&Source::default(), "APP_ENV"),
        Mode::Production
    );
    assert_eq!(
        Mode::from_source(&Source::from_pairs([("APP_ENV", "staging")]), "APP_ENV"),
        Mode::Production
    );
}

#[test]
fn bad_defaults_and_builder_misuse_are_schema_problems() {
    let report = Schema::new()
        .var(Var::port("PORT").default("http"))
        .var(Var::bool("FLAG").range(1..=2))
        .var(Var::string("S").matches("("))
        .var(Var::string("S"))
        .load(&Source::default())
        .unwrap_err();
    let kinds: Vec<_> = report.problems().iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![ProblemKind::InvalidSchema; 4], "{report}");
}

fn temp_file(name: &str, content: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nilecare-cv-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join(".env");
    std::fs::write(&path, content).expect("write .env");
    path
}

#[test]
fn dotenv_fills_gaps_and_the_process_environment_wins() {
    let path = temp_file(
        "precedence",
        "PATH=/from/dotenv\nNILECARE_CV_ONLY_IN_FILE=from-file\n# comment\nQUOTED=\"a b\"\n",
    );
    let real_path = std::env::var("PATH").expect("PATH is set in the test environment");
    let source = Source::env().with_dotenv(&path).unwrap();
    assert_eq!(source.get("PATH"), Some(real_path.as_str()));
    assert_eq!(source.get("NILECARE_CV_ONLY_IN_FILE"), Some("from-file"));
    assert_eq!(source.get("QUOTED"), Some("a b"));
    // the process environment itself is untouched
    assert!(std::env::var("NILECARE_CV_ONLY_IN_FILE").is_err());

    let config = Schema::new()
        .var(Var::string("NILECARE_CV_ONLY_IN_FILE"))
        .load(&source)
        .unwrap();
    assert_eq!(
        config.origin("NILECARE_CV_ONLY_IN_FILE"),
        Some(Origin::DotEnv)
    );

    // explicit values also win over the file
    let source = Source::from_pairs([("NILECARE_CV_ONLY_IN_FILE", "explicit")])
        .with_dotenv(&path)
        .unwrap();
    assert_eq!(source.get("NILECARE_CV_ONLY_IN_FILE"), Some("explicit"));

    assert!(
        Source::default()
            .with_dotenv("/definitely/missing/.env")
            .is_err()
    );
    assert!(
        Source::default()
            .with_dotenv_if_exists("/definitely/missing/.env")
            .is_ok()
    );
}

#[test]
fn a_malformed_dotenv_names_the_entry_not_its_content() {
    let path = temp_file("malformed", &format!("GOOD=1\nBAD LINE {SECRET}\n"));
    let err = Source::default().with_dotenv(&path).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("entry 2"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[test]
fn secrets_are_absent_from_every_rendering() {
    let schema = Schema::new()
        .var(Var::secret("TOKEN"))
        .var(Var::string("PASSWORD_TEXT").sensitive())
        .var(Var::secret("WITH_DEFAULT").default(SECRET))
        .var(Var::url("REDIS_URL"));
    let source = Source::from_pairs([
        ("TOKEN", SECRET),
        ("PASSWORD_TEXT", SECRET),
        ("REDIS_URL", &format!("redis://:{SECRET}@cache:6379")[..]),
    ]);
    let config = schema.load(&source).unwrap();
    let renderings = [
        format!("{config:?}"),
        format!("{source:?}"),
        format!("{schema:?}"),
        schema.help(),
        format!("{:?}", config.get::<Secret>("TOKEN").unwrap()),
        format!("{}", config.get::<Secret>("TOKEN").unwrap()),
        format!("{:?}", config.value("REDIS_URL").unwrap()),
        format!("{:?}", config.iter().collect::<Vec<_>>()),
    ];
    for r in &renderings {
        assert!(!r.contains(SECRET), "secret leaked in: {r}");
    }
    assert_eq!(config.get::<Secret>("TOKEN").unwrap().expose(), SECRET);

    // a type error during deserialization must not echo the secret either
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        token: u32,
    }
    let err = config.deserialize::<Wrong>().unwrap_err().to_string();
    assert!(!err.contains(SECRET), "{err}");
    assert!(err.contains("[REDACTED]"), "{err}");

    // invalid secrets: redacted with their length
    let report = Schema::new()
        .var(Var::secret("TOKEN").min_len(100))
        .load(&source)
        .unwrap_err();
    assert!(!report.to_string().contains(SECRET));
    assert!(!format!("{report:?}").contains(SECRET));
}

#[test]
fn fragments_load_with_their_defaults() {
    let config = Schema::new()
        .vars(fragments::redis())
        .vars(fragments::otel())
        .vars(fragments::logging())
        .vars(fragments::http_server())
        .load(&Source::from_pairs([(
            "REDIS_URL",
            "redis+cluster://10.0.0.1:7000?node=10.0.0.2:7001",
        )]))
        .unwrap();
    assert_eq!(config.get::<u16>("PORT").unwrap(), 8080);
    assert_eq!(config.get::<String>("HOST").unwrap(), "0.0.0.0");
    assert_eq!(config.get::<usize>("REDIS_POOL_SIZE").unwrap(), 4);
    assert_eq!(
        config.get::<Duration>("REDIS_COMMAND_TIMEOUT").unwrap(),
        Duration::from_secs(2)
    );
    assert_eq!(config.get::<f64>("OTEL_TRACES_SAMPLER_ARG").unwrap(), 1.0);
    assert_eq!(config.get::<String>("LOG_LEVEL").unwrap(), "info");
    assert_eq!(config.get_optional::<String>("LOG_FORMAT").unwrap(), None);

    let report = Schema::new()
        .vars(fragments::redis())
        .vars(fragments::otel())
        .load(&Source::from_pairs([
            ("REDIS_URL", "http://cache:6379"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]))
        .unwrap_err();
    assert_eq!(report.problems().len(), 2, "{report}");
}

/// `load_or_exit` prints the report and exits with 78: checked by re-running this test binary.
#[test]
fn load_or_exit_exits_with_status_78() {
    if std::env::var_os("NILECARE_CV_EXIT_CHILD").is_some() {
        Schema::new()
            .var(Var::port("NILECARE_CV_PORT"))
            .var(Var::secret("NILECARE_CV_TOKEN"))
            .load_or_exit(&Source::env());
        unreachable!("load_or_exit returned on invalid configuration");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "load_or_exit_exits_with_status_78",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NILECARE_CV_EXIT_CHILD", "1")
        .env("NILECARE_CV_PORT", "not-a-port")
        .env("NILECARE_CV_TOKEN", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("configuration is invalid: 2 problems"),
        "{stderr}"
    );
    assert!(stderr.contains("NILECARE_CV_PORT"), "{stderr}");
}
