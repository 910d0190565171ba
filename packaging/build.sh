#!/usr/bin/env bash
# Build a one-folder bundle of Diffuse Studio with PyInstaller: the app, Python, torch (whatever
# build is installed in the environment: the CPU one keeps the bundle smallest), resources/ and
# the built-in model in models/. Run it on the OS you build for (no cross-building).
#
#   bash packaging/build.sh            # uses .venv/bin/python, or $PYTHON
#   → dist/diffuse-studio/ (Linux, Windows), dist/Diffuse Studio.app (macOS)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python
    elif [[ -x .venv/Scripts/python.exe ]]; then PYTHON=.venv/Scripts/python.exe
    else PYTHON=python3; fi
fi

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "error: PyInstaller is not installed for $PYTHON; install it with:" >&2
    echo "  $PYTHON -m pip install -e '.[bundle]'    (or: $PYTHON -m pip install pyinstaller)" >&2
    exit 1
fi
if [[ ! -f models/shapes/model_index.json ]]; then
    echo "warning: models/shapes is missing: the bundle will have no built-in model" >&2
fi

echo "== icons (.ico, .icns) from the committed PNGs"
"$PYTHON" packaging/make_icons.py --skip-png --ico build/icons/diffuse-studio.ico --icns build/icons/diffuse-studio.icns

echo "== PyInstaller (several minutes: it walks all of torch)"
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/diffuse-studio.spec

case "$(uname -s)" in
    Darwin) result="dist/Diffuse Studio.app" ;;
    *) result="dist/diffuse-studio" ;;
esac
echo "== built $result in $(( $(date +%s) - start )) s, $(du -sh "$result" | cut -f1)"
echo "   try: bash packaging/check_bundle.sh"
