//! Submits per second over one session, against the simulator (a measurement, not a
//! test): `cargo run --release -p zhida-smpp --example throughput -- [count] [window]`
//! after `eval "$(deploy/servers.sh env)"`. Defaults: 5000 submits, window 10. Each
//! accepted submit is one more line in the simulator's dump, which tests read: keep runs few.

use std::time::Instant;

use tokio::task::JoinSet;
use zhida_smpp::{Address, Config, Session, Submit, encode_ucs2};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let window: u32 = args.next().map_or(Ok(10), |a| a.parse())?;
    let smpp = std::env::var("ZHIDA_TEST_SMPP")
        .map_err(|_| "ZHIDA_TEST_SMPP is not set: eval \"$(deploy/servers.sh env)\"")?;
    let addr = smpp.split(',').next().unwrap_or_default().to_owned();

    let mut config = Config::new(addr, "bench-smpp", "secret".into());
    config.window = window;
    let (session, _receipts) = Session::connect(config).await?;
    let message = encode_ucs2("【杨浦区政务】您关注的政策已发布，详情 https://y.example/p/1");

    let started = Instant::now();
    let mut workers = JoinSet::new();
    // Twice as many callers as slots, so the window is always full.
    let callers = 2 * window as usize;
    for w in 0..callers {
        let session = session.clone();
        let message = message.clone();
        workers.spawn(async move {
            let mut failed = 0;
            for i in (w..count).step_by(callers) {
                let submit = Submit {
                    source: Address::alphanumeric("10690000"),
                    destination: Address::international(format!("86139{:08}", i * 10 + 1)),
                    data_coding: zhida_smpp::DATA_CODING_UCS2,
                    esm_class: 0,
                    registered_delivery: 0,
                    short_message: message.clone(),
                };
                if session.submit(&submit).await.is_err() {
                    failed += 1;
                }
            }
            failed
        });
    }
    let failed: usize = workers.join_all().await.into_iter().sum();
    let elapsed = started.elapsed();
    session.close().await?;
    println!(
        "{count} submits ({failed} failed) with window {window} in {:.2} s: {:.0} submits/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
