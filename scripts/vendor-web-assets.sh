#!/usr/bin/env bash
# Refreshes the front-end libraries the web app serves from the binary. Needs npm at
# vendoring time only; the committed files are what the server embeds.
set -euo pipefail
cd "$(dirname "$0")/.."

WAVESURFER_VERSION=7.12.12
dest=crates/web/assets/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "wavesurfer.js@$WAVESURFER_VERSION" >/dev/null && tar xzf "wavesurfer.js-$WAVESURFER_VERSION.tgz")

{
    echo "/*! wavesurfer.js $WAVESURFER_VERSION (npm: wavesurfer.js@$WAVESURFER_VERSION, dist/wavesurfer.esm.js)"
    sed 's/^/ * /; s/ *$//' "$work/package/LICENSE"
    echo " */"
    cat "$work/package/dist/wavesurfer.esm.js"
    echo
} > "$dest/wavesurfer.esm.js"
echo "vendored wavesurfer.js $WAVESURFER_VERSION into $dest"
