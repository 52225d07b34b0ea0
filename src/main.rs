//! `zhida`: one binary for every Zhida service, the embedded demo, and operator commands.
//! Parses the command line, loads config, starts telemetry, runs, maps the result to an
//! exit code; everything else lives in the service crates.

mod audience;
mod demo;

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
        Command::Async(command) => run(command),
    }
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
            AsyncCommand::CreateTopics { config } => {
                let (config, _) = Config::load_with::<NotifierConfig>(config.as_deref())?;
                zhida_bus::ensure_topics(&config.kafka).await?;
                Ok(Ended::Done)
            }
        }
    });
    match result {
        Ok(Ended::Done) => ExitCode::SUCCESS,
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
    if config.kafka.create_topics {
        zhida_bus::ensure_topics(&config.kafka)
            .await
            .with_context(|| format!("creating topics on {}", config.kafka.brokers))?;
    }
    let listener = TcpListener::bind(&config.grpc.listen)
        .await
        .with_context(|| format!("binding grpc.listen {}", config.grpc.listen))?;
    let components = components(service, config, notifier, shutdown).await?;
    let mut server = tokio::spawn(zhida_runtime::serve(
        components,
        listener,
        shutdown.clone(),
        config.grpc.limits(),
    ));
    tokio::select! {
        result = &mut server => return result?,
        _ = shutdown.token.cancelled() => {}
    }
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result?,
        Err(_) => anyhow::bail!(
            "in-flight work did not drain within {:?}",
            config.shutdown_grace
        ),
    }
}
