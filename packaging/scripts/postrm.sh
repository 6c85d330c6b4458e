#!/bin/sh
set -e
# What the admin API's persist left beside the config file goes with it.
if [ "$1" = purge ]; then
  rm -f /etc/oneport/oneport.toml.bak /etc/oneport/oneport.toml.tmp
  rmdir /etc/oneport 2>/dev/null || true
fi
