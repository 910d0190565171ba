#!/usr/bin/env bash
# Check a built bundle the way a user meets it: an empty environment (no Python, no virtualenv on
# PATH), no network, a fresh home folder. It runs `--version`, `models`, `generate` with the
# built-in model, and opens the window (on Xvfb when it is installed, else offscreen Qt), and
# prints the bundle's size and the time to each result.
#
#   bash packaging/check_bundle.sh                    # dist/diffuse-studio, the built-in model
#   bash packaging/check_bundle.sh --model /a/model   # another model folder instead
#   BUNDLE=path/to/diffuse-studio bash packaging/check_bundle.sh
#
# Linux only (the macOS .app and the Windows .exe are checked by hand: double-click them).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${BUNDLE:-dist/diffuse-studio}
EXE="$BUNDLE/diffuse-studio"
model_args=("$@")
[[ -x "$EXE" ]] || { echo "error: no bundle at $BUNDLE; build it with: bash packaging/build.sh" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# No network when we may take it away (root, or unprivileged user namespaces); else just offline flags.
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n)
elif unshare -rn true 2>/dev/null; then offline=(unshare -rn); fi

# As root, also hide every Python installation on this machine (a private mount namespace
# covers them with an empty folder), so the bundle has to bring its own.
hide=()
if [[ $(id -u) == 0 ]] && unshare -m true 2>/dev/null; then
    mkdir -p "$work/empty"
    pythons=()
    for dir in /usr/lib/python3* /usr/local/lib/python3* "$HOME/.pyenv" "${VIRTUAL_ENV:-}" "$PWD/.venv"; do
        [[ -n "$dir" && -d "$dir" ]] && pythons+=("$dir")
    done
    hide=(unshare -m sh -c 'while [ "$1" != -- ]; do mount --bind "$0" "$1"; shift; done; shift; exec "$@"'
          "$work/empty" "${pythons[@]}" --)
fi

bare() {  # run the bundle with nothing from this shell's environment; `bare VAR=x cmd ...`
    local vars=()
    while [[ "$1" == *=* ]]; do vars+=("$1"); shift; done
    env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8 DIFFUSE_STUDIO_HOME="$work/home/ds" \
        HF_HUB_OFFLINE=1 "${vars[@]}" "${hide[@]}" "${offline[@]}" "$@"
}
now() { date +%s.%N; }
since() { awk -v now="$(now)" -v start="$1" 'BEGIN { printf "%.2f", now - start }'; }

echo "== bundle: $BUNDLE, $(du -sh "$BUNDLE" | cut -f1)"
echo "   run with an empty environment${offline:+, no network}${hide:+, every Python on this machine hidden}"

t=$(now)
bare "$EXE" --version
echo "   --version in $(since "$t") s"

echo "== models"
bare "$EXE" models

echo "== generate ${model_args[*]:-(built-in model)}"
t=$(now)
bare "$EXE" generate --prompt "a red circle on the left" --seed 1 --out "$work/out" \
    "${model_args[@]}" >"$work/generated.txt"
png=$(head -n 1 "$work/generated.txt")
[[ -s "$png" ]] || { echo "error: generate wrote no image" >&2; exit 1; }
echo "   $(basename "$png"): $(file -b "$png" 2>/dev/null || stat -c %s "$png") in $(since "$t") s"

echo "== desktop entry"
bare XDG_DATA_HOME="$work/xdg" "$EXE" --install-desktop-entry >/dev/null
entry=$(ls "$work"/xdg/applications/*.desktop)
exec_line=$(sed -n 's/^Exec=//p' "$entry")
[[ "$exec_line" == "$(cd "$BUNDLE" && pwd -P)/diffuse-studio" ]] || { echo "error: Exec=$exec_line" >&2; exit 1; }
if command -v desktop-file-validate >/dev/null; then desktop-file-validate "$entry"; fi
echo "   $(basename "$entry") with $(find "$work/xdg/icons" -type f | wc -l) icons; Exec=$exec_line"

echo "== window"
if command -v Xvfb >/dev/null && command -v xwininfo >/dev/null; then
    display=":$((90 + RANDOM % 100))"
    Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
    pids+=($!)
    sleep 1
    t=$(now)
    bare DISPLAY="$display" "$EXE" >"$work/window.log" 2>&1 &
    pids+=($!)
    shown=""
    for _ in $(seq 1 600); do
        if DISPLAY="$display" xwininfo -name "Diffuse Studio" 2>/dev/null | grep -q "IsViewable"; then
            shown=$(since "$t"); break
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$shown" ]] || { cat "$work/window.log" >&2; echo "error: no window appeared on Xvfb" >&2; exit 1; }
    echo "   the window 'Diffuse Studio' is on screen (Xvfb) after $shown s"
    sleep 15  # let the engine thread import torch and start too, then see that it is still running
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/window.log" >&2; echo "error: the app quit" >&2; exit 1; }
    kill "${pids[-1]}"
else
    echo "   (no Xvfb/xwininfo: offscreen Qt, checking only that it starts and keeps running for 15 s)"
    set +e
    bare QT_QPA_PLATFORM=offscreen timeout 15 "$EXE" >"$work/window.log" 2>&1
    status=$?
    set -e
    [[ $status == 124 ]] || { cat "$work/window.log" >&2; echo "error: the app exited with $status" >&2; exit 1; }
fi
# The engine thread imports torch after the window is up; a module the bundle lacks shows up here.
cat "$work"/home/ds/logs/*.log 2>/dev/null | tail -n 5 || true
if grep -hE "Traceback|Error|ERROR" "$work"/home/ds/logs/*.log "$work/window.log" 2>/dev/null; then
    echo "error: the app logged errors (above)" >&2
    exit 1
fi
echo "== bundle OK"
