"""The gallery's widgets: ``GalleryPanel`` is what the main window shows as a tab or dock."""

from desktop_app.gui.gallery.panel import GalleryPanel

__all__ = ["GalleryPanel"]
