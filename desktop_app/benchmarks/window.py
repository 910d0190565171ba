"""``diffuse-studio bench --gui``: how the window behaves, measured.

- Time to window: a fresh process is started with ``--quit-after-show``; reported are the time
  from spawning it to its "window shown" line, and whether torch had been imported by then.
- Event-loop stall: during a generation a precise 2 ms QTimer probe records the longest gap
  between its ticks (minus its interval): how long the window could not react.
- Previews on screen: frames the canvas actually painted, per second of denoising.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE_MS = 2


def time_to_window(repeats: int = 3) -> dict:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else env.get("QT_QPA_PLATFORM", ""))
    outside, inside, torch_seen = [], [], []
    with tempfile.TemporaryDirectory(prefix="diffuse-bench-home-") as home:
        env["DIFFUSE_STUDIO_HOME"] = home
        for _ in range(repeats):
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "--quit-after-show"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = ""
            for line in proc.stdout:
                if line.startswith("window shown"):
                    outside.append(time.perf_counter() - started)
                    break
            proc.wait(timeout=60)
            if line.startswith("window shown"):
                inside.append(float(line.split()[3]))
                torch_seen.append("torch imported: True" in line)
    return {"launch_to_window_s": statistics.median(outside) if outside else float("nan"),
            "in_process_to_window_s": statistics.median(inside) if inside else float("nan"),
            "runs": outside, "torch_imported_before_window": any(torch_seen)}


class _StallProbe:
    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst = 0.0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.last = time.perf_counter()
        self.worst = 0.0
        self.gaps = []
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = now - self.last - PROBE_MS / 1000
        self.gaps.append(gap)
        self.worst = max(self.worst, gap)
        self.last = now

    def stop(self) -> None:
        self.timer.stop()


def _model_folder(args) -> tuple[str, list[str]]:
    from desktop_app.backend.local.discovery import discover

    wanted = args.model or "shapes"
    if Path(wanted).expanduser().is_dir():
        folder = Path(wanted).expanduser().resolve()
        return folder.name, [str(folder.parent)]
    if any(m.id == wanted for m in discover().models):
        return wanted, []
    from desktop_app.backend.local.architectures import build_sd_folder

    root = Path(tempfile.mkdtemp(prefix="diffuse-bench-models-"))
    print(f"model {wanted!r} not found; using a tiny model with random weights", flush=True)
    build_sd_folder(root / "tiny", name="Tiny test model")
    return "tiny", [str(root)]


def _run_job(app, window, timeout_s: float = 600) -> tuple[str, object]:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome: list = []
    bridge = window.bridge
    slots = [(bridge.job_finished, lambda job, summary: (outcome.append(("finished", summary)), loop.quit())),
             (bridge.job_failed, lambda job, text: (outcome.append(("failed", text)), loop.quit())),
             (bridge.job_cancelled, lambda job: (outcome.append(("cancelled", None)), loop.quit()))]
    for signal, slot in slots:
        signal.connect(slot)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    window.generate()
    loop.exec()
    for signal, slot in slots:
        signal.disconnect(slot)
    return outcome[0] if outcome else ("timeout", None)


def generation_probe(args) -> dict:
    from desktop_app.backend.local import LocalBackend
    from desktop_app.core.settings import Settings
    from desktop_app.gallery.library import Library
    from desktop_app.gallery.store import open_default_store
    from desktop_app.gui.main import create_app
    from desktop_app.gui.window import MainWindow, run_options

    model_id, extra = _model_folder(args)
    app, theme = create_app()
    settings = Settings(device=args.device, precision=args.precision, extra_model_dirs=extra, first_run_done=True)
    theme.apply_theme(app, settings.theme)
    backend = LocalBackend(extra, defaults=run_options(settings), leave_a_core=True)  # as the app makes them
    library = Library(settings.output_path, open_default_store([settings.output_path]))
    window = MainWindow(settings, backend, library)
    window.show()
    panel = window.panel
    index = panel.model.findData(model_id)
    if index < 0:
        raise SystemExit(f"model {model_id!r} is not usable: {panel.model_note.text()}")
    panel.model.setCurrentIndex(index)
    panel.prompt.setPlainText("a red circle on the left and a blue square")
    panel.scheduler.setCurrentText(args.scheduler)
    panel.guidance.setValue(args.guidance)
    panel.batch_size.setValue(args.batch)
    panel.seed.setValue(1234)
    if args.size:
        panel.set_recipe(panel.recipe().with_(width=args.size, height=args.size))
    panel.steps.setValue(2)
    probe = _StallProbe()
    probe.start()
    state, _ = _run_job(app, window)  # warm-up: starts the engine (imports torch) and loads the model
    probe.stop()
    startup_stall = probe.worst
    if state != "finished":
        raise SystemExit(f"warm-up generation {state}: {_}")
    panel.steps.setValue(args.steps)
    view = window.canvas.view
    painted_before = view.frames_painted
    probe.start()
    started = time.perf_counter()
    state, summary = _run_job(app, window)
    wall = time.perf_counter() - started
    probe.stop()
    painted = view.frames_painted - painted_before - 1  # the final image is not a preview
    window.close()
    if library.store is not None:
        library.store.close()
    if state != "finished":
        raise SystemExit(f"measured generation {state}: {summary}")
    denoise = summary.timings.get("denoise", wall)
    gaps = sorted(probe.gaps)
    return {
        "model": model_id, "device": window.device_text, "steps": args.steps, "scheduler": args.scheduler,
        "size": f"{summary.recipe.output.width}×{summary.recipe.output.height}", "platform": app.platformName(),
        "generation_s": wall, "its_per_sec": args.steps / denoise if denoise else float("nan"),
        "longest_stall_ms": probe.worst * 1000, "startup_stall_ms": startup_stall * 1000, "p99_stall_ms": gaps[int(len(gaps) * 0.99)] * 1000 if gaps else float("nan"),
        "previews_painted": painted, "previews_per_sec": painted / denoise if denoise else float("nan"),
    }


def run_gui_bench(args) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSE_STUDIO_HOME", tempfile.mkdtemp(prefix="diffuse-bench-home-"))
    start = time_to_window()
    print(f"launch → window:            {start['launch_to_window_s']:.3f} s median of {len(start['runs'])} "
          f"(in-process {start['in_process_to_window_s']:.3f} s); torch imported before the window: "
          f"{start['torch_imported_before_window']}", flush=True)
    report = generation_probe(args)
    print(f"generation:                 {report['model']} {report['size']} on {report['device']}, {report['scheduler']}, "
          f"{report['steps']} steps, Qt platform {report['platform']}: {report['generation_s']:.2f} s ({report['its_per_sec']:.1f} it/s)")
    print(f"longest event-loop stall:   {report['longest_stall_ms']:.1f} ms (p99 {report['p99_stall_ms']:.1f} ms; "
          f"{PROBE_MS} ms probe)")
    print(f"longest stall, engine start: {report['startup_stall_ms']:.1f} ms (torch import + model load + a 2-step run)")
    print(f"previews reaching screen:   {report['previews_painted']} frames, {report['previews_per_sec']:.1f} per second")
    sys.stdout.flush()
    return 0
