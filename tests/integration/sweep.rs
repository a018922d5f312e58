//! Found by the adversarial sweep of issue 11: a secrets file torn inside its header, secret
//! files the run only reads named as outputs, a TOML syntax error's position, and a token
//! answer whose `expires_in` no JSON reader can hold.

use bulkpatch::simulator::SimConfig;

use crate::support::*;

/// The disk filled up as the secrets file was created: its header is cut short (or it is
/// empty). The rows were never sent; a resume sends them with new passwords, and every one of
/// those passwords must be in the secrets file handed out at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_file_torn_inside_its_header_keeps_every_password_sent_on_resume() {
    for torn in ["line,customer_id,us", ""] {
        let dir = tempdir();
        let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
        let out = dir.path().join("out.csv");
        let secrets = dir.path().join("secrets.csv");
        let s = secrets.display().to_string();
        let args = [
            "--generate-passwords",
            "--secrets-out",
            &s,
            "--rate",
            "1000/s",
        ];
        let sim = simulator(SimConfig::default()).await;
        let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        // No row has a record (the run stopped at the first secrets write), the header is torn.
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::write(&out, text.lines().next().unwrap().to_string() + "\n").unwrap();
        std::fs::write(&secrets, torn).unwrap();

        let sim = simulator(SimConfig::default()).await;
        let args = [&args[..], &["--resume"]].concat();
        let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let sent = sim.requests();
        assert_eq!(sent.len(), 3, "every row is sent");
        let after = Results::read(&secrets);
        assert_eq!(after.rows.len(), 3, "one line per row sent ({torn:?})");
        for request in &sent {
            let password = sent_password(request).unwrap();
            assert!(
                after
                    .rows
                    .iter()
                    .any(|r| r["password"] == password && r["applied"] == "yes"),
                "a password sent is missing from the secrets file ({torn:?})"
            );
        }
    }
}
