//! Rows are taken fairly across customers: a file grouped by customer reaches the server
//! interleaved, so a per-customer limit does not hold the whole run to one customer's pace.

use std::collections::HashSet;
use std::time::Duration;

use bulkpatch::simulator::{SimConfig, Throttle};

use crate::support::*;

const CUSTOMERS: u32 = 4;
const EACH: u32 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_grouped_by_customer_is_sent_interleaved_at_the_partner_rate() {
    // The server allows 3/s per customer; the client is told so, and allowed 12/s in all.
    let sim = simulator(SimConfig {
        customer_throttle: Some(Throttle {
            per_second: 3,
            burst: 2,
        }),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location"]);
    for c in 1..=CUSTOMERS {
        for i in 1..=EACH {
            csv = csv.row(&[
                &customer(c).to_string(),
                &user(c * 100 + i).to_string(),
                "DE",
            ]);
        }
    }
    let input = csv.write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let started = std::time::Instant::now();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--rate",
            "12/s",
            "--per-customer-rate",
            "3/s",
            "--concurrency",
            "4",
        ],
    ))
    .await;
    let took = started.elapsed();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        Results::read(&out).count("updated"),
        (CUSTOMERS * EACH) as usize
    );

    // The customer of each request, in the order the server received them.
    let mut requests = sim.requests();
    requests.sort_by_key(|r| r.received_at);
    let order: Vec<u32> = requests
        .iter()
        .filter_map(|r| (1..=CUSTOMERS).find(|&c| r.path.contains(&customer(c).to_string())))
        .collect();
    let first: HashSet<u32> = order.iter().take(8).copied().collect();
    assert_eq!(first.len(), CUSTOMERS as usize, "first requests: {order:?}");
    // Every customer keeps its share all along: in the first half of the run each customer
    // got about a quarter of the requests, rather than the first customer all of them.
    let half = &order[..order.len() / 2];
    for c in 1..=CUSTOMERS {
        let share = half.iter().filter(|&&x| x == c).count();
        assert!(
            share >= 4,
            "customer {c}: {share} of the first {}: {order:?}",
            half.len()
        );
    }
    // One customer at a time takes 60 rows / 3/s = 20 s (measured 15.7 s, the queue overlapping
    // neighbours a little); interleaved, 60 / 12/s = 5 s (measured 5.1 s).
    assert!(took < Duration::from_secs(12), "took {took:?}: {order:?}");
}
