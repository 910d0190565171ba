#!/usr/bin/env bash
# Open the real window on a virtual X screen with a window manager, generate, and save pictures of
# the Create tab and the Gallery tab:
#   scripts/screenshot.sh [OUT.png] [extra args for python -m desktop_app (--prompt "...", --batch N, ...)]
# writes OUT.png (Create) and OUT-gallery.png (Gallery; the same session's images, one selected).
# SCREEN=2560x1440 picks another screen size (default 1366x768, a common laptop). Uses the built-in
# "shapes" model when it is there, else a tiny random-weight model built on the fly. Needs Xvfb
# (apt-get install -y xvfb openbox); openbox, when installed, gives the window a frame and places it
# as a desktop would. The app's files go to a temporary home folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/screenshot.png}"
shift || true
py="${PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py=python3
screen="${SCREEN:-1366x768}"
command -v Xvfb >/dev/null || { echo "Xvfb is missing: apt-get install -y xvfb openbox" >&2; exit 2; }
home="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$home"; }
trap cleanup EXIT
Xvfb -displayfd 3 -screen 0 "${screen}x24" -nolisten tcp 3>"$home/display" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$home/display" ] && break; sleep 0.1; done  # Xvfb picks a free display
[ -s "$home/display" ] || { echo "Xvfb did not start" >&2; exit 2; }
display=":$(head -n1 "$home/display")"
if command -v openbox >/dev/null; then
  DISPLAY="$display" openbox >/dev/null 2>&1 &
  pids+=($!)
  sleep 0.5
fi
export DIFFUSE_STUDIO_HOME="$home" DISPLAY="$display" QT_QPA_PLATFORM=xcb
model_args=()
if ! "$py" -c "import sys; from desktop_app.backend.local.discovery import discover; sys.exit(all(m.id != 'shapes' for m in discover().models))"; then
  mkdir -p "$home/test-models"
  "$py" -c "import sys; from desktop_app.backend.local.architectures import build_sd_folder; build_sd_folder(sys.argv[1], name='Tiny test model')" \
    "$home/test-models/tiny" >/dev/null 2>&1
  model_args=(--models-dir "$home/test-models" --model tiny)
fi
mkdir -p "$(dirname "$out")"
gallery="${out%.png}-gallery.png"
# The first run makes a batch (and says welcome); the second shows them all in the gallery.
"$py" -m desktop_app --screenshot "$out" --steps 20 --batch 4 "${model_args[@]}" "$@"
"$py" -m desktop_app --screenshot "$gallery" --tab gallery --steps 20 --batch 4 \
  --prompt "a small pink heart on the left and a big cyan ring" "${model_args[@]}" "$@"
