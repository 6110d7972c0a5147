"""The private Textual attributes bpftop relies on (isolated in
bpftop/screens/textual_internals.py) still exist: an upgrade that moves
them fails here, by name, rather than as a blank capture or a console that
no longer notices a lost terminal."""

import inspect

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.screen import Screen
from textual.widgets import Static

from bpftop.screens.textual_internals import output_healthy, screen_text


class _Hello(App):
    def compose(self):
        yield Static("hello, capture")


async def test_screen_text_reads_the_compositor():
    app = _Hello()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        assert hasattr(app.screen, "_compositor"), "Textual's Screen._compositor is gone: fix screen_text()"
        assert hasattr(app.screen._compositor, "render_update")
        text = screen_text(app)
        assert "hello, capture" in text
        assert "\x1b" not in text
        assert len(text.splitlines()) == 5


def test_the_linux_driver_still_has_its_writer_thread():
    source = inspect.getsource(LinuxDriver)
    assert "self._writer_thread" in source, "LinuxDriver._writer_thread is gone: fix output_healthy()"
    assert "_compositor" in inspect.getsource(Screen.__init__)


async def test_output_healthy_while_running():
    app = _Hello()
    async with app.run_test(size=(40, 5)):
        assert output_healthy(app)


def test_widgets_still_update_their_scrollbars_in_scroll_update():
    from textual.widget import Widget

    assert hasattr(Widget, "_scroll_update"), "Widget._scroll_update is gone: fix update_scrollbars()"
    assert "_refresh_scrollbars" in inspect.getsource(Widget._scroll_update)


def test_the_key_parser_still_keeps_its_escape_deadline():
    """The console's input loop waits as long as Textual's key parser has
    nothing pending, and until its deadline for the rest of an escape
    sequence when it has (ConsoleDriver.run_input_thread)."""
    from textual._xterm_parser import XTermParser

    from bpftop.screens.textual_internals import TEXTUAL_INPUT_POLL_S, parser_wait

    parser = XTermParser()
    assert hasattr(parser, "_timeout_time"), "Textual's Parser._timeout_time is gone: fix parser_wait()"
    assert parser_wait(parser) is None
    assert list(parser.feed("a"))  # a plain key: nothing pending after it
    assert parser_wait(parser) is None
    assert not list(parser.feed("\x1b"))  # Esc alone: a key only once the wait is over
    wait = parser_wait(parser)
    assert wait is not None and 0 < wait <= 1
    assert parser_wait(object()) == TEXTUAL_INPUT_POLL_S  # no deadline to read: Textual's own pace
