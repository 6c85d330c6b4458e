#!/usr/bin/env bash
# Builds dist/oneport_VERSION_ARCH.deb from packaging/. Needs Go; installs
# nfpm with go install if it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOARCH=${GOARCH:-$(go env GOARCH)}
if [ -z "${VERSION:-}" ]; then
  if tag=$(git describe --tags --exact-match 2>/dev/null); then
    VERSION=${tag#v}
  else
    VERSION="0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  fi
fi
export VERSION
DIST=dist # nfpm.yaml names dist/oneport
NFPM_VERSION=v2.43.0
mkdir -p "$DIST"
rm -f "$DIST"/oneport_*.deb # one package in dist/: the one built now
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DIST/oneport" ./cmd/oneport
nfpm=$(command -v nfpm || true)
if [ -z "$nfpm" ]; then
  GOBIN="$(pwd)/$DIST/tools" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
  nfpm="$(pwd)/$DIST/tools/nfpm"
fi
"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$DIST/"
ls "$DIST"/*.deb
