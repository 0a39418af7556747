//! The one event type the TUI takes in. Terminal input (keys, mouse, resize), new model
//! snapshots and signals all arrive as an [`Event`]; [`crate::tui::app::App::handle`] turns
//! each into at most one [`Action`](crate::tui::action::Action) and applies it.

use super::model::Snapshot;
use crossterm::event::{KeyEvent, KeyEventKind, MouseEvent, MouseEventKind};
use std::sync::Arc;

/// Everything that can change what the UI shows.
#[derive(Clone, Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize { width: u16, height: u16 },
    /// The model published a newer snapshot.
    Snapshot(Arc<Snapshot>),
    /// SIGINT or SIGTERM arrived: leave cleanly.
    Terminate,
}

impl Event {
    /// Converts a terminal event; `None` for what the UI ignores (key releases, focus,
    /// paste).
    pub fn from_terminal(e: crossterm::event::Event) -> Option<Event> {
        match e {
            crossterm::event::Event::Key(k) if k.kind != KeyEventKind::Release => Some(Event::Key(k)),
            crossterm::event::Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(_) | MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => Some(Event::Mouse(m)),
                _ => None,
            },
            crossterm::event::Event::Resize(width, height) => Some(Event::Resize { width, height }),
            _ => None,
        }
    }
}
