#!/usr/bin/env bash
# Build the documentation site into docs/_build/html:
#   bash scripts/docs.sh            then open docs/_build/html/index.html
# Sets up .venv with the "docs" extra, regenerates the magic pages from the parsers, fetches the
# ipywidgets renderer (@jupyter-widgets/html-manager, with npm) into docs/_static/ so the job
# widgets render in the static pages with nothing loaded from elsewhere, then runs Sphinx with
# warnings as errors. Every notebook is executed during the build.
set -euo pipefail
cd "$(dirname "$0")/.."
HTML_MANAGER="@jupyter-widgets/html-manager@1.0.15"

EXTRAS="${EXTRAS:-test,demo,docs}" bash scripts/setup.sh
.venv/bin/python docs/gen_magic_docs.py

mkdir -p docs/_static
if [ ! -f docs/_static/embed.js ]; then
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "docs.sh: npm is needed to fetch $HTML_MANAGER (install Node.js and npm)" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq npm
    fi
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    (cd "$scratch" && npm pack --silent "$HTML_MANAGER" >/dev/null && tar xzf ./*.tgz)
    cp "$scratch"/package/dist/embed.js docs/_static/embed.js
    # the fonts embed.js refers to (Font Awesome), beside it
    find "$scratch"/package/dist -maxdepth 1 -type f \
        \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
        -exec cp {} docs/_static/ \;
fi

rm -rf docs/_build/html docs/_build/doctrees
.venv/bin/python -m sphinx -W --keep-going -n -b html -c docs -d docs/_build/doctrees . docs/_build/html "$@"
echo "The site is in docs/_build/html: open docs/_build/html/index.html"
