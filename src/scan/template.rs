//! nmap's timing templates (`-T0` to `-T5`) as far as a connect scan has
//! them: the timeout bounds, retries, rate and in-flight caps each level
//! starts from before the flags typed override them.

use std::time::Duration;

/// One timing template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Template {
    /// Bounds and start of the per-host timeout (`--min-rtt-timeout`,
    /// `--max-rtt-timeout`, `--initial-rtt-timeout`).
    pub min: Duration,
    pub max: Duration,
    pub initial: Duration,
    pub retries: u8,
    /// The most retries a host that loses probes may get (see
    /// [`crate::scan::timing::LossEstimate`]); `retries` when it loses none.
    pub retry_ceiling: u8,
    /// Probes per second at most, if capped.
    pub rate: Option<f64>,
    /// Probes in flight at most, if capped (else the open-file limit decides).
    pub inflight: Option<usize>,
}

impl Template {
    /// `-T<level>`: 0 (paranoid) to 5 (insane); 3, the default, for any other.
    pub fn level(level: u8) -> Template {
        let ms = Duration::from_millis;
        let base = Template {
            min: ms(100),
            max: ms(3000),
            initial: ms(1000),
            retries: 2,
            retry_ceiling: 6,
            rate: None,
            inflight: None,
        };
        match level {
            // Paranoid and sneaky: one probe at a time, spaced out (nmap:
            // 5 minutes and 15 seconds between probes).
            0 => Template {
                rate: Some(1.0 / 300.0),
                inflight: Some(1),
                max: ms(10_000),
                ..base
            },
            1 => Template {
                rate: Some(1.0 / 15.0),
                inflight: Some(1),
                max: ms(10_000),
                ..base
            },
            // Polite: 0.4 s between probes.
            2 => Template {
                rate: Some(2.5),
                inflight: Some(1),
                max: ms(10_000),
                ..base
            },
            4 => Template {
                max: ms(1250),
                initial: ms(500),
                ..base
            },
            5 => Template {
                retry_ceiling: 2,
                min: ms(50),
                max: ms(300),
                initial: ms(250),
                ..base
            },
            _ => base,
        }
    }
}
