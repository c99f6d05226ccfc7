#!/usr/bin/env bash
# The browser test drives Debian's chromium; install it where we can (root + apt), else the
# test skips with a clear reason. Never fails the build by itself.
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "ensure-chromium: could not install chromium; the browser test will skip" >&2
else
  echo "ensure-chromium: not root or no apt-get; the browser test will skip" >&2
fi
exit 0
