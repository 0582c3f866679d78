//! nilecare-config-validator: declare the environment, validate it all at once.
//!
//! ```text
//! cargo run --example config_validator                       # production rules: report, exit 78
//! APP_ENV=development cargo run --example config_validator   # dev defaults apply: prints the config
//! NILECARE_DATABASE_URL=postgres://db/nilecare \
//!   NILECARE_JWT_SECRET=0123456789abcdef0123456789abcdef NILECARE_PORT=9000 \
//!   cargo run --example config_validator
//! ```

use std::time::Duration;

use nilecare::config_validator::{Mode, Schema, Secret, Source, Var, fragments};

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // fields are read through Debug
struct Settings {
    database_url: String,
    jwt_secret: Secret,
    request_timeout: Duration,
    host: String,
    port: u16,
    redis_url: Option<String>,
}

fn main() {
    let source = match Source::env().with_dotenv_if_exists(".env") {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(nilecare::config_validator::EX_CONFIG);
        }
    };
    let mode = Mode::from_source(&source, "APP_ENV");
    let schema = Schema::new()
        .prefix("NILECARE_")
        .mode(mode)
        .var(
            Var::url("DATABASE_URL")
                .schemes(["postgres", "postgresql"])
                .dev_default("postgres://localhost/nilecare_dev")
                .example("postgres://db/nilecare"),
        )
        .var(
            Var::secret("JWT_SECRET")
                .min_len(32)
                .dev_default("dev-secret-dev-secret-dev-secret"),
        )
        .var(Var::duration("REQUEST_TIMEOUT").default("30s"))
        .vars(fragments::http_server())
        .vars(fragments::redis());
    println!("mode: {mode:?}\n\nvariables:\n{}", schema.help());

    let config = schema.load_or_exit(&source); // prints every problem and exits 78
    println!("validated: {config:?}\n");
    match config.deserialize::<Settings>() {
        Ok(settings) => println!("settings: {settings:#?}"),
        Err(e) => eprintln!("{e}"),
    }
}
