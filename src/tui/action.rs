//! Actions and the key map: every key the TUI knows, in one table that both the key
//! handling ([`action_for_key`]) and the help pane read, so the help can never disagree with
//! what a key does.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the user asked for. [`crate::tui::app::App::update`] carries it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    /// Esc: close help, leave an observation, leave the path view.
    Back,
    /// Enter: open the selected path, select an observation, ...
    Open,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Top,
    Bottom,
    HalfPageDown,
    HalfPageUp,
    PageDown,
    PageUp,
    /// Sort by the next column.
    SortNext,
    /// Reverse the sort order.
    SortReverse,
    /// Freeze the view (capture continues).
    TogglePause,
    /// Write the selected path's packets to a pcapng file.
    WritePath,
    /// Stream pane: ASCII <-> hex.
    ToggleStreamFormat,
    /// Start editing the `/` filter.
    FilterStart,
    FilterInput(char),
    FilterBackspace,
    FilterClear,
    FilterApply,
    FilterCancel,
    /// Mouse: left click at a screen cell.
    Click { column: u16, row: u16 },
    /// Mouse wheel over a screen cell (`down`: towards the end).
    Scroll { column: u16, row: u16, down: bool },
    Resize { width: u16, height: u16 },
}

/// A key as the help shows it and the map matches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn key(c: char) -> Binding {
    Binding { code: KeyCode::Char(c), ctrl: false }
}
const fn ctrl(c: char) -> Binding {
    Binding { code: KeyCode::Char(c), ctrl: true }
}
const fn code(c: KeyCode) -> Binding {
    Binding { code: c, ctrl: false }
}

/// One row of the key map: keys, what they do, and the help text.
pub struct KeyEntry {
    pub keys: &'static [Binding],
    pub action: Action,
    pub help: &'static str,
}

/// The key map (outside filter editing).
pub const KEY_MAP: &[KeyEntry] = &[
    KeyEntry { keys: &[code(KeyCode::Up), key('k')], action: Action::Up, help: "move up" },
    KeyEntry { keys: &[code(KeyCode::Down), key('j')], action: Action::Down, help: "move down" },
    KeyEntry { keys: &[key('g'), code(KeyCode::Home)], action: Action::Top, help: "first row" },
    KeyEntry { keys: &[key('G'), code(KeyCode::End)], action: Action::Bottom, help: "last row" },
    KeyEntry { keys: &[ctrl('d')], action: Action::HalfPageDown, help: "half a page down" },
    KeyEntry { keys: &[ctrl('u')], action: Action::HalfPageUp, help: "half a page up" },
    KeyEntry { keys: &[code(KeyCode::PageDown), ctrl('f')], action: Action::PageDown, help: "page down" },
    KeyEntry { keys: &[code(KeyCode::PageUp), ctrl('b')], action: Action::PageUp, help: "page up" },
    KeyEntry {
        keys: &[code(KeyCode::Enter), code(KeyCode::Right), key('l')],
        action: Action::Open,
        help: "open the path / pick the observation or packet",
    },
    KeyEntry {
        keys: &[code(KeyCode::Esc), code(KeyCode::Left), key('h')],
        action: Action::Back,
        help: "back (observation -> path -> paths table)",
    },
    KeyEntry { keys: &[code(KeyCode::Tab)], action: Action::FocusNext, help: "next pane" },
    KeyEntry { keys: &[code(KeyCode::BackTab)], action: Action::FocusPrev, help: "previous pane" },
    KeyEntry { keys: &[key('/')], action: Action::FilterStart, help: "filter: host, port, net, point, proto" },
    KeyEntry { keys: &[key('s')], action: Action::SortNext, help: "sort by the next column" },
    KeyEntry { keys: &[key('S')], action: Action::SortReverse, help: "reverse the sort order" },
    KeyEntry { keys: &[key(' ')], action: Action::TogglePause, help: "pause/resume the view (capture goes on)" },
    KeyEntry { keys: &[key('x')], action: Action::ToggleStreamFormat, help: "stream: ASCII / hex" },
    KeyEntry { keys: &[key('w')], action: Action::WritePath, help: "write the path's packets to pcapng" },
    KeyEntry { keys: &[key('?'), code(KeyCode::F(1))], action: Action::ToggleHelp, help: "this help" },
    KeyEntry { keys: &[key('q'), ctrl('c')], action: Action::Quit, help: "quit" },
];

/// Keys while editing the filter (shown in the help too).
pub const FILTER_KEYS: &[(&str, &str)] = &[
    ("text", "edit the filter (errors show inline as you type)"),
    ("Enter", "apply (empty: no filter)"),
    ("Esc", "cancel, keep the previous filter"),
    ("Backspace", "delete a character"),
    ("ctrl-u", "clear the line"),
];

/// Mouse and terminal events (shown in the help).
pub const MOUSE_HELP: &[(&str, &str)] = &[
    ("click", "select a row, focus a pane (click the selected path again to open it)"),
    ("wheel", "scroll the pane under the pointer"),
];

impl Binding {
    /// How the help writes the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "shift-Tab".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("ctrl-{base}") } else { base }
    }

    fn matches(&self, k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl != self.ctrl {
            return false;
        }
        match (self.code, k.code) {
            // Terminals report shifted letters as the upper-case char, with or without SHIFT.
            (KeyCode::Char(a), KeyCode::Char(b)) => a == b || (self.ctrl && a.eq_ignore_ascii_case(&b)),
            (a, b) => a == b,
        }
    }
}

/// The action of a key outside filter editing.
pub fn action_for_key(k: &KeyEvent) -> Option<Action> {
    KEY_MAP.iter().find(|e| e.keys.iter().any(|b| b.matches(k))).map(|e| e.action.clone())
}

/// The action of a key while the filter line is being edited.
pub fn filter_action_for_key(k: &KeyEvent) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Enter => Some(Action::FilterApply),
        KeyCode::Esc => Some(Action::FilterCancel),
        KeyCode::Backspace => Some(Action::FilterBackspace),
        KeyCode::Char('u') if ctrl => Some(Action::FilterClear),
        KeyCode::Char('c') if ctrl => Some(Action::FilterCancel),
        KeyCode::Char(c) if !ctrl && !c.is_control() => Some(Action::FilterInput(c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn every_binding_maps_to_its_action() {
        for e in KEY_MAP {
            for b in e.keys {
                let m = if b.ctrl { KeyModifiers::CONTROL } else { KeyModifiers::NONE };
                assert_eq!(action_for_key(&k(b.code, m)), Some(e.action.clone()), "{}", b.label());
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice() {
        let all: Vec<&Binding> = KEY_MAP.iter().flat_map(|e| e.keys.iter()).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b != a), "{} bound twice", a.label());
        }
    }

    #[test]
    fn shifted_and_control_letters() {
        assert_eq!(action_for_key(&k(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::Bottom));
        assert_eq!(action_for_key(&k(KeyCode::Char('D'), KeyModifiers::CONTROL)), Some(Action::HalfPageDown));
        assert_eq!(action_for_key(&k(KeyCode::Char('d'), KeyModifiers::NONE)), None);
        assert_eq!(action_for_key(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(action_for_key(&k(KeyCode::Char('z'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn filter_editing_keys() {
        let f = |c, m| filter_action_for_key(&k(c, m));
        assert_eq!(f(KeyCode::Char('q'), KeyModifiers::NONE), Some(Action::FilterInput('q')));
        assert_eq!(f(KeyCode::Char('Q'), KeyModifiers::SHIFT), Some(Action::FilterInput('Q')));
        assert_eq!(f(KeyCode::Enter, KeyModifiers::NONE), Some(Action::FilterApply));
        assert_eq!(f(KeyCode::Esc, KeyModifiers::NONE), Some(Action::FilterCancel));
        assert_eq!(f(KeyCode::Backspace, KeyModifiers::NONE), Some(Action::FilterBackspace));
        assert_eq!(f(KeyCode::Char('u'), KeyModifiers::CONTROL), Some(Action::FilterClear));
        assert_eq!(f(KeyCode::Char('c'), KeyModifiers::CONTROL), Some(Action::FilterCancel));
        assert_eq!(f(KeyCode::F(3), KeyModifiers::NONE), None);
    }
}
