"""Settings remembered between runs (QSettings): last folder, recent files, toggles, geometry."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from cxrviewer.state.overlay import OverlayChange, OverlaySettings

log = logging.getLogger(__name__)

ORGANIZATION_NAME = "cxrviewer"
APPLICATION_NAME = "cxrviewer"
MAX_RECENT_FILES = 10

_EXPORT_FOLDER = "export/folder"
_LAST_FOLDER = "paths/last_folder"
_RECENT = "paths/recent"
_ANONYMISE = "view/anonymise"
_LAST_STUDY = "paths/last_study"
_HEATMAP = "heatmap/"
HEATMAP_KEYS = ("opacity", "threshold", "colormap", "style", "normalisation")
_GEOMETRY = "window/geometry"
_STATE = "window/state"


def _to_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


class ViewerSettings:
    """Typed access to the viewer's QSettings (INI or registry, per platform and test setup).

    Pass a `QSettings` to isolate (tests); by default uses the application's organisation and
    name, set in `cxrviewer.ui.shell.app`.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings if settings is not None else QSettings()

    @property
    def qsettings(self) -> QSettings:
        return self._settings

    # folders and recent files ------------------------------------------------------------
    def last_folder(self) -> str:
        value = self._settings.value(_LAST_FOLDER, "")
        return str(value) if value else ""

    def set_last_folder(self, folder: str | Path) -> None:
        self._settings.setValue(_LAST_FOLDER, str(folder))

    def export_folder(self) -> str:
        """Where exports are offered: the folder of the last export, else <Pictures>/cxrviewer —
        never the case folder (exports stay out of teaching files and patient folders)."""
        value = self._settings.value(_EXPORT_FOLDER, "")
        if value and Path(str(value)).is_dir():
            return str(value)
        from platformdirs import user_pictures_dir

        return str(Path(user_pictures_dir()) / "cxrviewer")

    def set_export_folder(self, folder: str | Path) -> None:
        self._settings.setValue(_EXPORT_FOLDER, str(folder))

    def recent_files(self) -> list[str]:
        value = self._settings.value(_RECENT, [])
        if value is None:
            return []
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in value if v][:MAX_RECENT_FILES]

    def add_recent_file(self, path: str | Path) -> list[str]:
        """Put `path` first in the recent list (deduplicated, at most MAX_RECENT_FILES)."""
        entry = str(Path(path).resolve()) if str(path) else ""
        if not entry:
            return self.recent_files()
        recent = [p for p in self.recent_files() if p != entry]
        recent.insert(0, entry)
        recent = recent[:MAX_RECENT_FILES]
        self._settings.setValue(_RECENT, recent)
        return recent

    def clear_recent_files(self) -> None:
        self._settings.setValue(_RECENT, [])

    def last_study(self) -> list[str]:
        """The files/folders opened last (as opened, resolved); reopened on the next start."""
        value = self._settings.value(_LAST_STUDY, [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or []) if v]

    def set_last_study(self, paths: list[str | Path]) -> None:
        self._settings.setValue(_LAST_STUDY, [str(Path(p).resolve()) for p in paths if str(p)])

    # heat map ------------------------------------------------------------------------------
    def heatmap(self) -> dict[str, str | float]:
        """The heat-map settings remembered (only those ever set): opacity and threshold as
        fractions, colour map, style and scale (normalisation) as names."""
        out: dict[str, str | float] = {}
        for key in HEATMAP_KEYS:
            value = self._settings.value(_HEATMAP + key)
            if value is None or value == "":
                continue
            if key in ("opacity", "threshold"):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if 0.0 <= number <= 1.0:
                    out[key] = number
            else:
                out[key] = str(value)
        return out

    def set_heatmap_value(self, key: str, value: str | float) -> None:
        if key not in HEATMAP_KEYS:
            raise KeyError(key)
        self._settings.setValue(_HEATMAP + key, value)

    # toggles -------------------------------------------------------------------------------
    def anonymise(self) -> bool:
        return _to_bool(self._settings.value(_ANONYMISE), False)

    def set_anonymise(self, value: bool) -> None:
        self._settings.setValue(_ANONYMISE, bool(value))

    # window geometry -------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._settings.value(_GEOMETRY)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self._settings.value(_STATE)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry_and_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._settings.setValue(_GEOMETRY, geometry)
        self._settings.setValue(_STATE, state)

    def sync(self) -> None:
        self._settings.sync()


def bind_heatmap_settings(settings: ViewerSettings, overlay: OverlaySettings) -> None:
    """Restore the remembered heat-map look into `overlay`, then remember every change the user makes."""
    for key, value in settings.heatmap().items():
        try:
            getattr(overlay, f"set_{key}")(value)
        except (ValueError, TypeError):   # a colour map this version no longer has
            log.info("ignored the remembered heat-map %s %r", key, value)

    def remember(change: OverlayChange) -> None:
        if change.field in HEATMAP_KEYS:
            settings.set_heatmap_value(change.field, change.value)

    overlay.changed.connect(remember)
