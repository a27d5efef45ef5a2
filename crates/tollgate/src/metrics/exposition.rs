//! The two text formats `/metrics` speaks: OpenMetrics (the default, and what Prometheus asks
//! for first) and the older Prometheus text format (`text/plain; version=0.0.4`), for scrapers
//! and agents that ask only for `text/plain`.

/// A format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    /// The format an `Accept` header prefers: `text/plain` only when it ranks above
    /// `application/openmetrics-text` (by quality, then by order); OpenMetrics otherwise,
    /// including for no header, `*/*`, or types neither format is.
    pub(super) fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let mut best: Option<(Format, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" => Format::PrometheusText,
                _ => continue,
            };
            let quality = parts
                .filter_map(|param| param.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
            if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                best = Some((format, quality));
            }
        }
        best.map_or(Format::OpenMetrics, |(format, _)| format)
    }

    /// The response's `Content-Type`.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Rewrites an OpenMetrics exposition in the Prometheus text format. The samples are the same;
/// the metadata differs: a counter family is named by its `_total` sample, an info family
/// becomes a gauge named by its `_info` sample, and there is no `# UNIT` line and no `# EOF`.
pub(super) fn to_prometheus_text(openmetrics: &str) -> String {
    let renamed = |family: &str| -> Option<String> {
        let typed = format!("# TYPE {family} ");
        let kind = openmetrics
            .lines()
            .find_map(|line| line.strip_prefix(typed.as_str()))?;
        match kind {
            "counter" => Some(format!("{family}_total")),
            "info" => Some(format!("{family}_info")),
            _ => None,
        }
    };
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let metadata = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?)));
        match metadata {
            Some((tag, rest)) => {
                let (family, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = renamed(family).unwrap_or_else(|| family.to_owned());
                let tail = if tag == "# TYPE " && tail == "info" {
                    "gauge"
                } else {
                    tail
                };
                text.push_str(tag);
                text.push_str(&name);
                text.push(' ');
                text.push_str(tail);
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        for (accept, format) in [
            (None, Format::OpenMetrics),
            (Some("*/*"), Format::OpenMetrics),
            (Some("application/json"), Format::OpenMetrics),
            (Some("text/plain"), Format::PrometheusText),
            (Some("Text/Plain; version=0.0.4"), Format::PrometheusText),
            (
                Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
                Format::PrometheusText,
            ),
            (Some("text/plain;q=0, */*"), Format::OpenMetrics),
            (Some("text/plain, application/openmetrics-text"), Format::PrometheusText),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
    }

    #[test]
    fn counters_and_infos_are_named_by_their_samples() {
        let openmetrics = "\
# HELP tollgate_logins Password logins.
# TYPE tollgate_logins counter
tollgate_logins_total{outcome=\"failed\"} 1
# HELP tollgate_build Build.
# TYPE tollgate_build info
tollgate_build_info{version=\"0.1.0\"} 1
# HELP tollgate_latency_seconds Latency.
# TYPE tollgate_latency_seconds histogram
# UNIT tollgate_latency_seconds seconds
tollgate_latency_seconds_sum 0.5
# HELP process_open_fds Open.
# TYPE process_open_fds gauge
process_open_fds 9
# EOF
";
        assert_eq!(
            to_prometheus_text(openmetrics),
            "\
# HELP tollgate_logins_total Password logins.
# TYPE tollgate_logins_total counter
tollgate_logins_total{outcome=\"failed\"} 1
# HELP tollgate_build_info Build.
# TYPE tollgate_build_info gauge
tollgate_build_info{version=\"0.1.0\"} 1
# HELP tollgate_latency_seconds Latency.
# TYPE tollgate_latency_seconds histogram
tollgate_latency_seconds_sum 0.5
# HELP process_open_fds Open.
# TYPE process_open_fds gauge
process_open_fds 9
"
        );
    }
}
