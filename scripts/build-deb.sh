#!/usr/bin/env bash
# Builds the Debian package target/debian/scimsync_VERSION-1_ARCH.deb: the release binary, its
# manual pages and shell completions, both units and the example config as
# /etc/scimsync/scimsync.toml (Cargo.toml, [package.metadata.deb]). Installs cargo-deb, pinned,
# when it is missing. Arguments go to `cargo deb` (e.g. `--output DIR`).
#
#   scripts/build-deb.sh && sudo apt install ./target/debian/scimsync_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

# The version scripts/test.sh installs too.
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

cargo build --release --locked --bin scimsync
scripts/deb-assets.sh target/release/scimsync
cargo deb --no-build --locked "$@"
