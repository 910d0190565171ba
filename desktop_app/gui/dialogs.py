"""The settings dialog, the About box and the first-run hint's text."""

from __future__ import annotations

import dataclasses
from importlib import metadata

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app import __version__
from desktop_app.core import paths
from desktop_app.core.servers import normalize_url
from desktop_app.core.settings import DEVICES, PRECISIONS, PREVIEW_SETTINGS, THEMES, Settings
from desktop_app.gui.widgets import FieldError

PREVIEW_LABELS = {"auto": "Automatic (full decode for small models)", "latent": "Fast (latent → RGB)",
                  "vae": "Full decode (slower)", "off": "Off"}
NO_GPU = "Needs a GPU; PyTorch sees no GPU on this machine (no CUDA, no Apple MPS)"


def first_run_text() -> str:
    return (
        "<b>Welcome to Diffuse Studio.</b> The built-in <i>Shapes</i> model works offline, on any computer: "
        "type a prompt such as “a big yellow star in the top right corner” and press Generate. "
        "To use Stable Diffusion models, drop their folders (diffusers layout) into "
        f"<a href='{paths.user_models_dir().as_uri()}'>{paths.user_models_dir()}</a>, "
        "or add a folder in <b>Settings → Model folders</b>."
        "<br><b>Start from a picture</b> (works on Shapes too): right-click a picture → <i>Send to image to image</i> "
        "to <b>change a colour</b>: make “a red circle in the centre”, send it, change the prompt to "
        "“a blue circle in the centre” and generate at strength 0.6. Or <i>Send to inpainting</i> to "
        "<b>repaint one shape</b> or <b>move an object</b>: paint over the circle and the place it should go on the "
        "Mask tab, prompt “a red circle on the right”, strength 1. Drag a blue edge handle to extend the picture."
    )


def library_versions() -> dict[str, str]:
    """Versions without importing torch or diffusers (the window must not wait for them)."""
    found = {"Diffuse Studio": __version__}
    for name in ("torch", "diffusers", "transformers"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["Qt"] = f"{qVersion()} (PySide6 {PySide6.__version__})"
    return found


class AboutDialog(QDialog):
    def __init__(self, device: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About Diffuse Studio")
        rows = "".join(f"<tr><td>{k}</td><td>&nbsp;{v}</td></tr>" for k, v in library_versions().items())
        rows += f"<tr><td>Device</td><td>&nbsp;{device or 'the engine is still starting'}</td></tr>"
        label = QLabel(
            "<h3>Diffuse Studio</h3><p>Make images with latent diffusion models on your own machine.</p>"
            f"<table>{rows}</table><p>Data: {paths.data_dir()}<br>Logs: {paths.log_dir()}</p>"
        )
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setObjectName("aboutText")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(buttons)


class SettingsDialog(QDialog):
    """Edits a copy of the settings; ``result_settings()`` returns it after Accept."""

    def __init__(self, settings: Settings, parent: QWidget | None = None, *, gpu: bool | None = None):
        """``gpu``: whether the backend can use a GPU (None: not known yet); without one the
        GPU-only options are shown disabled, with the reason."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = dataclasses.replace(settings, extra_model_dirs=list(settings.extra_model_dirs),
                                             export_choices=dict(settings.export_choices),
                                             comfyui_servers=list(settings.comfyui_servers))
        self.device = self._combo(DEVICES, settings.device, "Where the model runs; auto picks CUDA, then Apple MPS, then the CPU")
        self.precision = self._combo(PRECISIONS, settings.precision, "auto: fp16 on a GPU, fp32 on the CPU")
        self.preview = QComboBox()
        for key in PREVIEW_SETTINGS:
            self.preview.addItem(PREVIEW_LABELS[key], key)
        self.preview.setCurrentIndex(self.preview.findData(settings.preview_mode))
        self.preview.setToolTip("Live previews while the image forms; the fast preview costs almost nothing")
        self.max_fps = QDoubleSpinBox()
        self.max_fps.setRange(1, 60)
        self.max_fps.setDecimals(0)
        self.max_fps.setSuffix(" frames/s")
        self.max_fps.setValue(settings.preview_max_fps)
        self.max_fps.setToolTip("The most previews a second. 20 keeps at least 10 a second whenever steps are faster than that")
        self.output = QLineEdit(str(settings.output_path))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        output_row = QWidget()
        row = QHBoxLayout(output_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.output, 1)
        row.addWidget(browse)
        self.folders = QListWidget()
        self.folders.addItems(settings.extra_model_dirs)
        self.folders.setMaximumHeight(110)
        self.folders.setToolTip(f"Extra folders searched for models, besides {paths.user_models_dir()}")
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_folder)
        remove.clicked.connect(lambda: self.folders.takeItem(self.folders.currentRow()))
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(add)
        folder_buttons.addWidget(remove)
        folder_buttons.addStretch(1)
        servers_box = self._build_servers(settings)
        self.theme = self._combo(THEMES, settings.theme, "system follows the desktop's light or dark setting")
        self.fast_mode = QCheckBox("Fast mode on a GPU (compiles the model; the first run is slow)")
        self.fast_mode.setChecked(settings.fast_mode)
        self.fast_mode.setToolTip("Compiles the model with torch.compile for each new size (minutes the first time, "
                                  "cached for later launches), then generates up to several times faster. CUDA only")
        self.low_vram = QCheckBox("Low-VRAM mode (slower; for GPUs with little memory)")
        self.low_vram.setChecked(settings.low_vram)
        self.low_vram.setToolTip("Keeps each part of the model on the GPU only while it runs and decodes in tiles. "
                                 "It also turns on by itself, for the model in use, when the GPU runs out of memory")

        if gpu is False:
            self._without_gpu()
        form = QFormLayout()
        form.addRow("&Device", self.device)
        form.addRow("&Precision", self.precision)
        form.addRow("Pre&view", self.preview)
        form.addRow("Preview &rate", self.max_fps)
        form.addRow("&Output folder", output_row)
        form.addRow("&Model folders", self.folders)
        form.addRow("", folder_buttons)
        form.addRow("", QLabel(f"Models are also found in {paths.user_models_dir()}"))
        form.addRow("ComfyUI &servers", servers_box)
        form.addRow("&Theme", self.theme)
        form.addRow("", self.fast_mode)
        form.addRow("", self.low_vram)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _build_servers(self, settings: Settings) -> QWidget:
        """ComfyUI servers whose models join this computer's in the model list (one queue for all)."""
        self.servers = QListWidget()
        self.servers.addItems(settings.comfyui_servers)
        self.servers.setMaximumHeight(80)
        self.server_entry = QLineEdit()
        self.server_entry.setPlaceholderText("gpu-box, 192.168.1.20:8188 or https://host/comfy")
        self.add_server_button = QPushButton("Add")
        self.add_server_button.setAutoDefault(False)  # Enter in the dialog still means OK
        self.add_server_button.clicked.connect(self._add_server)
        self.remove_server_button = QPushButton("Remove")
        self.remove_server_button.setAutoDefault(False)
        self.remove_server_button.clicked.connect(lambda: self.servers.takeItem(self.servers.currentRow()))
        self.server_error = FieldError()
        note = QLabel("Jobs go to a server when one of its models is chosen. A server added here connects the next "
                      "time Diffuse Studio starts; one behind a proxy with a token: diffuse-studio servers add URL --token")
        note.setWordWrap(True)
        note.setObjectName("hint")
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.servers)
        row = QHBoxLayout()
        row.addWidget(self.server_entry, 1)
        row.addWidget(self.add_server_button)
        row.addWidget(self.remove_server_button)
        column.addLayout(row)
        column.addWidget(self.server_error)
        column.addWidget(note)
        return box

    def _add_server(self) -> None:
        try:
            url = normalize_url(self.server_entry.text())
        except ValueError as exc:
            self.server_error.show_problems([str(exc)])
            return
        if self.servers.findItems(url, Qt.MatchFlag.MatchExactly):
            self.server_error.show_problems([f"{url} is in the list already"])
            return
        self.servers.addItem(url)
        self.server_entry.clear()
        self.server_error.show_problems([])

    def _without_gpu(self) -> None:
        for box in (self.fast_mode, self.low_vram):
            box.setEnabled(False)
            box.setToolTip(f"{NO_GPU}. {box.toolTip()}")
        for name in ("cuda", "mps"):
            item = self.device.model().item(self.device.findText(name))
            item.setEnabled(False)
            item.setToolTip(NO_GPU)

    @staticmethod
    def _combo(choices: tuple[str, ...], current: str, tip: str) -> QComboBox:
        combo = QComboBox()
        combo.addItems(list(choices))
        combo.setCurrentText(current)
        combo.setToolTip(tip)
        return combo

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output.text())
        if folder:
            self.output.setText(folder)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", str(paths.user_models_dir()))
        if folder and not self.folders.findItems(folder, Qt.MatchFlag.MatchExactly):
            self.folders.addItem(folder)

    def result_settings(self) -> Settings:
        s = self._settings
        s.device = self.device.currentText()
        s.precision = self.precision.currentText()
        s.preview_mode = self.preview.currentData()
        s.preview_max_fps = float(self.max_fps.value())
        output = self.output.text().strip()
        s.output_dir = "" if output == str(paths.default_output_dir()) else output
        s.extra_model_dirs = [self.folders.item(k).text() for k in range(self.folders.count())]
        s.comfyui_servers = [self.servers.item(k).text() for k in range(self.servers.count())]
        s.theme = self.theme.currentText()
        s.fast_mode = self.fast_mode.isChecked()
        s.low_vram = self.low_vram.isChecked()
        return s
