#!/bin/sh
set -e
if ! getent passwd oneport >/dev/null; then
  useradd --system --no-create-home --home-dir /var/lib/oneport --shell /usr/sbin/nologin oneport
fi
