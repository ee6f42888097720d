//! The terminals' topic layout: `grid/{countyCode}/{workerId}/{kind}`.

/// The parts of a terminal topic. `kind` is `report`, `progress`,
/// `evaluation` (upward) or `notify` (downward); other kinds are passed on
/// as they are and left to the hub's mapping to judge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TerminalTopic<'a> {
    pub county: &'a str,
    pub worker_id: &'a str,
    pub kind: &'a str,
}

/// Splits a topic of the contract's shape; `None` for anything else (the
/// record is still handed over, with only its `topic` in the metadata).
pub(crate) fn parse(topic: &str) -> Option<TerminalTopic<'_>> {
    let mut levels = topic.split('/');
    let (Some("grid"), Some(county), Some(worker_id), Some(kind), None) =
        (levels.next(), levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return None;
    };
    [county, worker_id, kind].iter().all(|l| !l.is_empty()).then_some(TerminalTopic { county, worker_id, kind })
}

/// The hub → terminal topic, `grid/{county}/{workerId}/notify`. `None` if a
/// part is empty or holds a level separator or wildcard, which would address
/// another worker's terminal (or none).
pub(crate) fn notify_topic(county: &str, worker_id: &str) -> Option<String> {
    let ok = |level: &str| !level.is_empty() && !level.contains(['/', '+', '#', '\0']);
    (ok(county) && ok(worker_id)).then(|| format!("grid/{county}/{worker_id}/notify"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_topics() {
        assert_eq!(
            parse("grid/330106/W0042/report"),
            Some(TerminalTopic { county: "330106", worker_id: "W0042", kind: "report" })
        );
        assert_eq!(parse("grid/330106/W0042/report/x"), None);
        assert_eq!(parse("grid/330106//report"), None);
        assert_eq!(parse("other/330106/W0042/report"), None);
        assert_eq!(parse("grid/330106"), None);
    }

    #[test]
    fn notify_topics() {
        assert_eq!(notify_topic("330106", "W0042").as_deref(), Some("grid/330106/W0042/notify"));
        assert_eq!(notify_topic("330106", "W/1"), None);
        assert_eq!(notify_topic("+", "W1"), None);
        assert_eq!(notify_topic("", "W1"), None);
    }
}
