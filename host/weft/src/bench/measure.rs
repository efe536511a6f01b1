//! What the scenarios measure with: latency samples and their percentiles, the process's
//! and a thread's CPU time (`getrusage`), and resident memory from `/proc`.

use std::time::Duration;

/// Latency samples of one side of a scenario.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    values: Vec<Duration>,
    sorted: bool,
}

impl Samples {
    pub(crate) fn with_capacity(n: usize) -> Samples {
        Samples {
            values: Vec::with_capacity(n),
            sorted: true,
        }
    }

    pub(crate) fn push(&mut self, d: Duration) {
        self.values.push(d);
        self.sorted = false;
    }

    pub(crate) fn extend(&mut self, other: Samples) {
        self.values.extend(other.values);
        self.sorted = false;
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The nearest-rank percentile `p` (0..=100); zero without samples.
    pub(crate) fn percentile(&mut self, p: f64) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.values.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    pub(crate) fn p50(&mut self) -> Duration {
        self.percentile(50.0)
    }

    pub(crate) fn p99(&mut self) -> Duration {
        self.percentile(99.0)
    }
}

/// Microseconds as a float, for ratios and JSON.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A duration with a unit that keeps three significant digits.
pub(crate) fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Bytes as MiB.
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A rate with a k suffix above a thousand.
pub(crate) fn fmt_rate(per_sec: f64, unit: &str) -> String {
    if per_sec >= 1000.0 {
        format!("{:.1}k {unit}/s", per_sec / 1000.0)
    } else {
        format!("{per_sec:.0} {unit}/s")
    }
}

/// CPU time (user + system) of the whole process, or of the calling thread only.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CpuOf {
    Process,
    Thread,
}

/// CPU time used so far; zero where `getrusage` is unavailable.
#[allow(unsafe_code)]
pub(crate) fn cpu_time(of: CpuOf) -> Duration {
    #[cfg(target_os = "linux")]
    let who = match of {
        CpuOf::Process => libc::RUSAGE_SELF,
        CpuOf::Thread => libc::RUSAGE_THREAD,
    };
    #[cfg(not(target_os = "linux"))]
    let who = match of {
        CpuOf::Process | CpuOf::Thread => libc::RUSAGE_SELF,
    };
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` only writes one `rusage` through the pointer, which points to
    // memory of exactly that type owned by this frame; `who` is a valid constant.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: the value was zero-initialised (a valid `rusage`: plain integers) and then
    // filled in by a successful `getrusage`.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Resident set size now and its high-water mark, in bytes, of a process (`self` or a pid).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rss {
    pub(crate) now: u64,
    pub(crate) peak: u64,
}

pub(crate) fn rss_of(pid: Option<u32>) -> Rss {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Rss::default();
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    Rss {
        now: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// Resets this process's RSS high-water mark to the current RSS (Linux ≥ 4.0). Returns
/// whether it worked; if not, peaks are measured from process start.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100u64 {
            s.push(Duration::from_micros(101 - i));
        }
        assert_eq!(s.p50(), Duration::from_micros(50));
        assert_eq!(s.p99(), Duration::from_micros(99));
        assert_eq!(s.percentile(100.0), Duration::from_micros(100));
        assert_eq!(Samples::default().p50(), Duration::ZERO);
    }

    #[test]
    fn cpu_and_rss_are_readable_here() {
        let before = cpu_time(CpuOf::Thread);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(CpuOf::Process) >= cpu_time(CpuOf::Thread));
        assert!(cpu_time(CpuOf::Thread) >= before);
        let rss = rss_of(None);
        assert!(rss.now > 0 && rss.peak >= rss.now, "{rss:?}");
    }
}
