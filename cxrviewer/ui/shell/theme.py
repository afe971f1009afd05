"""The reading-room theme: one place for the palette, the semantic colours and the style sheet.

Dark is the default (radiographs are read in dim rooms; RadiAnt, Weasis and OHIF default to
dark); Light is in View › Theme and remembered. Widgets never hard-code colours: they set an
object name or the `tone` property ("warning", "problem", "ok", "muted") and the style sheet
below colours them. Every text/background pair meets WCAG AA (contrast ≥ 4.5:1), checked by
tests/gui/test_theme.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

DARK = "dark"
LIGHT = "light"
THEMES = (DARK, LIGHT)
THEME_SETTING = "view/theme"
TONE_PROPERTY = "tone"


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alternate_base: str
    text: str
    muted: str
    disabled: str
    button: str
    highlight: str
    highlighted_text: str
    link: str
    warning: str
    problem: str
    ok: str
    banner: str           # background of the model card's "not for clinical use" line
    banner_text: str
    table_header: str
    table_header_text: str

    def colour(self, name: str) -> QColor:
        return QColor(getattr(self, name))

    def pairs(self) -> dict[str, tuple[str, str]]:
        """Every (text, background) pair the UI draws: for the contrast check."""
        pairs = {f"{tone} on {bg}": (getattr(self, tone), getattr(self, bg))
                 for tone in ("text", "muted", "warning", "problem", "ok", "link")
                 for bg in ("window", "base", "alternate_base")}
        pairs["text on button"] = (self.text, self.button)
        pairs["highlighted text"] = (self.highlighted_text, self.highlight)
        pairs["banner"] = (self.banner_text, self.banner)
        pairs["table header"] = (self.table_header_text, self.table_header)
        return pairs


DARK_THEME = Theme(
    name=DARK, window="#1c1d20", base="#141517", alternate_base="#222327", text="#e8e8e8", muted="#a9adb4",
    disabled="#8b8f96", button="#2a2c30", highlight="#2f6fce", highlighted_text="#ffffff", link="#7fb2ff",
    warning="#f2a93b", problem="#ff7a6e", ok="#62d394", banner="#4a1f1a", banner_text="#ffe3de",
    table_header="#2a2c30", table_header_text="#e8e8e8",
)
LIGHT_THEME = Theme(
    name=LIGHT, window="#efefef", base="#ffffff", alternate_base="#f5f5f5", text="#1d1d1d", muted="#555a60",
    disabled="#6e7278", button="#e4e4e4", highlight="#2f6fce", highlighted_text="#ffffff", link="#1a56b0",
    warning="#8a4a00", problem="#b02a1d", ok="#1c7040", banner="#fde7e7", banner_text="#8b1a1a",
    table_header="#e6e6e6", table_header_text="#222222",
)
_BY_NAME = {DARK: DARK_THEME, LIGHT: LIGHT_THEME}


def theme_named(name: str | None) -> Theme:
    return _BY_NAME.get(str(name or "").lower(), DARK_THEME)


def saved_theme(settings: QSettings | None = None) -> Theme:
    settings = settings if settings is not None else QSettings()
    return theme_named(str(settings.value(THEME_SETTING, DARK)))


def palette(theme: Theme) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, value in ((role.Window, theme.window), (role.WindowText, theme.text), (role.Base, theme.base),
                     (role.AlternateBase, theme.alternate_base), (role.ToolTipBase, theme.button),
                     (role.ToolTipText, theme.text), (role.PlaceholderText, theme.muted), (role.Text, theme.text),
                     (role.Button, theme.button), (role.ButtonText, theme.text), (role.BrightText, theme.problem),
                     (role.Highlight, theme.highlight), (role.HighlightedText, theme.highlighted_text),
                     (role.Link, theme.link), (role.LinkVisited, theme.link)):
        p.setColor(r, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor(theme.disabled))
    return p


def style_sheet(theme: Theme) -> str:
    return f"""
QWidget[tone="warning"] {{ color: {theme.warning}; }}
QWidget[tone="problem"] {{ color: {theme.problem}; font-weight: bold; }}
QWidget[tone="ok"] {{ color: {theme.ok}; }}
QWidget[tone="muted"] {{ color: {theme.muted}; }}
QToolTip {{ color: {theme.text}; background: {theme.button}; border: 1px solid {theme.muted}; }}
QDockWidget::title {{ background: {theme.alternate_base}; padding: 3px; }}
"""


def apply_theme(app: QApplication, theme: Theme) -> Theme:
    """Fusion + the theme's palette and style sheet, for the whole application."""
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    app.setStyleSheet(style_sheet(theme))
    app.setProperty("cxrviewerTheme", theme.name)
    return theme


def current_theme() -> Theme:
    """The theme applied with `apply_theme`; Light when none was (Qt's own palette is light)."""
    app = QApplication.instance()
    name = app.property("cxrviewerTheme") if app is not None else None
    return theme_named(name) if name else LIGHT_THEME


def set_tone(widget: QWidget, tone: str) -> None:
    """Colour a label by meaning ("warning", "problem", "ok", "muted", "" = normal text)."""
    if widget.property(TONE_PROPERTY) == tone:
        return
    widget.setProperty(TONE_PROPERTY, tone)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    def luminance(colour: str) -> float:
        c = QColor(colour)
        channels = []
        for value in (c.redF(), c.greenF(), c.blueF()):
            channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
        r, g, b = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)
