//! The standard `process_*` metrics (resident and virtual memory, CPU seconds, open and
//! maximum file descriptors, start time), read from `/proc/self` at each scrape. They carry no
//! `tollgate_` prefix, so that the usual dashboards and alerts find them. On systems without
//! `/proc`, and for any file that cannot be read, the metric is left out rather than reported
//! as zero.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): 100 on every architecture Linux
/// supports, fixed by its ABI whatever the kernel's own tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// Collects the process metrics on each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| Stat::parse(&text));
        if let Some(stat) = &stat {
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / TICKS_PER_SECOND);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
        }
        let resident = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|text| resident_bytes(&text));
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            resident,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stat.as_ref().map(|stat| stat.vsize),
        )?;
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            open,
        )?;
        let max = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| max_open_files(&text));
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors",
            max,
        )?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time(&text));
        let start = stat
            .zip(boot)
            .map(|(stat, boot)| boot as f64 + stat.starttime as f64 / TICKS_PER_SECOND);
        if let Some(start) = start {
            let start = ConstGauge::new(start);
            start.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                None,
                start.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<u64>,
) -> Result<(), std::fmt::Error> {
    let Some(value) = value else {
        return Ok(());
    };
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// The fields of `/proc/self/stat` the metrics need.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
}

impl Stat {
    /// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
    /// hold spaces and parentheses, so the fields are counted from the last `)`.
    fn parse(text: &str) -> Option<Stat> {
        let (_, rest) = text.rsplit_once(')')?;
        // After the name: field 3 (state) is index 0, so field N is index N - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
            vsize: field(23)?,
        })
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes (the file gives kB).
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit of "Max open files" in `/proc/self/limits` (`None` when unlimited).
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The boot time (`btime`) of `/proc/stat`, in seconds since the Unix epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "4242 (tollgate (a) b) S 1 4242 4242 0 -1 4194560 1052 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 4000 18446744073709551615 1 1 0 0 0 0 0 \
                    4096 17922 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            Stat::parse(text),
            Some(Stat {
                utime: 250,
                stime: 75,
                starttime: 123456,
                vsize: 987654321,
            })
        );
        assert_eq!(Stat::parse("4242 (tollgate) S 1 2"), None);
    }

    #[test]
    fn status_limits_and_boot_time_are_read() {
        let status = "Name:\ttollgate\nVmPeak:\t  20000 kB\nVmRSS:\t    8192 kB\nThreads:\t9\n";
        assert_eq!(resident_bytes(status), Some(8192 * 1024));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63344                63344                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1700000000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encoded");
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.lines().any(|line| line.starts_with(name)),
                "{name} missing in:\n{text}"
            );
        }
    }
}
