#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl stop oneport.service oneport.socket 2>/dev/null || true
fi
