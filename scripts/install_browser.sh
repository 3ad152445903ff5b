#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need from Debian: Chromium at /usr/bin/chromium,
# when it is missing. Needs root. Playwright drives this Chromium (executable_path); its own browser
# download is not used. The Python packages (jupyterlab, playwright) come from the "browser" extra.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser.sh: /usr/bin/chromium is missing and installing it needs root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium  # with its recommended fonts, so pages (and screenshots) have text fonts
