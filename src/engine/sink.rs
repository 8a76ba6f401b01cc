//! Progress as events: the engine reports what it is doing to a [`Sink`] the caller owns
//! (the CLI draws it on the terminal). The engine itself never writes to the terminal.

/// Something the user may want to see while a build runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A build step that is not a script (mounting, exporting).
    Step(&'a str),
    /// A script starts: its phase, its place in the phase, name and element.
    Script {
        phase: &'a str,
        index: usize,
        total: usize,
        name: &'a str,
        element: &'a str,
    },
    /// A line of a script's output.
    Output(&'a str),
    /// A transient status (e.g. while cleaning up).
    Status(&'a str),
    /// A phase ended: nothing of it is running any more.
    PhaseEnd,
}

/// Receives a build's progress.
pub trait Sink {
    fn event(&mut self, event: Event<'_>);
}

/// A sink that drops everything (tests, callers that only want the result).
#[derive(Debug, Default)]
pub struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _: Event<'_>) {}
}
