"""Every key and what it does: the bindings and the help screen both read
this list. Each action has a letter key; F-keys only alias (they get lost
over some SSH clients and terminals). Tab keys 1..N follow the registry."""

from __future__ import annotations

from typing import NamedTuple, Tuple

from .tabs import TABS


class Key(NamedTuple):
    keys: str  # Textual key names, comma separated
    action: str
    label: str  # as shown in help
    description: str
    footer: str = ""  # short label when shown in the footer


KEYS: Tuple[Key, ...] = (
    Key("q", "quit", "q", "quit (also Ctrl-C)", footer="quit"),
    Key("ctrl+c", "quit", "Ctrl-C", "quit"),
    Key("question_mark,f1", "help", "? F1", "this help", footer="help"),
    Key("p,space", "toggle_pause", "p space", "pause / resume the display", footer="pause"),
    Key("tab", "next_tab", "Tab", "next tab"),
    Key("shift+tab", "previous_tab", "Shift-Tab", "previous tab"),
    *(Key(str(i), f"show_tab({i - 1})", str(i), f"the {spec.title} tab") for i, spec in enumerate(TABS.values(), 1)),
    Key("less_than_sign", "sort(-1)", "<", "sort by the column to the left"),
    Key("greater_than_sign", "sort(1)", ">", "sort by the column to the right", footer="sort"),
    Key("r", "reverse_sort", "r", "reverse the sort order"),
    Key("plus,equals_sign", "interval(1)", "+", "longer refresh interval", footer="slower"),
    Key("minus,underscore", "interval(-1)", "-", "shorter refresh interval", footer="faster"),
    Key("w", "switch_table", "w", "move between the tables of a tab"),
    Key("slash,f4", "filter", "/ F4", "filter the current tab (Enter applies, Esc closes)", footer="filter"),
    Key("F", "pin_filter", "F", "pin the current tab's filter to every tab / unpin it"),
    Key("P,f2", "probes", "P F2", "probes: what is attached, its cost; switch probes off and on", footer="probes"),
    Key("s", "save_screen", "s", "save the screen as a text file", footer="save"),
    Key("S", "save_every_tab", "S", "save every tab as text, one file"),
    # Replay only (--replay FILE); p or space pauses and resumes playing.
    Key("n,full_stop", "replay_step(1)", "n .", "replay: one interval forward (pauses)", footer="next"),
    Key("b,comma", "replay_step(-1)", "b ,", "replay: one interval back (pauses)", footer="back"),
    Key("j", "replay_goto", "j", "replay: jump to a time (+SECONDS, HH:MM[:SS] or ISO)", footer="jump"),
    Key("x", "replay_speed", "x", "replay: play at 1x, 4x, 16x", footer="speed"),
)
