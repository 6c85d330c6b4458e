#!/bin/sh
set -e
# The admin API's persist writes the config file: a new one beside it, then
# a rename, so the directory is writable by the oneport group.
chgrp oneport /etc/oneport
chmod 0775 /etc/oneport
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  echo "oneport installed. Start it with: systemctl enable --now oneport"
fi
