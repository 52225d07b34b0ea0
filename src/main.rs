//! `zhida`: one binary for every Zhida service, the embedded demo, and operator commands.
//! Parses the command line, loads config, starts telemetry, runs, maps the result to an
//! exit code; everything else lives in the service crates.

mod audience;
mod demo;
mod import;
mod webhook_receiver;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use zhida_notifier::NotifierConfig;
use zhida_runtime::{Component, Config, Shutdown, telemetry::Telemetry};

#[derive(Parser)]
#[command(
    name = "zhida",
    version,
    about = "Zhida (直达): policy push and subscription"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Async(AsyncCommand),
    /// Print the ids of the profiles an audience rule matches, offline: profiles as JSON
    /// lines (proto3 JSON of zhida.events.v1.Profile), the rule as a JSON file.
    /// Exits 2 on an invalid rule or profile line.
    Audience {
        #[arg(long)]
        profiles: PathBuf,
        #[arg(long)]
        rule: PathBuf,
    },
    /// Signing keys for bearer tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Bearer tokens for callers.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new Ed25519 key pair: `<out>/<id>.pem` (private, mode 0600: keep it where
    /// tokens are issued) and `<out>/<id>.pub.pem` (public: every service's [auth] keys).
    Generate {
        /// The key id tokens will name (`kid`).
        #[arg(long, default_value = "k1")]
        id: String,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token signed with a private key from `zhida keys generate`.
    Issue {
        /// department, reviewer, subscriber, subject, directory or operator.
        #[arg(long)]
        kind: String,
        /// Who within the kind: a department's name, a relay id, a subject id, ….
        #[arg(long)]
        id: String,
        /// Comma-separated scopes; the kind's defaults when left out.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// How long it is valid, e.g. 30d, 12h.
        #[arg(long, default_value = "30d")]
        ttl: humantime::Duration,
        /// The private key file (PEM).
        #[arg(long, env = "ZHIDA_AUTH_SIGNING_KEY")]
        key: PathBuf,
        /// Its id, as listed in [auth] keys.
        #[arg(long, default_value = "k1")]
        key_id: String,
        /// Config file for [auth] issuer and audience.
        #[arg(long, env = "ZHIDA_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// The commands that run on the async runtime.
#[derive(Subcommand)]
enum AsyncCommand {
    /// Serve one service (or all of them in one process) until SIGTERM.
    Serve {
        service: Service,
        /// TOML config file; `ZHIDA_*` environment variables override it.
        #[arg(long, env = "ZHIDA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run every service in this process on an in-process Kafka cluster and in-memory stores,
    /// publish two sample policies, print who got what, and exit.
    Demo {
        /// Where the emails are written as .eml files.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
    /// Print the audit trail (every state-changing call: who, what, when, outcome) as
    /// JSON lines, oldest first per partition.
    Audit {
        /// How far back, e.g. 1h, 7d.
        #[arg(long, default_value = "1d")]
        since: humantime::Duration,
        #[arg(long, env = "ZHIDA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Import profiles in bulk into a running profiler: JSON lines (proto3 JSON of
    /// zhida.events.v1.Profile, as `audience` reads them), streamed in chunks. Prints each
    /// rejected line as `line N: <field>: <reason>` (stdout) and progress (stderr); exits 2
    /// if a line was rejected, 1 if the import stopped (saying after which line).
    /// Importing the same file again changes nothing.
    Import {
        #[arg(long)]
        file: PathBuf,
        /// The profiler's (or `serve all`'s) gRPC address.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        target: String,
        /// A bearer token with scope profile:write:any (a directory's).
        #[arg(long, env = "ZHIDA_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Create the topics and dead-letter topics (also done by `serve` unless disabled).
    CreateTopics {
        #[arg(long, env = "ZHIDA_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// How a command that did not fail ended.
enum Ended {
    Done,
    /// A second signal: stopped without draining.
    Forced,
    /// Done, but some of the input was refused (reported line by line): exit code 2.
    Rejected,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Service {
    Publisher,
    Profiler,
    Relay,
    Notifier,
    All,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Publisher => "publisher",
            Service::Profiler => "profiler",
            Service::Relay => "relay",
            Service::Notifier => "notifier",
            Service::All => "all",
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        // Offline and synchronous: no runtime, no config, no telemetry.
        Command::Audience { profiles, rule } => {
            match audience::run(&profiles, &rule, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("zhida audience: {error}");
                    ExitCode::from(match error {
                        audience::AudienceError::Invalid(_) => 2,
                        audience::AudienceError::Io(_) => 1,
                    })
                }
            }
        }
        Command::Keys(KeysCommand::Generate { id, out }) => report(keys_generate(&id, &out)),
        Command::Token(TokenCommand::Issue {
            kind,
            id,
            scopes,
            ttl,
            key,
            key_id,
            config,
        }) => report(token_issue(
            &kind,
            &id,
            &scopes,
            ttl.into(),
            &key,
            &key_id,
            config.as_deref(),
        )),
        Command::Async(command) => run(command),
    }
}

/// Exit code of an offline command; errors go to stderr.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zhida: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn keys_generate(id: &str, out: &std::path::Path) -> anyhow::Result<()> {
    use secrecy::ExposeSecret as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (private, public) = zhida_runtime::auth::generate_key();
    std::fs::create_dir_all(out)?;
    let private_path = out.join(format!("{id}.pem"));
    let public_path = out.join(format!("{id}.pub.pem"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)
        .with_context(|| format!("writing {} (it must not exist yet)", private_path.display()))?
        .write_all(private.expose_secret().as_bytes())?;
    std::fs::write(&public_path, &public)?;
    println!(
        "wrote {} (private: keep it where tokens are issued) and {} (public)",
        private_path.display(),
        public_path.display()
    );
    println!(
        "every service verifies with:\n[[auth.keys]]\nid = \"{id}\"\npublic_key_file = \"{}\"",
        public_path.display()
    );
    Ok(())
}

fn token_issue(
    kind: &str,
    id: &str,
    scopes: &[String],
    ttl: std::time::Duration,
    key: &std::path::Path,
    key_id: &str,
    config: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use zhida_runtime::auth::{ALL_SCOPES, Kind, Signer};
    let kind = Kind::parse(kind).with_context(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind {kind:?}: one of {}", kinds.join(", "))
    })?;
    if let Some(unknown) = scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        anyhow::bail!(
            "unknown scope {unknown:?}: one of {}",
            ALL_SCOPES.join(", ")
        );
    }
    if id.trim().is_empty() {
        anyhow::bail!("--id must not be empty");
    }
    let (config, _) = Config::load_with::<NotifierConfig>(config)?;
    let pem = std::fs::read_to_string(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let signer = Signer::new(&config.auth, key_id, &pem.into())
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let scopes = scopes.iter().cloned().collect();
    let token = signer
        .issue(kind, id, &scopes, ttl)
        .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

fn run(command: AsyncCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zhida: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            AsyncCommand::Serve { service, config } => serve(service, config).await,
            AsyncCommand::Demo { out } => demo::run(out).await.map(|()| Ended::Done),
            AsyncCommand::Audit { since, config } => {
                let (config, _) = Config::load_with::<NotifierConfig>(config.as_deref())?;
                let since = std::time::SystemTime::now() - std::time::Duration::from(since);
                let since_millis = since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let kafka = config.kafka.clone();
                let records = tokio::task::spawn_blocking(move || {
                    zhida_bus::audit::read(&kafka, since_millis)
                })
                .await??;
                for record in records {
                    let at = record.at.unwrap_or_default();
                    let line = serde_json::json!({
                        "at": chrono::DateTime::from_timestamp(at.seconds, at.nanos.max(0) as u32)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                        "principal": record.principal,
                        "rpc": record.rpc,
                        "code": tonic::Code::from_i32(record.code).description(),
                        "trace_id": record.trace_id,
                    });
                    println!("{line}");
                }
                Ok(Ended::Done)
            }
            AsyncCommand::Import {
                file,
                target,
                token,
            } => Ok(match import::run(&file, &target, token.as_deref()).await? {
                import::Ended::Imported => Ended::Done,
                import::Ended::Rejected => Ended::Rejected,
            }),
            AsyncCommand::CreateTopics { config } => {
                let (config, _) = Config::load_with::<NotifierConfig>(config.as_deref())?;
                zhida_bus::ensure_topics(&config.kafka).await?;
                Ok(Ended::Done)
            }
        }
    });
    match result {
        Ok(Ended::Done) => ExitCode::SUCCESS,
        Ok(Ended::Rejected) => ExitCode::from(2),
        Ok(Ended::Forced) => {
            // At once: no waiting for tasks still running, blocking ones included.
            runtime.shutdown_background();
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("zhida: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the components `service` names (all four for `all`); `notifier` holds the
/// notifier's own sections.
pub(crate) async fn components(
    service: Service,
    config: &Config,
    notifier: &NotifierConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<Component>> {
    let mut components = Vec::new();
    if matches!(service, Service::Publisher | Service::All) {
        components.push(zhida_publisher::component(config, shutdown).await?);
    }
    if matches!(service, Service::Profiler | Service::All) {
        components.push(zhida_profiler::component(config, shutdown).await?);
    }
    if matches!(service, Service::Relay | Service::All) {
        components.push(zhida_relay::component(config, shutdown).await?);
    }
    if matches!(service, Service::Notifier | Service::All) {
        components.push(zhida_notifier::component(config, notifier, shutdown).await?);
    }
    Ok(components)
}

/// `config`, with the publisher asking the profiler of this very process for audience
/// previews when both run here and no other profiler is configured (plain-text gRPC only:
/// with TLS the certificate names the public host, so set `publisher.profiler_url`).
pub(crate) fn with_local_profiler(
    service: Service,
    config: &Config,
    local: std::net::SocketAddr,
) -> Config {
    let mut config = config.clone();
    if service == Service::All
        && config.publisher.profiler_url.is_empty()
        && config.grpc.tls.is_none()
    {
        let ip = if local.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            local.ip()
        };
        config.publisher.profiler_url =
            format!("http://{}", std::net::SocketAddr::new(ip, local.port()));
    }
    config
}

async fn serve(service: Service, config_file: Option<PathBuf>) -> anyhow::Result<Ended> {
    let (config, notifier) = Config::load_with::<NotifierConfig>(config_file.as_deref())?;
    let telemetry = Telemetry::init(service.name(), &config.telemetry)?;
    let shutdown = Shutdown::new();
    let result = tokio::select! {
        result = serve_until_stopped(service, &config, &notifier, &shutdown) => result,
        // Whatever is still starting or draining: nothing more is waited for, not even
        // the export of buffered telemetry.
        () = shutdown.forced() => return Ok(Ended::Forced),
    };
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "stopped with an error");
    }
    telemetry.shutdown();
    result.map(|()| Ended::Done)
}

async fn serve_until_stopped(
    service: Service,
    config: &Config,
    notifier: &NotifierConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    shutdown.cancel_on_signals()?;
    // A server that could let no call in (no keys to verify tokens) stops before it
    // touches the broker.
    if config.auth.mode == zhida_runtime::auth::AuthMode::Jwt {
        config
            .auth
            .verifier()
            .map_err(|(key, reason)| anyhow::anyhow!("invalid configuration: {key}: {reason}"))?;
    }
    if config.kafka.create_topics {
        zhida_bus::ensure_topics(&config.kafka)
            .await
            .with_context(|| format!("creating topics on {}", config.kafka.brokers))?;
    }
    let listener = TcpListener::bind(&config.grpc.listen)
        .await
        .with_context(|| format!("binding grpc.listen {}", config.grpc.listen))?;
    let config = &with_local_profiler(service, config, listener.local_addr()?);
    let components = components(service, config, notifier, shutdown).await?;
    // Every state-changing call goes to the audit topic; the recorder ends once the
    // server is gone (and with it the sink), after producing what is queued.
    let (audit, entries) = zhida_runtime::audit::channel();
    let recorder = tokio::spawn(zhida_bus::audit::record(
        entries,
        zhida_bus::Producer::new(&config.kafka, "/zhida/audit")?,
    ));
    let mut server = tokio::spawn(zhida_runtime::serve(
        components,
        listener,
        shutdown.clone(),
        zhida_runtime::Host::from_config(config).audited(audit),
    ));
    tokio::select! {
        result = &mut server => {
            recorder.abort();
            return result?;
        }
        _ = shutdown.token.cancelled() => {}
    }
    let drained = tokio::time::timeout(config.shutdown_grace, server).await;
    // What was queued before the server stopped goes out within a second more.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), recorder).await;
    match drained {
        Ok(result) => result?,
        Err(_) => anyhow::bail!(
            "in-flight work did not drain within {:?}",
            config.shutdown_grace
        ),
    }
}
