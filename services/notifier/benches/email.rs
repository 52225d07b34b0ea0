//! `just bench-email`: emails per second through the notifier's email channel with DKIM
//! signing off, with an Ed25519 key and with an RSA-2048 key, side by side in one run:
//! - **render + sign**: the message built from the templates (multipart/alternative, the
//!   unsubscribe token), signed, and serialised for the wire; no I/O;
//! - **via SMTP**: the same, handed to a Postfix `smtp-sink` this bench starts on a free
//!   port without a dump, so nothing is written to disk (the servers' `deploy/servers.sh
//!   up` installs it; it offers PIPELINING), in several ways: one at a time over one
//!   connection without pipelining (four round trips a message, as lettre sent them: the
//!   baseline), the same with pipelining (two), and `CONCURRENT` senders at once over a
//!   pool of 1, 4 and 8 pipelining connections (as the notifier's consumer loop sends
//!   them), and over 8 without pipelining. Each SMTP row also says how many times the
//!   baseline's rate it reaches;
//! - **via SMTP across a network**: the same rows (DKIM off, a quarter of the notices)
//!   through a relay in this bench that holds every chunk `LINK_DELAY` in each direction,
//!   as a server across a network would (its measured round trip is printed): on one
//!   host round trips are nearly free and the CPU is the limit, across a network they
//!   are what pipelining and parallel connections save.
//!
//! `BENCH_EMAILS` messages per cell (default 2000), after a warm-up of 50.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures::StreamExt as _;
use lettre::Message;
use secrecy::SecretString;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};
use zhida_notifier::{
    Channel as _, DkimConfig, Email, MailError, Mailer, SmtpConfig, generate_ed25519_pem,
};
use zhida_proto::events::v1::{Channel, DeliveryRequested};
use zhida_unsubscribe::{Keyring, UnsubscribeConfig};

const WARM_UP: usize = 50;
/// Senders at once in the concurrent rows: the consumer loop's default `max_in_flight`.
const CONCURRENT: usize = 64;

/// One way, in the rows across a network (tokio's timer rounds it up to whole ms).
const LINK_DELAY: Duration = Duration::from_millis(1);

/// The SMTP rows: label, connections, pipelining, senders at once. The first is the
/// baseline.
const SMTP_ROWS: [(&str, usize, bool, usize); 6] = [
    ("SMTP 1 conn, 1 at a time", 1, false, 1),
    ("  pipelined", 1, true, 1),
    ("  pipelined, 64 at once", 1, true, CONCURRENT),
    ("  pipelined, 4 conns, 64", 4, true, CONCURRENT),
    ("  pipelined, 8 conns, 64", 8, true, CONCURRENT),
    ("  8 conns, 64, unpipelined", 8, false, CONCURRENT),
];

/// Serialises each message as the SMTP transport would, and drops it.
struct Serialise;

#[async_trait]
impl Mailer for Serialise {
    async fn send(&self, message: Message) -> Result<String, MailError> {
        Ok(message.formatted().len().to_string())
    }
}

/// A Postfix smtp-sink on a free port, stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
}

impl Sink {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut command = Command::new("/usr/sbin/smtp-sink");
        if root {
            command.args(["-u", "root"]);
        }
        let child = command
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let sink = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sink)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RSA-2048 key from `openssl genpkey`, if openssl is there.
fn rsa_2048() -> Option<SecretString> {
    let output = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let pem = String::from_utf8(output.stdout).ok()?;
    pem.contains("PRIVATE KEY").then(|| SecretString::from(pem))
}

fn request(i: usize) -> DeliveryRequested {
    DeliveryRequested {
        policy_id: "pol-bench-1".into(),
        recipient_id: format!("c-{i:06}"),
        channel: Channel::Email as i32,
        address: format!("resident{i}@example.cn"),
        recipient_name: "王芳".into(),
        title: "杨浦区高校毕业生就业见习补贴".into(),
        body: "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴。".repeat(6),
        department: "区人力资源社会保障局".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        reason: "您订阅了政策标签“employment”".into(),
        subscription_id: "sub-0123456789abcdef".into(),
        ..DeliveryRequested::default()
    }
}

fn dkim(pem: &SecretString) -> DkimConfig {
    DkimConfig {
        domain: "yangpu.example.gov.cn".into(),
        selector: "bench".into(),
        key_file: String::new(),
        key_pem: Some(pem.clone()),
    }
}

/// The email channel over SMTP to `port` as `row` says.
fn via_smtp(
    port: u16,
    (_, connections, pipelining, _): &(&str, usize, bool, usize),
    from: &str,
    keyring: &Arc<Keyring>,
    dkim: Option<zhida_notifier::Dkim>,
) -> anyhow::Result<Email> {
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        max_connections: *connections,
        pipelining: *pipelining,
        ..SmtpConfig::default()
    };
    Email::new(
        zhida_notifier::mailer(&config)?,
        from,
        keyring.clone(),
        dkim,
    )
}

/// Emails per second through `email`, `senders` at once.
async fn rate(email: &Email, n: usize, senders: usize) -> f64 {
    let send = |i| async move {
        let attempt = email.send(&request(i)).await;
        assert!(
            matches!(attempt, zhida_notifier::Attempt::Sent { .. }),
            "{attempt:?}"
        );
    };
    futures::stream::iter(0..WARM_UP)
        .for_each_concurrent(senders, send)
        .await;
    let started = Instant::now();
    futures::stream::iter(WARM_UP..WARM_UP + n)
        .for_each_concurrent(senders, send)
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// A relay on a free port to `port` that holds every chunk `delay` in each direction;
/// and its median round trip (NOOP to `250`).
async fn delayed(port: u16, delay: Duration) -> anyhow::Result<(u16, Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let relay = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            for socket in [&client, &server] {
                let _ = socket.set_nodelay(true);
            }
            let ((client_in, client_out), (server_in, server_out)) =
                (client.into_split(), server.into_split());
            tokio::spawn(hold(client_in, server_out, delay));
            tokio::spawn(hold(server_in, client_out, delay));
        }
    });
    let mut probe = BufReader::new(TcpStream::connect(("127.0.0.1", relay)).await?);
    let mut line = String::new();
    probe.read_line(&mut line).await?;
    let mut round_trips = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        probe.get_mut().write_all(b"NOOP\r\n").await?;
        line.clear();
        probe.read_line(&mut line).await?;
        round_trips.push(started.elapsed());
    }
    round_trips.sort();
    Ok((relay, round_trips[round_trips.len() / 2]))
}

/// Copies `from` to `to`, each chunk `delay` after it arrived.
async fn hold(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (chunks, mut held) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((arrived, chunk)) = held.recv().await {
            tokio::time::sleep_until((arrived + delay).into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer).await {
        if chunks
            .send((Instant::now(), buffer[..read].to_vec()))
            .is_err()
        {
            return;
        }
    }
}

fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores}× {model}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_EMAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let keyring: Arc<Keyring> = Arc::new(
        UnsubscribeConfig::default()
            .with_generated_key("bench")
            .keyring()?,
    );
    let from = SmtpConfig::default().from;
    let mut keys = vec![
        ("DKIM off", None),
        ("Ed25519", Some(generate_ed25519_pem())),
    ];
    match rsa_2048() {
        Some(pem) => keys.push(("RSA-2048", Some(pem))),
        None => eprintln!("openssl not found: no RSA-2048 column"),
    }
    let sink = Sink::start();
    if sink.is_none() {
        eprintln!("/usr/sbin/smtp-sink not found (deploy/servers.sh up installs it): no SMTP row");
    }

    let mut offline = Vec::new();
    let mut smtp = vec![Vec::new(); SMTP_ROWS.len()];
    for (_, pem) in &keys {
        let signer = || {
            pem.as_ref()
                .map(|pem| zhida_notifier::Dkim::load(&dkim(pem)))
                .transpose()
        };
        let email = Email::new(Box::new(Serialise), &from, keyring.clone(), signer()?)?;
        offline.push(rate(&email, n, 1).await);
        let Some(sink) = &sink else { continue };
        for (row, rates) in SMTP_ROWS.iter().zip(&mut smtp) {
            let email = via_smtp(sink.port, row, &from, &keyring, signer()?)?;
            rates.push(rate(&email, n, row.3).await);
        }
    }
    let mut across = Vec::new();
    let mut round_trip = Duration::ZERO;
    if let Some(sink) = &sink {
        let relay;
        (relay, round_trip) = delayed(sink.port, LINK_DELAY).await?;
        for row in &SMTP_ROWS {
            let email = via_smtp(relay, row, &from, &keyring, None)?;
            across.push(rate(&email, n / 4, row.3).await);
        }
    }

    println!(
        "\nemails/s through the email channel, {n} notices per cell ({}):",
        cpu()
    );
    print!("{:<28}", "");
    for (name, _) in &keys {
        print!("{name:>12}");
    }
    println!();
    let row = |label: &str, rates: &[f64], baseline: Option<&[f64]>| {
        print!("{label:<28}");
        for r in rates {
            print!("{:>12.0}", r);
        }
        match baseline {
            Some(baseline) => {
                let ratios: Vec<String> = rates
                    .iter()
                    .zip(baseline)
                    .map(|(r, b)| format!("×{:.1}", r / b))
                    .collect();
                print!("   {} of the first SMTP row", ratios.join(" "));
            }
            None => {
                if let (Some(off), Some(ed)) = (rates.first(), rates.get(1)) {
                    print!("   Ed25519 = {:.0}% of off", ed / off * 100.0);
                }
            }
        }
        println!();
    };
    row("render + sign (no I/O)", &offline, None);
    if sink.is_some() {
        for ((label, ..), rates) in SMTP_ROWS.iter().zip(&smtp) {
            row(label, rates, Some(&smtp[0]));
        }
        println!(
            "\nacross a network: {:?} held each way, a round trip {:.1} ms (median NOOP), DKIM off, {} notices per cell:",
            LINK_DELAY,
            round_trip.as_secs_f64() * 1000.0,
            n / 4
        );
        for ((label, ..), rate) in SMTP_ROWS.iter().zip(&across) {
            row(label, &[*rate], Some(&across[..1]));
        }
    }
    Ok(())
}
