"""The main window: parameters on the left, the forming image in the middle, the queue on the right.

The window is given a backend (whatever runs jobs: this machine's engine, a server) and a gallery
``Library``; it owns one ``BackendBridge`` thread between them, only ever sends jobs through it and
reacts to its signals, so the GUI thread never waits on the backend (except for one step when the
window closes mid-run).
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QImage
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.backend.protocol import Backend
from desktop_app.core.events import JobSummary
from desktop_app.core.models import ModelCatalog, ModelInfo
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import MAX_SEED, Recipe
from desktop_app.core.settings import SMALL_PREVIEW_AREA, Settings
from desktop_app.gallery.library import Library
from desktop_app.gui import theme
from desktop_app.gui.bridge import BackendBridge
from desktop_app.gui.canvas import PreviewCanvas, ThumbnailStrip
from desktop_app.gui.controls import ParametersPanel
from desktop_app.gui.dialogs import AboutDialog, SettingsDialog, first_run_text
from desktop_app.gui.gallery.details import plain_note
from desktop_app.gui.icon import app_icon
from desktop_app.gui.menus import build_menus
from desktop_app.gui.messages import MessageArea
from desktop_app.gui.model_manager import install_model_tools
from desktop_app.gui.notify import QueueNotifier
from desktop_app.gui.queue_view import JobQueueView
from desktop_app.gui.schedule_plot import NoiseSchedulePlot
from desktop_app.gui.source_link import SourceLink
from desktop_app.gui.source_panel import SourcePanel
from desktop_app.gui.widgets import ElidedLabel
from desktop_app.gui.workspace import Workspace

log = logging.getLogger(__name__)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def run_options(settings: Settings, model: ModelInfo | None = None) -> RunOptions:
    """How the window's jobs run, from the settings (never part of an image's recipe). The "auto"
    preview is a full decode for a small model (the built-in 64×64 one, whose latent map is 16×16;
    the engine keeps such decodes to a tenth of the run's time) and the latent map otherwise."""
    preview = settings.preview_mode
    if preview == "auto":
        small = model is not None and model.native_size[0] * model.native_size[1] <= SMALL_PREVIEW_AREA
        preview = "vae" if small else "latent"
    return RunOptions(device=settings.device, precision=settings.precision, preview=preview,
                      preview_max_fps=settings.preview_max_fps, fast=settings.fast_mode, low_vram=settings.low_vram)


def format_progress(step: int, total: int, its: float, left: float) -> str:
    rate = f"{its:.2f} it/s" if its < 10 else f"{its:.0f} it/s"
    eta = "" if not math.isfinite(left) else f" · {left:.0f} s left" if left >= 1 else " · <1 s left"
    return f"Step {step}/{total} · {rate}{eta}"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, backend: Backend, library: Library | None = None, *,
                 start_engine: bool = True, configure_backend=None):
        """``configure_backend(settings)`` (from the entry point) passes changed settings, such as the
        model folders, on to the backend it made; the window itself only knows the protocol."""
        super().__init__()
        self.settings = settings
        self.backend = backend
        self.library = library or Library(settings.output_path)
        self._configure_backend = configure_backend
        self.setWindowTitle("Diffuse Studio")
        self.setWindowIcon(app_icon())
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        self.requests: dict[str, Recipe] = {}
        self.job_options: dict[str, RunOptions] = {}
        self.running_job: str | None = None
        self.device_text = ""
        self._closing = False
        self._focused_once = False
        self._state_before_gallery: QByteArray | None = None
        self.open_url = QDesktopServices.openUrl  # a test replaces it: a machine may have no URL launcher
        self.gpu_available: bool | None = None  # what the backend said once it started
        self.notifier = QueueNotifier(self)
        self._unknown_words_accepted = ""  # a prompt the user chose to generate despite unknown words
        self._settings_unsaved = False  # a failed save was reported
        self._start_engine = start_engine
        self._build_central()
        self._build_docks()
        self._build_actions()
        self.bridge = BackendBridge(backend, self.library)
        self._connect_bridge()
        install_model_tools(self)
        self.source_link = SourceLink(self)
        self.bridge.curves_ready.connect(self.schedule_plot.set_curves)
        self._plot_timer = QTimer(self, singleShot=True, interval=120)
        self._plot_timer.timeout.connect(self._ask_curves)
        self.panel.set_models(backend.models())
        self.panel.set_recipe(Recipe.of(""))
        if self.settings.last_request:
            for note in self.panel.set_recipe(self.settings.last_request, self.settings.batch_count):
                self.messages.show_message(note, "info")
        else:
            self._apply_model_defaults()
        self.panel.changed.connect(self._plot_timer.start)
        self.panel.model.currentIndexChanged.connect(self._apply_model_defaults)
        self._restore_layout()
        if self.settings.load_note:  # a damaged settings file: kept aside, and the user is told
            self.messages.show_message(self.settings.load_note)
        if not self.settings.first_run_done:
            self.show_first_run_hint()
        self.statusBar().addWidget(self.state_label, 1)
        self.state_label.setText("Starting…")
        if start_engine:
            QTimer.singleShot(0, self.start_engine)
        app = QApplication.instance()
        if app is not None:  # quitting without closing the window must still stop the engine
            app.aboutToQuit.connect(self.shutdown)

    # ---- layout -------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.messages = MessageArea()
        self.canvas = PreviewCanvas()
        self.batch_strip = ThumbnailStrip(56)
        self.batch_strip.setToolTip("This job's images: click one to show it")
        self.batch_strip.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc); nothing half-finished is saved")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_running)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip("Add a job to the queue (Ctrl+Enter)")
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.generate_button)
        create = QWidget()
        layout = QVBoxLayout(create)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.messages)
        self.workspace = Workspace(self.canvas)  # the canvas, the mask painter, before/after
        layout.addWidget(self.workspace, 1)
        self.image_info = ElidedLabel()  # a saved file's whole path would make the window wider than a laptop
        self.image_info.setObjectName("hint")
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.image_info)
        layout.addWidget(self.batch_strip)
        layout.addLayout(row)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(create, "&Create")
        self.setCentralWidget(self.tabs)
        self.state_label = ElidedLabel()
        self.batch_strip.image_selected.connect(self._show_saved)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.panel = ParametersPanel()
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(330)
        self.parameters_dock = self._dock("Parameters", "parameters", scroll, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.source_panel = SourcePanel(self.workspace.painter)  # image to image, hires fix, variations
        self.panel.add_part_editor(self.source_panel)
        scroll = QScrollArea()
        scroll.setWidget(self.source_panel)
        scroll.setWidgetResizable(True)
        self.source_dock = self._dock("Image to image · second pass", "source", scroll, Qt.DockWidgetArea.LeftDockWidgetArea)
        # one dock's tab beside the parameters: stacked, each would get half a laptop's height
        self.tabifyDockWidget(self.parameters_dock, self.source_dock)  # Parameters is raised in _default_dock_sizes
        self.queue = JobQueueView()
        self.queue_dock = self._dock("Queue", "queue", self.queue, Qt.DockWidgetArea.RightDockWidgetArea)
        self.schedule_plot = NoiseSchedulePlot()
        self.schedule_dock = self._dock("Noise schedule", "schedule", self.schedule_plot, Qt.DockWidgetArea.RightDockWidgetArea)
        self.session_strip = ThumbnailStrip(64)
        self.session_strip.setToolTip("Everything made in this session: click one to show it")
        self.session_dock = self._dock("This session", "session", self.session_strip, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.session_strip.image_selected.connect(self._show_saved)
        self.gallery = None
        try:
            from desktop_app.gui.gallery import GalleryPanel
        except ImportError:
            return
        try:
            self.gallery = GalleryPanel(store=self.library.store, output_dirs=(self.settings.output_path,),
                                        models=self.panel.models)
        except Exception:  # the gallery is optional: the window works without it
            log.exception("the gallery panel could not be created")
            return
        scroll = QScrollArea()  # the gallery's grid wants ~800 px; below that it scrolls
        scroll.setWidget(self.gallery)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.tabs.addTab(scroll, "&Gallery")
        self._hidden_for_gallery: list[QDockWidget] = []
        self.tabs.currentChanged.connect(self._on_tab)
        self.gallery.use_settings.connect(self.use_settings)
        self.gallery.not_restored.connect(lambda text: self.messages.show_message(text, "info"))
        self.gallery.export_memory = dict(self.settings.export_choices)
        self.gallery.export_chosen.connect(self._remember_export)
        self.gallery.message.connect(lambda text: self.statusBar().showMessage(text, 8000))

    def _build_actions(self) -> None:
        build_menus(self)
        self.generate_button.clicked.connect(self.generate)
        self.panel.submit.connect(self.generate)
        self.panel.validity_changed.connect(self._on_validity)
        self.setTabOrder(self.panel.prompt, self.panel.negative)
        self.setTabOrder(self.panel.negative, self.panel.model)
        self.setTabOrder(self.panel.batch_count, self.generate_button)
        self.setTabOrder(self.generate_button, self.cancel_button)

    # ---- backend ---------------------------------------------------------------------------------
    def _connect_bridge(self) -> None:
        b = self.bridge
        b.state_changed.connect(self._on_engine_state)
        b.engine_ready.connect(self._on_engine_ready)
        b.accelerators_known.connect(lambda found: setattr(self, "gpu_available", bool(found)))
        b.engine_error.connect(lambda text: self.messages.show_message(text))
        b.job_started.connect(self._on_started)
        b.progress.connect(self._on_progress)
        b.preview.connect(self._on_preview)
        b.image_ready.connect(self._on_image)
        b.image_saved.connect(self._on_saved)
        b.save_failed.connect(lambda _id, text: self.messages.show_message(text))
        b.models_changed.connect(self._on_models)
        b.job_finished.connect(self._on_finished)
        b.job_failed.connect(self._on_failed)
        b.job_cancelled.connect(self._on_cancelled)
        self.queue.cancel_requested.connect(b.cancel)
        self.queue.resubmit.connect(self.resubmit)
        self.queue.use_settings.connect(lambda job_id: self.use_settings(self.queue.recipe(job_id) or Recipe.of("")))

    def start_engine(self) -> None:
        if not self.bridge.isRunning() and not self._closing:
            self.bridge.start()
            info = self.panel.model_info()
            if info is not None:
                self.bridge.preload(info.id, run_options(self.settings))
            self._ask_curves()

    def _on_engine_state(self, text: str) -> None:
        self.state_label.setText(text)
        if self.running_job is not None and text.startswith("Loading"):
            self.progress.setFormat(f"Job #{self.running_job}: {text}")
        elif self.running_job is None and text.startswith(("Starting", "Loading")):
            self.progress.setRange(0, 0)  # busy indicator while the model loads
            self.progress.setFormat(text)
        elif self.running_job is None and self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Idle")

    def _on_engine_ready(self, placement: str) -> None:
        self.device_text = placement

    def generate(self) -> list[int]:
        """Queue ``batch count`` jobs with the current parameters; returns their ids."""
        if not self.generate_button.isEnabled():
            return []
        if not self._unknown_words_answered():
            return []
        recipe = self.panel.recipe()
        self.settings.last_request = recipe.flat()
        self.settings.batch_count = self.panel.batch_count.value()
        self.save_settings()
        seed, batch = recipe.output.seed, recipe.output.batch_size
        ids = []
        for k in range(self.panel.batch_count.value()):
            r = recipe
            if seed is not None:
                if seed + k * batch + batch - 1 > MAX_SEED:
                    break
                r = recipe.with_(seed=seed + k * batch)
            ids.append(self._queue_job(r))
        return ids

    def _unknown_words_answered(self) -> bool:
        """False (and a question shown) when the prompt has words the model does not know and the
        user has not said to go ahead with this prompt."""
        unknown = self.panel.unknown_words()
        text = self.panel.prompt.text()
        if not unknown or text == self._unknown_words_accepted:
            return True
        info = self.panel.model_info()
        name = info.name if info else "The model"
        bar = self.messages.show_message(
            f"{name} does not know {', '.join(unknown)}, so the picture will not show "
            f"{'it' if len(unknown) == 1 else 'them'}. Its words are listed under the prompt (Words…).", "warning")
        if not bar.property("asks"):
            bar.setProperty("asks", True)

            def anyway() -> None:
                self._unknown_words_accepted = text
                self.generate()

            bar.add_button("Generate anyway", anyway)
        return False

    def resubmit(self, job_id: str) -> str | None:
        """Queue a job's recipe again, as it was asked for (Retry, Duplicate in the queue)."""
        recipe = self.queue.recipe(job_id)
        if recipe is None or self._closing:
            return None
        new = self._queue_job(recipe)
        self.queue.select(new)
        return new

    def _queue_job(self, recipe: Recipe) -> str:
        options = run_options(self.settings, next((m for m in self.panel.models() if m.id == recipe.model.id), None))
        job_id = self.bridge.submit(recipe, options, self.settings.output_path)
        self.requests[job_id] = recipe
        self.job_options[job_id] = options
        self.queue.add(job_id, recipe)
        if not self.bridge.isRunning() and self._start_engine:
            self.start_engine()
        return job_id

    def cancel_running(self) -> None:
        if self.running_job is not None:
            self.bridge.cancel(self.running_job)
            self.progress.setFormat("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _on_validity(self, valid: bool) -> None:
        self.generate_button.setEnabled(valid)
        self.generate_action.setEnabled(valid)
        problems = self.panel.problems()
        tip = "Add a job to the queue (Ctrl+Enter)" if valid else "Fix first:\n" + "\n".join(p.message for p in problems)
        self.generate_button.setToolTip(tip)

    def _on_started(self, job_id: str) -> None:
        self.running_job = job_id
        self.queue.set_state(job_id, "running")
        self.batch_strip.clear()
        self.batch_strip.hide()
        recipe = self.requests.get(job_id)
        self.progress.setRange(0, recipe.sampling.steps if recipe else 1)
        self.progress.setValue(0)
        self.progress.setFormat(f"Job {self.queue.label(job_id)}: preparing…")
        self.notifier.job_started()
        options = self.job_options.get(job_id)
        if options is not None and options.preview == "off":
            self.canvas.clear()
            self.canvas.view.placeholder = "Previews are off (Settings → Preview); the image appears when it is done"
        else:
            self.canvas.view.placeholder = "Type a prompt and press Generate (Ctrl+Enter)"
        self.cancel_button.setEnabled(True)

    def _on_progress(self, job_id: str, step: int, total: int, its: float, left: float) -> None:
        if job_id != self.running_job:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        self.progress.setFormat(format_progress(step, total, its, left))
        self._show_progress_in_title(step, total)
        recipe = self.requests.get(job_id)
        if recipe is not None and self.schedule_plot.key == (recipe.sampling.scheduler, recipe.sampling.steps):
            self.schedule_plot.set_current_step(step)

    def _show_progress_in_title(self, step: int, total: int) -> None:
        """Seen from the taskbar or another window: how far the job is, and what waits."""
        waiting = len(self.queue.job_ids("queued"))
        more = f" (+{waiting} waiting)" if waiting else ""
        self.setWindowTitle(f"{100 * step // max(total, 1)}%{more} · Diffuse Studio")

    def _on_preview(self, job_id: str, image: QImage) -> None:
        if job_id == self.running_job:
            recipe = self.requests.get(job_id)
            full = recipe is not None and image.width() >= (recipe.output.width or 0) > 0
            self.canvas.show_image(image, preview=True, sharp=full)
            self.image_info.setText(f"Preview of job {self.queue.label(job_id)} (x̂₀ estimate, {image.width()}×{image.height()})")

    def _on_image(self, job_id: str, index: int, image: QImage, path: str) -> None:
        recipe = self.requests.get(job_id)
        tip = f"{self.queue.label(job_id)}: {recipe.prompt.text if recipe else ''}\n{path or 'not saved'}"
        self.batch_strip.add_image(image, path, tip)
        self.batch_strip.setVisible(self.batch_strip.count() > 1)
        self.session_strip.add_image(image, path, tip)
        if index == 0:
            self._show_saved(image, path)

    def _on_saved(self, path: str, image_id: int) -> None:
        if self.gallery is not None:
            self.gallery.show_new(image_id, path)

    def _show_saved(self, image: QImage, path: str) -> None:
        self.canvas.show_image(image, path=path)
        self.image_info.setText(f"{image.width()}×{image.height()} · {path or 'not saved'}")

    def _end(self, job_id: str, state: str, detail: str = "", images: int = 0) -> None:
        self.queue.set_state(job_id, state, detail)
        idle = not self.queue.job_ids("queued", "running")
        if idle:
            self.setWindowTitle("Diffuse Studio")
        self.notifier.job_ended(images, state == "failed", idle)
        self.schedule_plot.set_current_step(0)
        if job_id == self.running_job:
            self.running_job = None
            self.cancel_button.setEnabled(False)
            self.progress.setFormat({"finished": "Done", "failed": "Failed", "cancelled": "Cancelled"}[state]
                                    + (f" · {detail}" if detail else ""))
            if state != "finished":
                self.progress.setValue(0)

    def _on_finished(self, job_id: str, summary: JobSummary) -> None:
        seconds = summary.timings.get("total", 0.0)
        self._end(job_id, "finished", f"{seconds:.1f} s", len(summary.seeds))
        self.requests[job_id] = summary.recipe
        if summary.seeds:
            self.panel.set_last_seed(summary.seeds[0])
        for text in summary.warnings:
            self.messages.show_message(text, "info")

    def _on_failed(self, job_id: str, message: str) -> None:
        self._end(job_id, "failed")
        self.messages.show_message(f"Job {self.queue.label(job_id)} failed. {message}")

    def _on_cancelled(self, job_id: str) -> None:
        self._end(job_id, "cancelled")

    # ---- models, plot, settings ------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Ask the backend to look for models again; the list updates now with what it knows and
        again when it answers (a server's list arrives later)."""
        self.backend.refresh_models()
        self.panel.set_models(self.backend.models())

    def _on_models(self, catalog: ModelCatalog) -> None:
        self.panel.set_models(catalog)

    def _apply_model_defaults(self, *_: object) -> None:
        info = self.panel.model_info()
        if info is None or not info.defaults or self.panel.restoring:
            return
        current = self.panel.recipe().flat()
        known = {k: v for k, v in info.defaults.items() if k in current}
        self.panel.set_recipe({**current, **known})

    def _ask_curves(self) -> None:
        info = self.panel.model_info()
        if info is None or self._closing:
            return
        sampling = self.panel.recipe().sampling
        self.bridge.request_curves(sampling.scheduler, info.id, sampling.steps)

    def use_settings(self, recipe: Recipe | dict) -> None:
        """Show a recipe (from the gallery, an image file) in every control."""
        for note in self.panel.set_recipe(recipe):
            self.messages.show_message(note, "info")
        self.tabs.setCurrentIndex(0)

    def restore_from_image(self, path: str) -> bool:
        """Show an image file and put its settings (ours, A1111, ComfyUI, InvokeAI) in the controls."""
        from pathlib import Path

        from desktop_app.gallery.metadata import MetadataError, settings_from_image_file

        try:
            recipe, meta = settings_from_image_file(path, models=self.panel.models())
        except (MetadataError, OSError) as exc:
            self.messages.show_message(f"No settings could be read from that image: {exc}")
            return False
        self.use_settings(recipe)
        if meta.unknown:
            listed = "; ".join(f"{k}: {plain_note(v)}" for k, v in meta.unknown.items())
            self.messages.show_message(f"From {Path(path).name}, not restored (no control here): {listed}", "info")
        image = QImage(path)
        if not image.isNull():
            self._show_saved(image, path)
        self.statusBar().showMessage(f"Settings taken from {path}", 8000)
        return True

    def open_image_settings(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use the settings of an image", str(self.settings.output_path),
                                              "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.restore_from_image(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if any(url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES) for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt naming
        for url in event.mimeData().urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES):
                event.acceptProposedAction()
                self.restore_from_image(url.toLocalFile())
                return

    def open_output_folder(self) -> None:
        folder = self.settings.output_path
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.messages.show_message(f"The output folder {folder} cannot be made ({exc.strerror or exc}); "
                                       "choose another one in Settings.")
            return
        self._open_folder(folder, "the output folder")

    def open_log_folder(self) -> None:
        from desktop_app.core import paths

        self._open_folder(paths.log_dir(), "the log folder")

    def _open_folder(self, folder, what: str) -> None:
        """Open a folder in the file manager; where none is set up, say so and copy the path."""
        if self.open_url(QUrl.fromLocalFile(str(folder))):
            return
        QApplication.clipboard().setText(str(folder))
        self.messages.show_message(f"{what.capitalize()} could not be opened: no file manager is set up to open "
                                   f"folders. Its path is copied to the clipboard: {folder}", "warning")

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, gpu=self.gpu_available)
        dialog.setModal(True)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()

    def apply_settings(self, new: Settings) -> None:
        if new.comfyui_servers != self.settings.comfyui_servers:
            self.messages.show_message("The ComfyUI servers in Settings connect the next time Diffuse Studio "
                                       "starts; until then the queue keeps the ones it has.")
        self.settings = new
        self.panel.vae.memory = new.model_vaes
        self.library.output_dir = new.output_path
        if self._configure_backend is not None:
            self._configure_backend(new)  # its model folders, its default device
            self.panel.set_models(self.backend.models())
        theme.apply_theme(QApplication.instance(), new.theme)
        self.save_settings()

    def _remember_export(self, choices: dict) -> None:
        self.settings.export_choices = dict(choices)
        self.save_settings()

    def show_first_run_hint(self) -> None:
        """The welcome (once, however often Help → Getting started is chosen)."""
        bar = self.messages.show_message(first_run_text(), "info", "Got it")
        if not bar.property("welcome"):
            bar.setProperty("welcome", True)
            bar.closed.connect(self._first_run_done)

    def _first_run_done(self) -> None:
        if not self.settings.first_run_done:
            self.settings.first_run_done = True
            self.save_settings()

    def show_about(self) -> None:
        AboutDialog(self.device_text, self).open()

    def save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("settings could not be saved: %s", exc)
            if not self._settings_unsaved and not self._closing:
                self._settings_unsaved = True  # said once; the next save tries again
                self.messages.show_message(f"Settings could not be saved ({exc.strerror or exc}); changes last "
                                           "until the window closes.")

    def _restore_layout(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
        else:
            screen = self.screen().availableGeometry() if self.screen() else None
            width, height = 1360, 860
            if screen is not None:  # most of a big screen, all but the edges of a laptop's
                width = min(max(width, int(screen.width() * 0.7)), int(screen.width() * 0.95))
                height = min(max(height, int(screen.height() * 0.75)), int(screen.height() * 0.92))
            self.resize(width, height)
        if not s.window_state:
            QTimer.singleShot(0, self._default_dock_sizes)  # once the window has its size
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))

    def _on_tab(self, index: int) -> None:
        """The gallery needs the room: the side docks step aside while it is shown, and come back
        exactly as they were (hiding and showing a dock alone lets the others' sizes drift)."""
        if index == 0:
            if self._state_before_gallery is not None:
                for dock in self._hidden_for_gallery:
                    dock.show()
                self.restoreState(self._state_before_gallery)
            self._hidden_for_gallery = []
            self._state_before_gallery = None
        elif self._state_before_gallery is None:
            self._state_before_gallery = self.saveState()
            self._hidden_for_gallery = [d for d in (self.queue_dock, self.schedule_dock, self.session_dock) if d.isVisible()]
            for dock in self._hidden_for_gallery:
                dock.hide()

    def _default_dock_sizes(self) -> None:
        self.resizeDocks([self.parameters_dock, self.queue_dock], [350, 340], Qt.Orientation.Horizontal)
        self.resizeDocks([self.queue_dock, self.schedule_dock], [150, 330], Qt.Orientation.Vertical)
        self.resizeDocks([self.session_dock], [self.session_strip.height() + 4], Qt.Orientation.Vertical)
        self.parameters_dock.raise_()  # the tab a first launch shows (image to image is the one beside it)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self._focused_once:  # typing goes into the prompt from the first moment
            self._focused_once = True
            self.panel.prompt.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        self._closing = True
        self.tabs.setCurrentIndex(0)  # the docks' own visibility is what gets saved
        self.settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        self.settings.window_state = bytes(self.saveState().toBase64()).decode()
        self.settings.last_request = self.panel.recipe().flat()
        self.settings.batch_count = self.panel.batch_count.value()
        self.save_settings()
        self.hide()  # gone at once, even if the engine needs a moment (a model half loaded) to stop
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel everything and stop the backend (waits at most for the current step or model load)."""
        self._closing = True
        self.bridge.stop()
        if not self.bridge.isRunning() and not self.bridge.isFinished():
            self.bridge.start()  # never started: it only closes the backend, so queued jobs each get their end
        self.bridge.wait()
        if self.gallery is not None:
            self.gallery.shutdown()
