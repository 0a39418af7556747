//! The terminal seam: the only code that talks to the real terminal (crossterm).
//!
//! Contract: once [`Terminal::enter`] returned, the terminal is restored exactly once on
//! every way out: [`Terminal::leave`], `Drop` (errors, early returns), a panic (the hook
//! installed by `enter` restores before the panic message is printed, so the message is
//! readable), and SIGINT/SIGTERM ([`Signals`]: the UI loop sees the flag within one poll
//! period and returns through `leave`). Restoring is idempotent.

use super::event::Event;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use std::io::{self, IsTerminal, Stdout};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// True when standard input and output are both terminals.
pub fn is_terminal() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// Whether the terminal is currently in the UI's modes (so restoring is done once).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Puts the terminal back the way it was: raw mode off, main screen, no mouse reporting,
/// cursor visible. Safe to call any number of times, from any thread.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The UI's terminal.
pub struct Terminal {
    inner: ratatui::Terminal<CrosstermBackend<Stdout>>,
}

impl Terminal {
    /// Raw mode, alternate screen, mouse reporting, hidden cursor; installs the panic hook.
    pub fn enter() -> io::Result<Terminal> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        crossterm::terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture, cursor::Hide) {
            restore();
            return Err(e);
        }
        match ratatui::Terminal::new(CrosstermBackend::new(out)) {
            Ok(inner) => Ok(Terminal { inner }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    pub fn size(&self) -> io::Result<ratatui::layout::Size> {
        self.inner.size()
    }

    pub fn draw(&mut self, f: impl FnOnce(&mut ratatui::Frame<'_>)) -> io::Result<()> {
        self.inner.draw(f).map(|_| ())
    }

    /// The next terminal event, waiting at most `timeout`. A terminal that went away (its
    /// pty hung up: tmux killed, ssh dropped) is an error, so the UI ends instead of spinning
    /// on end-of-file reads (crossterm retries those without returning).
    pub fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Event>> {
        if stdin_hung_up() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the terminal hung up"));
        }
        if crossterm::event::poll(timeout)? {
            Ok(Event::from_terminal(crossterm::event::read()?))
        } else {
            Ok(None)
        }
    }

    /// Restores the terminal.
    pub fn leave(self) -> io::Result<()> {
        restore();
        Ok(())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        restore();
    }
}

/// True when standard input (the terminal) reports a hang-up or is no longer valid.
fn stdin_hung_up() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLNVAL)),
        Err(_) => false,
    }
}

/// SIGINT and SIGTERM, turned into a flag the UI loop polls. (In raw mode ctrl-c is a key,
/// so SIGINT only comes from `kill`.)
pub struct Signals {
    flag: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> Signals {
        let flag = Arc::new(AtomicBool::new(false));
        // SIGHUP keeps its default action: the terminal is gone, there is nothing to restore.
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        Signals { flag }
    }

    pub fn raised(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}
