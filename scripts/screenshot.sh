#!/usr/bin/env bash
# Open the real window under Xvfb, generate one image, and save a screenshot of the screen.
#   scripts/screenshot.sh [OUT.png] [extra args for python -m desktop_app (--tab gallery, --at-step N, ...)]
# Uses the built-in "shapes" model when it is there, else a tiny random-weight model built on the
# fly. Needs xvfb-run (apt-get install xvfb). The app's files go to a temporary home folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/screenshot.png}"
shift || true
py="${PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py=python3
command -v xvfb-run >/dev/null || { echo "xvfb-run is missing: apt-get install -y xvfb" >&2; exit 2; }
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
export DIFFUSE_STUDIO_HOME="$home"
model_args=()
if ! "$py" -c "import sys; from desktop_app.backend.local.discovery import discover; sys.exit(all(m.id != 'shapes' for m in discover().models))"; then
  mkdir -p "$home/test-models"
  "$py" -c "import sys; from desktop_app.backend.local.architectures import build_sd_folder; build_sd_folder(sys.argv[1], name='Tiny test model')" \
    "$home/test-models/tiny" >/dev/null 2>&1
  model_args=(--models-dir "$home/test-models" --model tiny)
fi
mkdir -p "$(dirname "$out")"
xvfb-run -a -s "-screen 0 ${SCREEN:-1600x1000}x24" env QT_QPA_PLATFORM=xcb \
  "$py" -m desktop_app --screenshot "$out" --steps 20 "${model_args[@]}" "$@"
