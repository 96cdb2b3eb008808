#!/usr/bin/env bash
# Make Debian's `chromium` available for the test that drives the MLflow UI in a headless
# browser (tests/integration/test_mlflow_ui.py), the way tests/cluster/slurm-up.sh makes SLURM
# available: installs the package with apt-get only when it is missing (root only).
#
# Prints the browser's path as the last stdout line.
# Exit codes: 0 = available; 2 = no chromium here, with a one-line reason as the last line on
# stderr (the test skips with that line).
set -euo pipefail

log() { echo "chromium-up: $*" >&2; }
cannot() {
    echo "chromium-up: no headless chromium: $*" >&2
    exit 2
}
find_browser() { command -v chromium || command -v chromium-browser || true; }

BROWSER=$(find_browser)
if [[ -z $BROWSER ]]; then
    [[ $(id -u) -eq 0 ]] || cannot "chromium is not installed (apt-get install chromium, as root)"
    command -v apt-get >/dev/null || cannot "chromium is not installed and there is no apt-get"
    log "installing chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } ||
        cannot "apt-get install chromium failed"
    BROWSER=$(find_browser)
    [[ -n $BROWSER ]] || cannot "no chromium command after installing the package"
fi
"$BROWSER" --headless --no-sandbox --version >/dev/null 2>&1 || cannot "$BROWSER --version fails"
echo "$BROWSER"
