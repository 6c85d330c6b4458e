#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  echo "oneport installed. Start it with: systemctl enable --now oneport"
fi
