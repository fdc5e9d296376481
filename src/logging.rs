//! Diagnostics through `tracing`, to stderr and optionally to a file.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{layer, FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// `reconfig: warning: …`, the shape compilers and cargo use.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "reconfig: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[derive(Clone)]
struct SharedFile(Arc<Mutex<File>>);

impl std::io::Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `reconfig: warning: …` for one-shot commands.
    Plain,
    /// Timestamped lines with fields, for the long-running sidecar.
    Service,
    /// JSON lines.
    Json,
}

/// Shows reconfig's own events at `level`; libraries' (the kube client's request spans, hyper's
/// connection chatter) only at trace level (-vv), since reconfig reports their failures itself.
fn ours(level: LevelFilter) -> FilterFn<impl Fn(&Metadata<'_>) -> bool + Clone> {
    FilterFn::new(move |meta: &Metadata<'_>| {
        level >= *meta.level()
            && (level == LevelFilter::TRACE || meta.target().starts_with("reconfig"))
    })
    .with_max_level_hint(level)
}

/// Installs the global subscriber. `base` is the level shown without -v/-q.
pub fn init(
    style: Style,
    base: LevelFilter,
    verbose: u8,
    quiet: bool,
    log_file: Option<&Path>,
) -> std::io::Result<()> {
    let level = if quiet {
        LevelFilter::ERROR
    } else {
        match (base, verbose) {
            (base, 0) => base,
            (LevelFilter::WARN, 1) => LevelFilter::INFO,
            (_, 1) => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    };
    let file = log_file
        .map(|path| OpenOptions::new().create(true).append(true).open(path))
        .transpose()?
        .map(|f| SharedFile(Arc::new(Mutex::new(f))));
    let registry = tracing_subscriber::registry();
    match style {
        Style::Plain => registry
            .with(
                layer()
                    .event_format(Plain)
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_filter(ours(level)),
            )
            .with(file.map(|f| {
                layer()
                    .event_format(Plain)
                    .with_writer(f)
                    .with_ansi(false)
                    .with_filter(ours(level))
            }))
            .init(),
        Style::Service => registry
            .with(
                layer()
                    .with_target(false)
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_filter(ours(level)),
            )
            .with(file.map(|f| {
                layer()
                    .with_target(false)
                    .with_writer(f)
                    .with_ansi(false)
                    .with_filter(ours(level))
            }))
            .init(),
        Style::Json => registry
            .with(
                layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(ours(level)),
            )
            .with(file.map(|f| layer().json().with_writer(f).with_filter(ours(level))))
            .init(),
    }
    Ok(())
}
