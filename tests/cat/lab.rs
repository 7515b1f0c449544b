//! In the network namespaces of the lab (root only): the broker waits for
//! a reader behind a lossy link.

use std::time::Duration;

use super::proc::{WAIT, wait_for};

/// A reader behind a link that drops every packet to it for 150 ms (its
/// bytes then wait for a retransmission, 200 ms or more) still advertises
/// an open window: it is reading over a slow path, not stopped, and the
/// broker waits for it instead of cutting it off. With "100 ms without
/// progress means stopped" alone, it was disconnected; a local reader is
/// there so that the flood could have gone on without it.
#[test]
fn broker_waits_for_a_reader_behind_a_lossy_link() {
    use crate::support::netns::{Lab, SCANNER_V4, TARGET_V4, require_lab, wait_output};
    if !require_lab() {
        return;
    }
    const PORT: u16 = 7000;
    const TOTAL: usize = 32 << 20;
    let lab = Lab::new();
    let (t, s) = (lab.target_ns(), lab.scanner_ns());
    let bin = env!("CARGO_BIN_EXE_sockeye");
    let established = |want: usize| {
        wait_for(WAIT, || {
            let out = lab.exec(
                t,
                &[
                    "ss",
                    "-Htn",
                    "state",
                    "established",
                    &format!("sport = :{PORT}"),
                ],
            );
            (String::from_utf8_lossy(&out.stdout).lines().count() == want).then_some(())
        })
        .unwrap_or_else(|| panic!("{want} clients never connected"))
    };
    let broker = lab.spawn(
        t,
        bin,
        &[
            "cat",
            "-l",
            "--broker",
            "-p",
            &PORT.to_string(),
            "--max-queue",
            "262144",
        ],
    );
    wait_for(WAIT, || {
        let out = lab.exec(t, &["ss", "-Hltn", &format!("sport = :{PORT}")]);
        (!out.stdout.is_empty()).then_some(())
    })
    .expect("broker listening");
    let reader = |ns: &str, host: &str| {
        lab.spawn(
            ns,
            "bash",
            &[
                "-c",
                &format!("{bin} cat --recv-only -i 3 {host} {PORT} | wc -c"),
            ],
        )
    };
    let local = reader(t, "127.0.0.1");
    let remote = reader(s, TARGET_V4);
    established(2);
    // Every packet from the broker to the remote reader is dropped while
    // the flood starts, for 150 ms.
    lab.nft(
        t,
        &format!(
            "table inet sk_loss {{\n chain out {{\n type filter hook output priority 0;\n \
             ip daddr {SCANNER_V4} tcp sport {PORT} drop\n }}\n}}\n"
        ),
    );
    let sender = lab.spawn(
        t,
        "bash",
        &[
            "-c",
            &format!("head -c {TOTAL} /dev/zero | {bin} cat --send-only 127.0.0.1 {PORT}"),
        ],
    );
    std::thread::sleep(Duration::from_millis(150));
    lab.nft(t, "delete table inet sk_loss");
    let sent = wait_output(sender, Duration::from_secs(60));
    assert!(
        sent.status.success(),
        "sender: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    for (name, r) in [("local", local), ("remote", remote)] {
        let out = wait_output(r, Duration::from_secs(60));
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            got,
            TOTAL.to_string(),
            "{name} reader: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut broker = broker;
    let _ = broker.kill();
    let out = wait_output(broker, WAIT);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("stopped reading"), "broker: {said}");
}
