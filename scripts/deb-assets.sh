#!/usr/bin/env bash
# Makes what the Debian package takes besides the binary (Cargo.toml, [package.metadata.deb]):
# the manual pages and the shell completions, written by BINARY from its own command line into
# target/assets/. Used by scripts/build-deb.sh and tests/debian_package.rs.
#
#   scripts/deb-assets.sh BINARY
set -euo pipefail

bin=${1:?usage: scripts/deb-assets.sh BINARY (e.g. target/release/scimsync)}
out="$(cd "$(dirname "$0")/.." && pwd)/target/assets"
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man "$out/man"
"$bin" completions bash >"$out/completions/scimsync.bash"
"$bin" completions zsh >"$out/completions/_scimsync"
"$bin" completions fish >"$out/completions/scimsync.fish"
